"""SQL aggregates the ORM lacks. PERCENTILE_CONT runs in PostgreSQL; on SQLite (the embedded
default) the same aggregate is registered on each connection so that the statistics are
still computed by the database, row by row inside SQLite, never by a Python loop over a
fetched result set."""

import math
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper


class PercentileCont(models.Aggregate):
    """Continuous percentile with linear interpolation, as PostgreSQL's
    `percentile_cont(f) WITHIN GROUP (ORDER BY x)` and numpy's default `percentile`:
    position h = f·(n−1), value = x₍⌊h⌋₎ + (h − ⌊h⌋)·(x₍⌈h⌉₎ − x₍⌊h⌋₎)."""

    name = "PercentileCont"
    output_field = models.FloatField()
    template = "percentile_cont(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, fraction: float, **extra: Any):
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be within [0, 1]")
        super().__init__(expression, fraction=float(fraction), **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="attune_percentile_cont(%(expressions)s, %(fraction)s)",
            **extra_context,
        )


class _SqlitePercentileCont:
    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value: float | None, fraction: float) -> None:
        self.fraction = fraction
        if value is not None:
            self.values.append(float(value))

    def finalize(self) -> float | None:
        if not self.values:
            return None
        ordered = sorted(self.values)
        position = self.fraction * (len(ordered) - 1)
        lower, upper = math.floor(position), math.ceil(position)
        return ordered[lower] + (position - lower) * (ordered[upper] - ordered[lower])


def register_sqlite_aggregates(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate("attune_percentile_cont", 2, _SqlitePercentileCont)
