"""Column-wise reads and writes between querysets and numpy arrays, and id lists that travel as
one array parameter: what the recomputations of every app move in bulk (PostgreSQL's binary
forms through config.pgbinary; plain queries elsewhere)."""

import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from django.db import connection, models, transaction
from django.db.models import F, Lookup, Q, QuerySet
from django.db.models.sql import Query
from django.utils import timezone

from config import pgbinary


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


def work_mem(megabytes: int) -> None:
    """Raise PostgreSQL's per-operation memory until the transaction ends, so a large GROUP BY
    hashes in memory instead of spilling to disk. No-op elsewhere."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL work_mem = '{int(megabytes)}MB'")


@dataclass(frozen=True)
class Codes:
    """Read a text column as int4 codes: its value's index in `labels` (-1: other/NULL)."""

    labels: Sequence[str]


def query_arrays(
    queryset: QuerySet[Any], columns: Mapping[str, "str | Codes"]
) -> dict[str, np.ndarray]:
    """The rows of a queryset, column-wise as numpy arrays.

    `columns` maps each name to select (an annotation alias or a column name) to its type in
    config.pgbinary.TYPES, or to Codes; NULL reads as NaN in float8 columns, 0 in integer
    ones and false in bool ones. On PostgreSQL each column comes back as one bytea, the
    string_agg of its values' binary forms; elsewhere through the cursor."""
    if connection.vendor != "postgresql":
        rows = list(queryset.values_list(*columns))
        result = {}
        for i, (name, kind) in enumerate(columns.items()):
            values = [row[i] for row in rows]
            if isinstance(kind, Codes):
                index = {label: code for code, label in enumerate(kind.labels)}
                result[name] = np.array([index.get(v, -1) for v in values], dtype=np.int32)
            elif kind == "float8":
                result[name] = np.array(values, dtype=float)  # None → NaN
            elif kind == "timestamptz":
                result[name] = np.array(
                    [v.astimezone(datetime.UTC).replace(tzinfo=None) for v in values],
                    dtype="datetime64[us]",
                )
            else:
                result[name] = np.array([v or 0 for v in values], dtype=pgbinary.TYPES[kind].native)
        return result
    sql, params = queryset.values(*columns).query.sql_with_params()
    quote = connection.ops.quote_name
    defaults = {"float8": "'NaN'", "int4": "0", "int8": "0", "bool": "false"}
    aggregates, label_params = [], []
    kinds = {name: "int4" if isinstance(kind, Codes) else kind for name, kind in columns.items()}
    for name, kind in columns.items():
        spec = pgbinary.TYPES[kinds[name]]
        if isinstance(kind, Codes):
            value = f"coalesce(array_position(%s::text[], q.{quote(name)}::text) - 1, -1)"
            label_params.append(list(kind.labels))
        else:
            value = f"q.{quote(name)}::{spec.sql}"
            if kind in defaults:
                value = f"coalesce({value}, {defaults[kind]})"
        aggregates.append(f"string_agg({spec.send}({value}), ''::bytea)")
    # Every aggregate reads the same rows in the same order, so the columns stay aligned.
    # Only quoted aliases and the ORM's own SQL are formatted in; values stay parameters.
    statement = f"SELECT {', '.join(aggregates)} FROM ({sql}) AS q"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(statement, [*label_params, *params])
        row = cursor.fetchone()
    return {
        name: pgbinary.unpack(data, kinds[name]) for name, data in zip(columns, row, strict=True)
    }


def field_arrays(
    queryset: QuerySet[Any], fields: Mapping[str, "str | Codes"]
) -> dict[str, np.ndarray]:
    """Model fields (or lookups such as `config__confidence_score`) of a queryset's rows as
    numpy arrays keyed by field: query_arrays under aliases of their own, without ordering."""
    aliases = {f"k_{i}": name for i, name in enumerate(fields)}
    columns = query_arrays(
        queryset.annotate(**{alias: F(name) for alias, name in aliases.items()}).order_by(),
        {alias: fields[name] for alias, name in aliases.items()},
    )
    return {name: columns[alias] for alias, name in aliases.items()}


@dataclass(frozen=True)
class Labels:
    """A text column given as codes into a short list of labels (e.g. contexts)."""

    codes: np.ndarray
    labels: Sequence[str]


def insert_arrays(
    model: type[models.Model],
    columns: Mapping[str, Any],
    *,
    replace: str | None = None,
    keep: Sequence[str] = ("created_at",),
) -> int:
    """Insert rows given column-wise: numpy arrays (bool, integer, float, datetime64), Labels,
    or one value for every row. In nullable columns NaN and, for foreign keys, 0 are NULL.

    With `replace` (the name of one of the model's unique constraints), a row whose key is
    already stored replaces it, except for the `keep` fields.

    On PostgreSQL the arrays go by binary COPY into a temporary table and from there into the
    model's table by one INSERT … SELECT [ON CONFLICT … DO UPDATE]: no Python object per
    value. Elsewhere bulk_update of the rows already stored and bulk_create of the rest."""
    arrays = {
        name: value.codes if isinstance(value, Labels) else value
        for name, value in columns.items()
        if isinstance(value, np.ndarray | Labels)
    }
    if not arrays:
        raise ValueError("insert_arrays needs at least one array column")
    count = len(next(iter(arrays.values())))
    if not count:
        return 0
    # Like bulk_create, fill auto_now / auto_now_add fields that were not given.
    now = timezone.now()
    columns = {
        **{
            f.name: now
            for f in model._meta.concrete_fields
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
        },
        **columns,
    }
    fields = {name: cast(models.Field, model._meta.get_field(name)) for name in columns}
    constraint = _unique_constraint(model, replace) if replace else None
    if connection.vendor != "postgresql":
        return _save_columns(model, fields, columns, count, constraint, keep)
    quote = connection.ops.quote_name
    staged = list(arrays)
    expressions, params = [], []
    for name, field in fields.items():
        value = columns[name]
        if name not in arrays:
            expressions.append("%s")
            params.append(field.get_db_prep_save(value, connection))
            continue
        column = f"s.c{staged.index(name)}"
        if isinstance(value, Labels):
            expressions.append(f"(%s::text[])[{column} + 1]")
            params.append(list(value.labels))
        elif field.null and value.dtype.kind == "f":
            expressions.append(f"NULLIF({column}, 'NaN')")
        elif field.null and value.dtype.kind in "iu":
            if not field.is_relation:
                raise ValueError(f"{name}: 0 stands for NULL only in foreign keys")
            expressions.append(f"NULLIF({column}, 0)")
        else:
            expressions.append(column)
    data = [np.asarray(arrays[name]) for name in staged]
    definition = ", ".join(
        f"c{i} {pgbinary.TYPES[pgbinary.kind_of(values)].sql} NOT NULL"
        for i, values in enumerate(data)
    )
    target = ", ".join(quote(str(field.column)) for field in fields.values())
    conflict = ""
    if constraint is not None:
        keys = [cast(models.Field, model._meta.get_field(n)).column for n in constraint.fields]
        kept = {cast(models.Field, model._meta.get_field(n)).column for n in keep}
        updates = ", ".join(
            f"{quote(str(f.column))} = EXCLUDED.{quote(str(f.column))}"
            for f in fields.values()
            if f.column not in {*keys, *kept}
        )
        where, where_params = _condition_sql(model, constraint)
        target_keys = ", ".join(quote(str(c)) for c in keys)
        conflict = f" ON CONFLICT ({target_keys}) {where} DO UPDATE SET {updates}"
        params += where_params
    # In a transaction of its own when called outside one: ON COMMIT DROP would otherwise drop
    # the staging table as soon as it is created.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE attune_staging ({definition}) ON COMMIT DROP")
        with cursor.connection.cursor().copy(
            "COPY attune_staging FROM STDIN (FORMAT binary)"
        ) as copy:
            for chunk in pgbinary.copy_stream(data):
                copy.write(chunk)
        cursor.execute(
            f"INSERT INTO {quote(model._meta.db_table)} ({target}) "  # noqa: S608 (quoted names)
            f"SELECT {', '.join(expressions)} FROM attune_staging AS s{conflict}",
            params,
        )
        cursor.execute("DROP TABLE attune_staging")
    return count


def _unique_constraint(model: type[models.Model], name: str) -> models.UniqueConstraint:
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and constraint.name == name:
            return constraint
    raise ValueError(f"{model.__name__} has no unique constraint named {name!r}")


def _condition_sql(
    model: type[models.Model], constraint: models.UniqueConstraint
) -> tuple[str, list[Any]]:
    """WHERE … of a partial unique constraint (PostgreSQL infers its index from it)."""
    if constraint.condition is None:
        return "", []
    query = Query(model=model, alias_cols=False)
    where = query.build_where(constraint.condition)
    sql, params = where.as_sql(query.get_compiler(connection=connection), connection)
    return f"WHERE {sql}", list(params)


def _python_columns(
    fields: Mapping[str, models.Field], columns: Mapping[str, Any], count: int
) -> dict[str, list[Any]]:
    """Each column as a list of Python values (NULL as None), keyed by field name."""
    values: dict[str, list[Any]] = {}
    for name, field in fields.items():
        column = columns[name]
        if isinstance(column, Labels):
            values[name] = [column.labels[code] for code in column.codes.tolist()]
        elif not isinstance(column, np.ndarray):
            values[name] = [column] * count
        elif column.dtype.kind == "M":
            values[name] = [
                moment.replace(tzinfo=datetime.UTC)
                for moment in column.astype("datetime64[us]").tolist()
            ]
        elif field.null and column.dtype.kind == "f":
            values[name] = [None if np.isnan(v) else v for v in column.tolist()]
        elif field.null and column.dtype.kind in "iu":
            values[name] = [v or None for v in column.tolist()]
        else:
            values[name] = column.tolist()
    return values


def _save_columns(
    model: type[models.Model],
    fields: Mapping[str, models.Field],
    columns: Mapping[str, Any],
    count: int,
    constraint: models.UniqueConstraint | None,
    keep: Sequence[str],
) -> int:
    """insert_arrays without PostgreSQL: bulk_create, and with a constraint, bulk_update of
    the rows whose key is already stored."""
    values = _python_columns(fields, columns, count)
    attnames = {name: fields[name].attname for name in values}
    objects = [
        model(**{attnames[name]: column[i] for name, column in values.items()})
        for i in range(count)
    ]
    stored: dict[tuple[Any, ...], Any] = {}
    if constraint is not None:
        keys = [cast(models.Field, model._meta.get_field(n)).attname for n in constraint.fields]
        for start in range(0, count, 200):
            match = Q()
            for obj in objects[start : start + 200]:
                match |= Q(**{key: getattr(obj, key) for key in keys})
            candidates = model._default_manager.filter(match)
            if constraint.condition is not None:
                candidates = candidates.filter(constraint.condition)
            for pk, *key in candidates.values_list("pk", *keys):
                stored[tuple(key)] = pk
        for obj in objects:
            obj.pk = stored.get(tuple(getattr(obj, key) for key in keys))
        changed = [a for n, a in attnames.items() if a not in keys and n not in keep]
        model._default_manager.bulk_update(
            [obj for obj in objects if obj.pk is not None], changed, batch_size=500
        )
    model._default_manager.bulk_create([obj for obj in objects if obj.pk is None], batch_size=500)
    return count


class AnyOf(Lookup):
    """`filter(AnyOf(F("user_id"), ids))`: the column equals one of `ids`, sent as one array
    parameter (PostgreSQL `= ANY(%s)`, SQLite `IN (SELECT value FROM json_each(%s))`). An IN
    list of thousands of placeholders costs more to build and parse than the query itself."""

    lookup_name = "any_of"
    prepare_rhs = False

    def get_db_prep_lookup(self, value: Any, connection: Any) -> Any:
        values = [int(v) for v in value]
        if connection.vendor == "postgresql":
            return "%s", [values]
        return "%s", [json.dumps(values)]

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        # lhs is the ORM's own column SQL and rhs a placeholder; the values are a parameter.
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        params = (*lhs_params, *rhs_params)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY({rhs}::bigint[])", params
        return f"{lhs} IN (SELECT value FROM json_each({rhs}))", params  # noqa: S608
