"""The idempotent bulk insert of the outcomes app (INSERT … ON CONFLICT DO NOTHING RETURNING)."""

from collections.abc import Sequence
from typing import Any, cast

from django.db import connection, models

# Only quoted identifiers of the model are formatted into these; every value is a parameter.
UNNEST_INSERT = (
    "INSERT INTO {table} ({columns}) SELECT * FROM unnest({unnest}) "
    "ON CONFLICT ({conflict}) DO NOTHING RETURNING {returned}"
)

# Field types whose Python values psycopg adapts as they are (no Django conversion needed).
DRIVER_ADAPTS = frozenset(
    {
        "BigIntegerField",
        "BooleanField",
        "CharField",
        "DateTimeField",
        "FloatField",
        "ForeignKey",
        "IntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "SlugField",
        "SmallIntegerField",
        "TextField",
    }
)


def insert_ignoring_conflicts(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    *,
    conflict_fields: Sequence[str],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """INSERT … ON CONFLICT (conflict_fields) DO NOTHING RETURNING `returning`: the returned
    rows are exactly the new ones, even when other clients insert the same keys concurrently.
    (Django's bulk_create(ignore_conflicts=True) does not say which rows were new.)"""
    if not rows:
        return []
    quote = connection.ops.quote_name

    def field(name: str) -> models.Field:
        return cast(models.Field, model._meta.get_field(name))

    fields = [field(name) for name in rows[0]]

    def column(f: models.Field) -> str:
        return quote(str(f.column))

    columns = ", ".join(column(f) for f in fields)
    one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    conflict = ", ".join(column(field(n)) for n in conflict_fields)
    returned = ", ".join(column(field(n)) for n in returning)
    result: list[tuple[Any, ...]] = []
    table = quote(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One array parameter per column: the statement stays small however many rows,
            # so neither the driver nor the planner works per row.
            arrays = [
                [row[f.name] for row in rows]
                if f.get_internal_type() in DRIVER_ADAPTS
                else [f.get_db_prep_save(row[f.name], connection) for row in rows]
                for f in fields
            ]
            unnest = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
            sql = UNNEST_INSERT.format(
                table=table, columns=columns, unnest=unnest, conflict=conflict, returned=returned
            )
            cursor.execute(sql, arrays)
            return list(cursor.fetchall())
        chunk = 500
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            params = [f.get_db_prep_save(row[f.name], connection) for row in part for f in fields]
            # Only quoted identifiers of the model are formatted in; every value is a parameter.
            values = ", ".join([one_row] * len(part))
            sql = "INSERT INTO %s (%s) VALUES %s ON CONFLICT (%s) DO NOTHING RETURNING %s" % (  # noqa: S608, UP031
                table,
                columns,
                values,
                conflict,
                returned,
            )
            cursor.execute(sql, params)
            result.extend(cursor.fetchall())
    return result
