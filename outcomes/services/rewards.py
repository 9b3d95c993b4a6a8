"""Per-config bandit statistics, rebuilt from the raw rows (DESIGN.md §6)."""

from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Count, Sum

from config.db import serialized
from experiments.catalog import population_invalidate
from experiments.models import Decision, StrategyConfig
from outcomes.models import Outcome

LOCK = "outcomes.recompute_bandit_rewards"


@transaction.atomic
def bandit_rewards_recompute() -> dict[str, int]:
    """times_selected = decisions that chose the config; times_rewarded, total_reward and
    avg_reward = count, sum and mean of the rewards of outcomes attributed to it. Two SQL
    GROUP BYs; only configs whose figures changed are written, so a rerun writes nothing.
    Serialised by an advisory lock, so concurrent runs cannot interleave."""
    serialized(LOCK)
    decisions = dict(
        Decision.objects.filter(config__isnull=False)
        .values("config_id")
        .annotate(n=Count("id"))
        .values_list("config_id", "n")
        .order_by()
    )
    rewards = {
        config_id: (n, total)
        for config_id, n, total in Outcome.objects.filter(config__isnull=False)
        .values("config_id")
        .annotate(n=Count("id"), total=Sum("reward"))
        .values_list("config_id", "n", "total")
        .order_by()
    }
    current = np.array(
        list(
            StrategyConfig.objects.values_list(
                "id", "times_selected", "times_rewarded", "total_reward"
            )
        ),
        dtype=float,
    ).reshape(-1, 4)
    ids = current[:, 0].astype(np.int64)
    selected = np.array([decisions.get(int(i), 0) for i in ids], dtype=float)
    rewarded = np.array([rewards.get(int(i), (0, 0.0))[0] for i in ids], dtype=float)
    totals = np.array([rewards.get(int(i), (0, 0.0))[1] or 0.0 for i in ids], dtype=float)
    changed = (
        (current[:, 1] != selected)
        | (current[:, 2] != rewarded)
        | ~np.isclose(current[:, 3], totals, rtol=0, atol=1e-9)
    )
    updates: list[Any] = []
    for index in np.flatnonzero(changed):
        n = int(rewarded[index])
        updates.append(
            StrategyConfig(
                pk=int(ids[index]),
                times_selected=int(selected[index]),
                times_rewarded=n,
                total_reward=float(totals[index]),
                avg_reward=float(totals[index] / n) if n else 0.0,
            )
        )
    StrategyConfig.objects.bulk_update(
        updates,
        ["times_selected", "times_rewarded", "total_reward", "avg_reward"],
        batch_size=1000,
    )
    if updates:
        population_invalidate()
    return {"configs": int(ids.size), "updated": len(updates)}
