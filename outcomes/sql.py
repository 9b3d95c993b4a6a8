"""The idempotent bulk insert of the outcomes app (INSERT … ON CONFLICT DO NOTHING RETURNING)."""

from collections.abc import Mapping, Sequence
from typing import Any, cast

from django.db import connection, models

# Only quoted identifiers of the model are formatted into these; every value is a parameter.
UNNEST_INSERT = (
    "INSERT INTO {table} ({columns}) SELECT {values} FROM unnest({unnest}) AS v({names}) "
    "ORDER BY {order} ON CONFLICT ({conflict}) DO NOTHING RETURNING {returned}"
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
    columns: Mapping[str, Sequence[Any]],
    *,
    conflict_fields: Sequence[str],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """INSERT … ON CONFLICT (conflict_fields) DO NOTHING RETURNING `returning`: the returned
    rows are exactly the new ones, even when other clients insert the same keys concurrently.
    (Django's bulk_create(ignore_conflicts=True) does not say which rows were new.)

    `columns` maps field names to their values, one per row, all in the same row order. Only
    these columns are named, so every other column takes its database default."""
    counts = {len(values) for values in columns.values()}
    if len(counts) > 1:
        raise ValueError("insert_ignoring_conflicts needs columns of one length")
    count = counts.pop() if counts else 0
    if not count:
        return []
    quote = connection.ops.quote_name

    def field(name: str) -> models.Field:
        return cast(models.Field, model._meta.get_field(name))

    fields = [field(name) for name in columns]

    def column(f: models.Field) -> str:
        return quote(str(f.column))

    def prepared(f: models.Field) -> list[Any]:
        if f.get_internal_type() in DRIVER_ADAPTS:
            return list(columns[f.name])
        return [f.get_db_prep_save(value, connection) for value in columns[f.name]]

    def array_literal(values: list[Any]) -> Any:
        """Text, float and integer columns as one PostgreSQL array literal, built by str.join:
        the driver would adapt every element in Python. Elements are quoted and escaped
        (backslash and double quote), floats written by repr, which round-trips; a column of
        any other type goes to the driver as a list."""
        kinds = {type(value) for value in values} - {type(None)}
        if kinds == {str}:
            items = [
                "NULL"
                if value is None
                else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
                for value in values
            ]
        elif kinds == {float} or kinds == {int}:
            items = ["NULL" if value is None else repr(value) for value in values]
        else:
            return values
        return "{" + ",".join(items) + "}"

    target = ", ".join(column(f) for f in fields)
    conflict = ", ".join(column(field(n)) for n in conflict_fields)
    returned = ", ".join(column(field(n)) for n in returning)
    table = quote(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A column with one value for every row (the user, the timestamps, attributions
            # nobody sent) travels as one scalar, every other one as one array: the statement
            # stays small however many rows, and the driver adapts a value per row only where
            # the rows differ. Floats always go as arrays, since 0.0 == -0.0.
            selected, scalars, names, casts, arrays = [], [], [], [], []
            for index, f in enumerate(fields):
                values = prepared(f)
                first = values[0]
                # The first column always goes as an array: it gives unnest the row count.
                if index and type(first) is not float and values.count(first) == count:
                    selected.append(f"%s::{f.db_type(connection)}")
                    scalars.append(first)
                else:
                    selected.append(f"v.c{index}")
                    names.append(f"c{index}")
                    literal = array_literal(values)
                    via_text = "::text" if isinstance(literal, str) else ""
                    casts.append(f"%s{via_text}::{f.db_type(connection)}[]")
                    arrays.append(literal)
            sql = UNNEST_INSERT.format(
                table=table,
                columns=target,
                values=", ".join(selected),
                unnest=", ".join(casts),
                names=", ".join(names),
                # Rows go in in the order of their key: concurrent inserts of overlapping
                # keys then wait for one another in one order instead of deadlocking.
                order=", ".join(str(list(columns).index(n) + 1) for n in conflict_fields),
                conflict=conflict,
                returned=returned,
            )
            cursor.execute(sql, [*scalars, *arrays])
            return list(cursor.fetchall())
        prepped = [
            [f.get_db_prep_save(value, connection) for value in columns[f.name]] for f in fields
        ]
        rows = list(zip(*prepped, strict=True))
        one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        result: list[tuple[Any, ...]] = []
        chunk = 500
        for start in range(0, count, chunk):
            part = rows[start : start + chunk]
            params = [value for row in part for value in row]
            # Only quoted identifiers of the model are formatted in; every value is a parameter.
            placeholders = ", ".join([one_row] * len(part))
            sql = "INSERT INTO %s (%s) VALUES %s ON CONFLICT (%s) DO NOTHING RETURNING %s" % (  # noqa: S608, UP031
                table,
                target,
                placeholders,
                conflict,
                returned,
            )
            cursor.execute(sql, params)
            result.extend(cursor.fetchall())
    return result
