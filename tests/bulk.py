"""Many rows fast, for the bind-limit tests: copies of one stored row made by one
INSERT … SELECT over generate_series in PostgreSQL, with no Python object per row."""

from typing import Any

from django.db import connection, models


def clone_rows(
    model: type[models.Model], template_pk: Any, count: int, vary: dict[str, str] | None = None
) -> None:
    """`count` copies of the row `template_pk` of `model`. `vary` maps column names to SQL
    expressions of g, the copy's number from 1 to count (e.g. {"event_id": "'e-' || g"});
    every other column keeps the template's value."""
    vary = vary or {}
    quote = connection.ops.quote_name
    columns = [str(f.column) for f in model._meta.concrete_fields if not f.primary_key]
    selected = [vary.get(column, f"t.{quote(column)}") for column in columns]
    table = quote(model._meta.db_table)
    pk = quote(str(model._meta.pk.column))  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
            f"SELECT {', '.join(selected)} FROM {table} AS t, generate_series(1, %s) AS g "
            f"WHERE t.{pk} = %s",
            [count, template_pk],
        )
