"""How the outcomes app's rows follow a learner merged into another (DESIGN.md §10)."""

import hashlib
from typing import Any

import numpy as np
from django.db.models import Count, F, Sum

from config.arrays import AnyOf
from config.db import serialized
from experiments.models import Decision, StrategyConfig
from experiments.services.statistics import RewardFigures, config_rewards_apply
from outcomes.models import Outcome
from outcomes.services.effectiveness import effectiveness_windows_mark_stale
from outcomes.services.rewards import LOCK as REWARDS_LOCK
from outcomes.watermarks import counted_by_last_run

MAX_EVENT_ID = 64
# 80 bits: no two re-keyed ids of a learner meet by chance.
DIGEST_CHARS = 20


def merged_event_id(event_id: str, source_id: int) -> str:
    """The event id a merged learner's outcome takes when the survivor already holds its
    own: deterministic, so a repeated merge (or a client that knows the rule) finds it.
    `<event id>~merged-<id>` where that fits the column; otherwise the event id is cut and a
    digest of the whole event id and the merged learner's id keeps cut ids apart
    (`<head>~<digest>~merged-<id>`: cutting alone made two long ids with a common head one)."""
    suffix = f"~merged-{source_id}"
    if len(event_id) + len(suffix) <= MAX_EVENT_ID:
        return event_id + suffix
    digest = hashlib.sha256(f"{source_id}:{event_id}".encode()).hexdigest()[:DIGEST_CHARS]
    tail = f"~{digest}{suffix}"
    return event_id[: MAX_EVENT_ID - len(tail)] + tail


def outcomes_merge(source: Any, target: Any) -> int:
    """Outcomes move to the survivor, pointed at the survivor's config of the same strategy
    where it has one; an outcome whose event id the survivor already holds is re-keyed
    (merged_event_id), so no measurement is lost. The watermark cannot see rows that change
    owner, so their windows are marked for the next hourly effectiveness run."""
    effectiveness_windows_mark_stale(
        key=f"merged-{source.pk}", outcomes=Outcome.objects.filter(user=source), user_id=target.pk
    )
    taken = Outcome.objects.filter(user=target).values("event_id")
    for pk, event_id in Outcome.objects.filter(user=source, event_id__in=taken).values_list(
        "pk", "event_id"
    ):
        Outcome.objects.filter(pk=pk).update(event_id=merged_event_id(event_id, source.pk))
    rows = Outcome.objects.filter(user=source)
    mine = dict(StrategyConfig.objects.filter(user=target).values_list("strategy_id", "id"))
    for config_id, strategy_id in StrategyConfig.objects.filter(user=source).values_list(
        "id", "strategy_id"
    ):
        if strategy_id in mine:
            rows.filter(config_id=config_id).update(config_id=mine[strategy_id])
    return rows.update(user=target)


def reward_figures_rebuild(source: Any, target: Any) -> int:
    """The survivor's configs' reward figures from the rows the last reward run counted
    (rows after it are the next run's to add), so the incremental figures stay equal to a
    rebuild; written by the experiments app. Before any reward run there is nothing to
    rebuild: the first run rebuilds all. Returns the configs written."""
    serialized(REWARDS_LOCK)
    configs = list(
        StrategyConfig.objects.filter(user=target).order_by("id").values_list("id", flat=True)
    )
    decisions = counted_by_last_run(
        REWARDS_LOCK, Decision.objects.filter(AnyOf(F("config_id"), configs))
    )
    outcomes = counted_by_last_run(
        REWARDS_LOCK, Outcome.objects.filter(AnyOf(F("config_id"), configs))
    )
    if decisions is None or outcomes is None or not configs:
        return 0
    chosen = dict(
        decisions.values("config_id")
        .annotate(n=Count("id"))
        .values_list("config_id", "n")
        .order_by()
    )
    rewarded = {
        row["config_id"]: row
        for row in outcomes.values("config_id")
        .annotate(n=Count("id"), total=Sum("reward"), total_sq=Sum(F("reward") * F("reward")))
        .order_by()
    }

    def figure(name: str) -> list[Any]:
        return [(rewarded.get(c) or {}).get(name) or 0 for c in configs]

    figures = RewardFigures(
        ids=np.array(configs, dtype=np.int64),
        selected=np.array([chosen.get(c, 0) for c in configs], dtype=np.int64),
        rewarded=np.array(figure("n"), dtype=np.int64),
        total=np.array(figure("total"), dtype=np.float64),
        total_sq=np.array(figure("total_sq"), dtype=np.float64),
    )
    return len(config_rewards_apply(figures=figures, replace=True, within=configs))
