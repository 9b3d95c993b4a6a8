"""Model building blocks shared by every app."""

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet
from django_filters import FilterSet

T = TypeVar("T")


class TimeStampedModel(models.Model):
    """Every model carries `created_at` and `updated_at` (DESIGN.md §3)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def apply_filters(
    filterset_class: type[FilterSet], filters: Mapping[str, Any] | None, queryset: QuerySet[Any]
) -> QuerySet[Any]:
    """Narrow `queryset` with a django-filter FilterSet; invalid values raise ValidationError
    naming the filter instead of being ignored."""
    if not filters:
        return queryset
    filterset = filterset_class(filters, queryset=queryset)
    if not filterset.is_valid():
        raise ValidationError(filterset.form.errors.as_data())
    return filterset.qs


def serialized(name: str) -> None:
    """Serialise a recomputation across processes until the current transaction ends
    (DESIGN.md §10): PostgreSQL's transaction-scoped advisory lock. SQLite already admits
    one writing transaction at a time."""
    from django.db import connection, transaction

    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("serialized() must run inside transaction.atomic")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])


class CurrentTransactionId(models.Func):
    """`db_default` of a row's `txid`: on PostgreSQL the 64-bit id of the transaction that
    inserted it (`pg_current_xact_id()`), which with the snapshots of outcomes/watermarks.py
    tells exactly which rows committed between two runs; NULL elsewhere (SQLite commits one
    writer at a time, so ids alone tell)."""

    output_field = models.BigIntegerField()
    arity = 0
    template = "NULL"

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="(pg_current_xact_id()::text::bigint)", **extra
        )


def first_read(connection: Any, read: Callable[[], T]) -> T:
    """Run `read`, the request's first statement and a read, without the round trip of
    Django's per-request health check (`CONN_HEALTH_CHECKS`, DESIGN.md §10: a `SELECT 1` before
    the first query of every request on a persistent connection) and with its guarantee:
    when the connection died since the last request (a database restart), the read fails,
    the connection is replaced and the read runs once more, so no request fails for it. Only
    for reads (a failed write may have been applied), and only outside a transaction."""
    from django.db import InterfaceError, OperationalError

    unchecked = (
        connection.connection is not None
        and connection.health_check_enabled
        and not connection.health_check_done
        and not connection.in_atomic_block
    )
    if not unchecked:
        return read()
    connection.health_check_done = True
    try:
        return read()
    except (OperationalError, InterfaceError):
        if connection.is_usable():
            raise  # the statement failed, not the connection
        connection.close()
        return read()
