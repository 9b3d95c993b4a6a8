import datetime
import math
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not know, so that a typo is a 400 naming the field instead of
    being silently ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)


class FiniteFloatField(serializers.FloatField):
    """A float that is a real number: "NaN" and "Infinity" (which float() accepts) and
    booleans are rejected, so they never reach the database or a statistic. With `places`,
    the value is rounded (scores: no underflow when squared in SQL)."""

    default_error_messages = {"not_finite": "A finite number is required."}

    def __init__(self, *args: Any, places: int | None = None, **kwargs: Any):
        self.places = places
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("not_finite")
        return round(value, self.places) if self.places is not None else value


# Clocks differ: a client may report a moment up to this far ahead of ours.
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)


def not_in_future(value: datetime.datetime) -> None:
    """Validator: not more than FUTURE_TOLERANCE ahead of now."""
    if value > timezone.now() + FUTURE_TOLERANCE:
        raise serializers.ValidationError("May not be more than 5 minutes in the future.")


# UTC offsets that exist (±14:00) and years the databases store without overflow.
MAX_UTC_OFFSET = datetime.timedelta(hours=14)
MIN_YEAR, MAX_YEAR = 1900, 9998


def datetime_error(value: datetime.datetime) -> str | None:
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        return "The UTC offset must be within ±14:00."
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        return f"The year must be between {MIN_YEAR} and {MAX_YEAR}."
    return None


class SafeDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time with a real UTC offset and a year the databases can store."""

    def to_internal_value(self, value: Any) -> datetime.datetime:
        # Check the offset as written: DRF converts to UTC before we would see it.
        try:
            raw = parse_datetime(value.strip()) if isinstance(value, str) else None
        except ValueError:
            # Well-formed but no such moment (2026-02-30): DRF's own parse below reports it
            # as "invalid", naming the field.
            raw = None
        message = datetime_error(raw) if raw is not None else None
        if message:
            raise serializers.ValidationError(message, code="invalid")
        parsed = super().to_internal_value(value)
        message = datetime_error(parsed)
        if message:
            raise serializers.ValidationError(message, code="invalid")
        return parsed
