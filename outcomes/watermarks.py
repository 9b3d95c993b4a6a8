"""Per-task watermarks of the incremental recomputations (DESIGN.md §6): which rows of the
append-only tables (decisions, outcomes) committed between a task's last run and this one.

A timestamp or an id cannot say that on PostgreSQL: a transaction that took its id (or its
clock) before another may commit after it, and a run in between would skip its rows for
good. So each row carries the id of the transaction that inserted it (`txid`, a column
default), and a run keeps the snapshot it read under (`pg_current_snapshot()`): the rows
new to this run are those whose transaction is visible in this run's snapshot and was not in
the last one's. Nothing committed late or concurrently is skipped, nothing is read twice, and
an index on `txid` (from the last snapshot's xmin up) finds them without reading history.

SQLite admits one writing transaction at a time, so rows commit in id order there and the
highest id per table is the watermark.

Use inside the task's transaction, after its lock (`config.db.serialized`):

    span = span_begin(TASK, TABLES)
    sql, params = span.new("o", "outcomes_outcome")    # or span.seen(...) for a rebuild
    ...
    span_commit(span)                                  # in the same transaction
"""

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from outcomes.models import Watermark


def _seen_by(state: dict[str, Any], alias: str, table: str) -> tuple[str, list[Any]]:
    """PostgreSQL: a row committed by the time of `state`'s snapshot. The snapshot cannot
    speak for the transaction that took it (`pg_visible_in_snapshot` may call it visible
    while it runs), so that transaction's own rows are told by id: those it had written."""
    visible = f"pg_visible_in_snapshot({alias}.txid::text::xid8, %s::pg_snapshot)"
    if state.get("own") is None:
        return visible, [state["snapshot"]]
    return (
        f"(CASE WHEN {alias}.txid = %s THEN {alias}.id <= %s ELSE {visible} END)",
        [state["own"], state["own_ids"][table], state["snapshot"]],
    )


@dataclass(frozen=True)
class Span:
    task: str
    postgresql: bool
    previous: dict[str, Any] | None  # None: the task never ran
    current: dict[str, Any]

    @property
    def first(self) -> bool:
        return self.previous is None

    def seen(self, alias: str, table: str) -> tuple[str, list[Any]]:
        """SQL condition on `alias` (a row of `table`): committed by this run's snapshot.
        On PostgreSQL rows from before the `txid` column carry NULL and count as seen."""
        if self.postgresql:
            sql, params = _seen_by(self.current, alias, table)
            return f"({alias}.txid IS NULL OR {sql})", params
        return f"({alias}.id <= %s)", [self.current["ids"][table]]

    def new(self, alias: str, table: str) -> tuple[str, list[Any]]:
        """SQL condition on `alias`: committed after the last run's snapshot and by this
        run's (everything seen, on the first run)."""
        if self.previous is None:
            return self.seen(alias, table)
        if self.postgresql:
            now, now_params = _seen_by(self.current, alias, table)
            before, before_params = _seen_by(self.previous, alias, table)
            return (
                f"({alias}.txid >= %s AND {now} AND NOT {before})",
                [snapshot_xmin(self.previous["snapshot"]), *now_params, *before_params],
            )
        return (
            f"({alias}.id > %s AND {alias}.id <= %s)",
            [self.previous["ids"].get(table, 0), self.current["ids"][table]],
        )

    def new_rows(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """`queryset` narrowed to the rows `new` names (its model's own table)."""
        table = queryset.model._meta.db_table
        return _narrowed(queryset, *self.new(table, table))

    def seen_rows(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """`queryset` narrowed to the rows `seen` names (its model's own table)."""
        table = queryset.model._meta.db_table
        return _narrowed(queryset, *self.seen(table, table))


def _narrowed(queryset: QuerySet[Any], sql: str, params: list[Any]) -> QuerySet[Any]:
    # The SQL is this module's own text; every value travels as a parameter.
    return queryset.filter(RawSQL(sql, params, output_field=BooleanField()))  # noqa: S611


def snapshot_xmin(snapshot: str) -> int:
    """The oldest transaction a snapshot saw running ("xmin:xmax:xip,…", its own included):
    every transaction below it had ended, so a row new since the snapshot has a txid at or
    above it."""
    return int(snapshot.split(":", 1)[0])


def span_begin(task: str, tables: tuple[str, ...]) -> Span:
    """The last run's watermark of `task` and this run's (taken now)."""
    previous = Watermark.objects.filter(task=task).values_list("state", flat=True).first()
    postgresql = connection.vendor == "postgresql"
    current: dict[str, Any]
    with connection.cursor() as cursor:
        if postgresql:
            cursor.execute(
                "SELECT pg_current_snapshot()::text, pg_current_xact_id_if_assigned()::text"
            )
            snapshot, own = cursor.fetchone()
            current = {"snapshot": snapshot, "own": None if own is None else int(own)}
            if own is not None:  # this transaction has written: which of its rows exist
                current["own_ids"] = {}
                for table in tables:
                    cursor.execute(
                        f"SELECT COALESCE(MAX(id), 0) FROM {table} WHERE txid = %s",  # noqa: S608
                        [int(own)],
                    )
                    current["own_ids"][table] = cursor.fetchone()[0]
        else:
            ids = {}
            for table in tables:
                cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608
                ids[table] = cursor.fetchone()[0]
            current = {"ids": ids}
    if previous is not None and ("snapshot" in previous) != postgresql:
        previous = None  # written by another database: start over
    return Span(task=task, postgresql=postgresql, previous=previous, current=current)


def committed_by_last_run(task: str, alias: str, table: str) -> tuple[str, list[Any]] | None:
    """SQL condition on `alias`: the row was committed by the time of `task`'s last run, so
    that run has counted it; None if the task never ran. (The retention purge deletes only
    decisions the reward run has counted.)"""
    state = Watermark.objects.filter(task=task).values_list("state", flat=True).first()
    if state is None:
        return None
    if connection.vendor == "postgresql":
        if "snapshot" not in state:
            return None
        sql, params = _seen_by(state, alias, table)
        return f"({alias}.txid IS NULL OR {sql})", params
    if "ids" not in state:
        return None
    return f"({alias}.id <= %s)", [state["ids"].get(table, 0)]


def counted_by_last_run(task: str, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
    """`queryset` narrowed to the rows `task`'s last run counted (committed_by_last_run on
    its model's own table); None if the task never ran."""
    table = queryset.model._meta.db_table
    counted = committed_by_last_run(task, table, table)
    return None if counted is None else _narrowed(queryset, *counted)


def span_commit(span: Span) -> None:
    """Record this run's watermark; call in the run's transaction, so a run that fails
    leaves the last one's."""
    Watermark.objects.update_or_create(task=span.task, defaults={"state": span.current})
