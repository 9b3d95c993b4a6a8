"""Writes of the decision log's retention (DESIGN.md §6 `logs.purge_expired_logs`, driven by
outcomes/services/retention.py): the decisions deleted, and the count of decisions each config
lost, which a rebuild of the reward statistics adds back."""

from collections.abc import Mapping

from django.db.models import F

from config.arrays import AnyOf, update_columns
from experiments.models import Decision, StrategyConfig


def decisions_delete(*, ids: list[int]) -> int:
    """Delete these decisions, whose links from outcomes and recommendations are already
    cleared: one statement, the ids as one array parameter (no per-row collection)."""
    if not ids:
        return 0
    queryset = Decision.objects.filter(AnyOf(F("id"), ids)).order_by()
    return int(queryset._raw_delete(queryset.db))


def config_selections_purged_add(*, counts: Mapping[int, int]) -> int:
    """Add the decisions purged from each config to its `selections_purged`, the configs
    locked in id order first, as every writer of configs locks them (STYLE.md rule 5); call
    inside a transaction. Returns the configs written (a config gone since is skipped)."""
    ids = sorted(counts)
    if not ids:
        return 0
    stored = dict(
        StrategyConfig.objects.filter(AnyOf(F("id"), ids))
        .order_by("id")
        .select_for_update(no_key=True)
        .values_list("id", "selections_purged")
    )
    present = [config_id for config_id in ids if config_id in stored]
    return update_columns(
        StrategyConfig,
        present,
        {"selections_purged": [stored[c] + counts[c] for c in present]},
    )
