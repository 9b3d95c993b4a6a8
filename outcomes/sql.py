"""SQL building blocks of the outcomes app: the window index as a database expression and
the idempotent bulk insert."""

from collections.abc import Sequence
from typing import Any, cast

from django.db import connection, models

from outcomes.windows import WINDOW_ORIGIN


class WindowIndex(models.Func):
    """⌊(occurred_at − 2024-01-01) / window⌋ in SQL, the database twin of
    outcomes.windows.window_index."""

    output_field = models.IntegerField()

    def __init__(self, expression: Any, *, days: int, **extra: Any):
        self.seconds = days * 86400
        super().__init__(expression, **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        origin = WINDOW_ORIGIN.isoformat()
        template = (
            f"FLOOR(EXTRACT(EPOCH FROM (%(expressions)s - TIMESTAMPTZ '{origin}')) "
            f"/ {self.seconds})::integer"
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


def insert_columns(model: type[models.Model], columns: dict[str, list[Any]]) -> int:
    """Insert rows given column-wise: COPY on PostgreSQL, bulk_create in batches elsewhere."""
    names = list(columns)
    count = len(columns[names[0]]) if names else 0
    if not count:
        return 0
    fields = [cast(models.Field, model._meta.get_field(name)) for name in names]
    if connection.vendor != "postgresql":
        attnames = [f.attname for f in fields]
        rows = [
            model(
                **{attname: columns[name][i] for attname, name in zip(attnames, names, strict=True)}
            )
            for i in range(count)
        ]
        model._default_manager.bulk_create(rows, batch_size=500)
        return count
    quote = connection.ops.quote_name
    prepared = [
        columns[f.name]
        if f.get_internal_type() in DRIVER_ADAPTS
        else [f.get_db_prep_save(value, connection) for value in columns[f.name]]
        for f in fields
    ]
    # COPY: the driver's C writer streams the rows; no statement to parse or plan per row.
    statement = "COPY {} ({}) FROM STDIN".format(
        quote(model._meta.db_table), ", ".join(quote(str(f.column)) for f in fields)
    )
    with connection.cursor() as cursor, cursor.connection.cursor().copy(statement) as copy:
        for row in zip(*prepared, strict=True):
            copy.write_row(row)
    return count


def update_columns(model: type[models.Model], ids: list[int], columns: dict[str, list[Any]]) -> int:
    """UPDATE many rows by primary key, each with its own values: on PostgreSQL one
    UPDATE … FROM unnest(arrays); elsewhere bulk_update."""
    if not ids:
        return 0
    if connection.vendor != "postgresql":
        objects = [
            model(pk=pk, **{name: values[i] for name, values in columns.items()})
            for i, pk in enumerate(ids)
        ]
        model._default_manager.bulk_update(objects, list(columns), batch_size=500)
        return len(ids)
    quote = connection.ops.quote_name
    fields = [cast(models.Field, model._meta.get_field(name)) for name in columns]
    table = quote(model._meta.db_table)
    assignments = ", ".join(f"{quote(str(f.column))} = v.{quote(str(f.column))}" for f in fields)
    casts = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    names = ", ".join(quote(str(f.column)) for f in fields)
    sql = "UPDATE %s SET %s FROM unnest(%%s::bigint[], %s) AS v(id, %s) WHERE %s.id = v.id" % (  # noqa: S608, UP031
        table,
        assignments,
        casts,
        names,
        table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids, *columns.values()])
        return cursor.rowcount
