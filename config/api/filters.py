"""Filter types for the FilterSets of every app: out-of-range values are a 400 naming the
filter instead of an overflow in the database driver."""

import datetime
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from config.api.serializers import datetime_error

MAX_ID = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A primary key: a whole number from 1 to 2⁶³ − 1."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class SafeIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value: Any) -> datetime.datetime | None:
        parsed = super().to_python(value)
        message = datetime_error(parsed) if parsed is not None else None
        if message:
            raise forms.ValidationError(message, code="invalid")
        return parsed


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    """ISO 8601 with a real UTC offset and a storable year."""

    field_class = SafeIsoDateTimeField
