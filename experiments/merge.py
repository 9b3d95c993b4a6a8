"""How the experiments app's rows follow a learner merged into another (DESIGN.md §10)."""

from typing import Any

from django.db.models import F

from experiments.models import Decision, StrategyConfig


def decisions_and_configs_merge(source: Any, target: Any) -> int:
    """Decisions move to the survivor, pointed at the survivor's config of the same strategy
    where it has one; the merged learner's other configs move with them (inactive where the
    survivor already has an active config in the context). Configs of strategies both have
    stay the survivor's (the merged one's purged-decision count is added to it); the
    outcomes app then rebuilds the survivor's reward figures from the rows."""
    mine = {c.strategy_id: c for c in StrategyConfig.objects.filter(user=target)}
    theirs = list(StrategyConfig.objects.filter(user=source).order_by("id"))
    moved = 0
    for config in theirs:
        survivor = mine.get(config.strategy_id)
        if survivor is None:
            continue
        moved += Decision.objects.filter(user=source, config=config).update(
            config=survivor, user=target
        )
        if config.selections_purged:
            StrategyConfig.objects.filter(pk=survivor.pk).update(
                selections_purged=F("selections_purged") + config.selections_purged
            )
    active_contexts = {c.context for c in mine.values() if c.is_active}
    for config in theirs:
        if config.strategy_id in mine:
            continue
        config.user_id = target.pk
        if config.is_active and config.context in active_contexts:
            config.is_active = False
        config.save(update_fields=["user", "is_active", "updated_at"])
    moved += Decision.objects.filter(user=source).update(user=target)
    return moved
