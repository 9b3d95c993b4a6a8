"""Effectiveness windows (DESIGN.md §5.2): tumbling, EFFECTIVENESS_WINDOW_DAYS long, aligned to
2024-01-01T00:00Z. All window arithmetic lives here: in Python, over numpy arrays and as SQL
(a database expression and a condition)."""

import datetime
from typing import Any

import numpy as np
from django.db import models
from django.db.models import Q

WINDOW_ORIGIN = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)


def window_index(moment: datetime.datetime, days: int) -> int:
    """⌊(moment − origin) / days⌋, negative before the origin."""
    return int((moment - WINDOW_ORIGIN).total_seconds() // (days * 86400))


def window_bounds(index: int, days: int) -> tuple[datetime.datetime, datetime.datetime]:
    """[start, end) of window `index`."""
    start = WINDOW_ORIGIN + datetime.timedelta(days=index * days)
    return start, start + datetime.timedelta(days=days)


def window_bounds_array(window: np.ndarray, days: int) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) of each window index, as naive-UTC datetime64[us]."""
    origin = np.datetime64(WINDOW_ORIGIN.replace(tzinfo=None), "us")
    length = np.timedelta64(days * 86400, "s").astype("timedelta64[us]")
    start = origin + window.astype(np.int64) * length
    return start, start + length


def in_windows(windows: set[int], days: int, field: str = "occurred_at") -> Q:
    """`field` in any of the windows, adjacent windows merged into one range."""
    condition = Q()
    indexes = sorted(windows)
    while indexes:
        first = last = indexes.pop(0)
        while indexes and indexes[0] == last + 1:
            last = indexes.pop(0)
        start, end = window_bounds(first, days)[0], window_bounds(last, days)[1]
        condition |= Q(**{f"{field}__gte": start, f"{field}__lt": end})
    return condition


class WindowIndex(models.Func):
    """⌊(occurred_at − 2024-01-01) / window⌋ in SQL, the database twin of
    outcomes.windows.window_index."""

    output_field = models.IntegerField()

    def __init__(self, expression: Any, *, days: int, **extra: Any):
        self.seconds = days * 86400
        super().__init__(expression, **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # date_part() is double precision (EXTRACT is numeric, several times slower over a
        # million rows); epoch seconds keep microseconds exactly up to the year 2255.
        origin = int(WINDOW_ORIGIN.timestamp())
        template = (
            f"FLOOR((date_part('epoch', %(expressions)s) - {origin}) / {self.seconds})::integer"
        )
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        origin = WINDOW_ORIGIN.strftime("%Y-%m-%d %H:%M:%S")
        seconds = f"((julianday(%(expressions)s) - julianday('{origin}')) * 86400.0)"
        # floor() for negative values too: CAST truncates toward zero.
        template = (
            f"(CAST({seconds} / {self.seconds} AS INTEGER) - "
            f"(({seconds} / {self.seconds}) < CAST({seconds} / {self.seconds} AS INTEGER)))"
        )
        return self.as_sql(compiler, connection, template=template, **extra)
