"""Experiment evaluation (DESIGN.md §5.3) and bandit reweighting (§5.4).

The unit is the assigned user: each user's value is the mean of the primary metric over
their outcomes in the experiment's context at or after assignment (until completion). The
statistics are `outcomes.analysis`, which the A/A simulations call too."""

import datetime
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.db import serialized
from config.errors import DomainError
from experiments import bandits
from experiments.models import Assignment, Experiment
from experiments.services.experiments import (
    assignment_metrics_store,
    experiment_results_store,
    readiness,
)
from experiments.services.variants import variant_weights_set
from outcomes import analysis, stats
from outcomes.models import Outcome

logger = logging.getLogger(__name__)

METRIC_FIELDS = {
    "REWARD": "reward",
    "RETENTION": "retention_score",
    "PERFORMANCE": "performance_score",
    "COMPLETION": "completion_rate",
    "ENGAGEMENT": "engagement_score",
}
SRM_THRESHOLD = analysis.SRM_THRESHOLD


PRE_PERIOD = datetime.timedelta(days=14)


@dataclass(frozen=True)
class LearnerValues:
    """Per assignment, in id order: the variant, the value (mean primary metric at or after
    assignment, NaN without outcomes), the outcomes counted, the pre-period covariate (mean
    primary metric over the 14 days before assignment in any context, NaN without history)
    and the assignment time."""

    assignment_ids: np.ndarray
    variant_ids: np.ndarray
    values: np.ndarray
    counts: np.ndarray
    covariate: np.ndarray
    assigned_at: np.ndarray


def _floats(column: np.ndarray) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in column], dtype=float)


def learner_values(
    experiment: Experiment, *, covariate: bool = True, as_of: datetime.datetime | None = None
) -> LearnerValues:
    """One query: the per-user means are correlated subqueries the database aggregates.
    `as_of` sees the experiment as it stood then: only assignments and outcomes up to it."""
    metric = METRIC_FIELDS[experiment.primary_metric]
    outcomes = Outcome.objects.filter(
        user_id=OuterRef("user_id"),
        context=experiment.context,
        occurred_at__gte=OuterRef("assigned_at"),
    )
    ends = [t for t in (experiment.completed_at, as_of) if t is not None]
    if ends:
        outcomes = outcomes.filter(occurred_at__lte=min(ends))
    assignments = Assignment.objects.filter(experiment=experiment)
    if as_of is not None:
        assignments = assignments.filter(assigned_at__lte=as_of)
    per_user = outcomes.values("user_id").annotate(value=Avg(metric)).values("value")
    counts = (
        outcomes.filter(**{f"{metric}__isnull": False})
        .values("user_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    annotations: dict[str, Any] = {
        "value": Subquery(per_user[:1]),
        "n": Coalesce(Subquery(counts[:1]), 0),
    }
    if covariate:
        before = (
            Outcome.objects.filter(
                user_id=OuterRef("user_id"),
                occurred_at__lt=OuterRef("assigned_at"),
                occurred_at__gte=OuterRef("assigned_at") - PRE_PERIOD,
            )
            .values("user_id")
            .annotate(value=Avg(metric))
            .values("value")
        )
        annotations["pre"] = Subquery(before[:1])
    rows = list(
        assignments.annotate(**annotations)
        .values_list(
            "id", "variant_id", "value", "n", "assigned_at", *(["pre"] if covariate else [])
        )
        .order_by("id")
    )
    if not rows:
        empty_int, empty = np.empty(0, dtype=np.int64), np.empty(0)
        return LearnerValues(empty_int, empty_int, empty, empty_int, empty, np.empty(0))
    table = np.array(rows, dtype=object)
    return LearnerValues(
        assignment_ids=table[:, 0].astype(np.int64),
        variant_ids=table[:, 1].astype(np.int64),
        values=_floats(table[:, 2]),
        counts=table[:, 3].astype(np.int64),
        covariate=_floats(table[:, 5]) if covariate else np.full(len(rows), np.nan),
        assigned_at=np.array([t.timestamp() for t in table[:, 4]], dtype=float),
    )


def user_values(
    experiment: Experiment, *, as_of: datetime.datetime | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(assignment ids, variant ids, per-user value or NaN, outcomes counted)."""
    rows = learner_values(experiment, covariate=False, as_of=as_of)
    return rows.assignment_ids, rows.variant_ids, rows.values, rows.counts


def design_of(experiment: Experiment) -> analysis.Design:
    return analysis.Design(
        experiment_type=experiment.experiment_type,
        analysis=experiment.analysis,
        engine=experiment.engine,
        cuped=experiment.cuped,
        alpha=experiment.alpha,
        sequential_tuning=experiment.sequential_tuning,
        prior_mean=experiment.prior_mean,
        prior_sd=experiment.prior_sd,
    )


def allocation_periods(experiment: Experiment, assigned_at: np.ndarray) -> np.ndarray:
    """For a bandit, the index of the allocation each assignment was drawn with: the number
    of weight snapshots computed at or before it (0: the initial equal weights)."""
    stamps = np.array(
        [
            t.timestamp()
            for t in experiment.weight_snapshots.order_by("computed_at").values_list(
                "computed_at", flat=True
            )
        ],
        dtype=float,
    )
    return np.searchsorted(stamps, assigned_at, side="right").astype(float)


@transaction.atomic
def experiment_evaluate(
    *, experiment: Experiment, now: datetime.datetime | None = None
) -> dict[str, Any]:
    """Compute §5.3 (outcomes.analysis) and cache it on the experiment; returns the results."""
    serialized(f"outcomes.evaluate_experiment:{experiment.pk}")
    now = now or timezone.now()
    variants = list(experiment.variants.order_by("-is_control", "key"))
    rows = learner_values(experiment, covariate=experiment.cuped and not experiment.is_bandit)
    index_of = {variant.pk: i for i, variant in enumerate(variants)}
    arm_of = np.array([index_of.get(v, -1) for v in rows.variant_ids.tolist()], dtype=np.int64)
    results = analysis.analyse(
        design_of(experiment),
        [
            analysis.Arm(key=v.key, name=v.name, is_control=v.is_control, weight=v.weight)
            for v in variants
        ],
        arm_of,
        rows.values,
        covariate=rows.covariate,
        period=allocation_periods(experiment, rows.assigned_at) if experiment.is_bandit else None,
    )
    results = {
        "experiment": experiment.pk,
        "primary_metric": experiment.primary_metric,
        **results,
        "readiness": readiness(experiment, now=now),
        "evaluated_at": now.isoformat(),
    }
    winner = results["winner"]
    winning = next((v for v in variants if v.key == winner), None)
    experiment_results_store(
        experiment=experiment,
        results=results,
        winning=winning,
        srm_p_value=results["sample_ratio"]["p_value"],
        srm_mismatch=bool(results["sample_ratio"].get("mismatch")),
        evaluated_at=now,
    )
    _store_user_metrics(rows.assignment_ids, rows.values, rows.counts)
    return results


def _store_user_metrics(assignment_ids: np.ndarray, values: np.ndarray, counts: np.ndarray) -> None:
    """Each assignment's own figures ({value, outcomes}), written only where they changed."""
    assignment_metrics_store(
        assignment_ids=assignment_ids.tolist(),
        values=[None if np.isnan(v) else v for v in values.tolist()],
        counts=[int(c) for c in counts.tolist()],
    )


def experiments_evaluate_due(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """The hourly run: start SCHEDULED experiments whose start has come, evaluate every
    ACTIVE one, and complete those whose end has passed (audited as scheduled)."""
    from experiments.services.experiments import experiment_complete, experiment_start

    now = now or timezone.now()
    started = completed = evaluated = 0
    for experiment in Experiment.objects.filter(
        status=Experiment.Status.SCHEDULED, start_date__lte=now
    ):
        try:
            experiment_start(actor=None, experiment=experiment)
            started += 1
        except DomainError as exc:  # e.g. the context is busy: try again next hour
            logger.warning("scheduled start of %s postponed: %s", experiment.name, exc.detail)
    for experiment in Experiment.objects.filter(status=Experiment.Status.ACTIVE):
        experiment_evaluate(experiment=experiment, now=now)
        evaluated += 1
        if experiment.end_date and experiment.end_date <= now:
            experiment_complete(actor=None, experiment=experiment, force=True)
            experiment.refresh_from_db()
            experiment_evaluate(experiment=experiment, now=now)
            completed += 1
    from outcomes.services.holdouts import holdouts_evaluate_active

    holdouts = holdouts_evaluate_active(now=now)
    return {
        "started": started,
        "evaluated": evaluated,
        "completed": completed,
        "holdouts": holdouts,
    }


def bandit_weights_update(
    *, now: datetime.datetime | None = None, seed: int | None = None
) -> dict[str, int]:
    """§5.4 for every ACTIVE bandit: arm statistics from the users with outcomes, the
    experiment's algorithm, a snapshot of the new weights with the seed that drew them."""
    now = now or timezone.now()
    updated = 0
    for experiment in Experiment.objects.filter(
        status=Experiment.Status.ACTIVE, experiment_type=Experiment.Type.MULTI_ARMED_BANDIT
    ):
        try:
            bandit_reweight(experiment, now=now, seed=seed)
            updated += 1
        except ValueError as exc:  # one misconfigured experiment must not stop the others
            logger.warning("bandit %s not reweighted: %s", experiment.name, exc)
    return {"experiments": updated}


def bandit_reweight(
    experiment: Experiment,
    *,
    now: datetime.datetime,
    seed: int | None,
    as_of: datetime.datetime | None = None,
) -> None:
    """One bandit's §5.4 reweighting and snapshot at `now`, serialised per experiment;
    `as_of` (seed's back-dated history) weighs only what had happened by then."""
    with transaction.atomic():
        serialized(f"experiments.update_bandit_weights:{experiment.pk}")
        variants = list(experiment.variants.order_by("pk"))
        _, variant_of, values, _ = user_values(experiment, as_of=as_of)
        arms = []
        for variant in variants:
            observed = values[(variant_of == variant.pk) & ~np.isnan(values)]
            sample = stats.Sample.of(observed)
            arms.append(
                bandits.ArmOutcomes(
                    key=variant.key,
                    n=sample.n,
                    mean=sample.mean if sample.n else 0.0,
                    variance=sample.variance if sample.n >= 2 else 0.25,
                )
            )
        run_seed = seed if seed is not None else secrets.randbits(63)
        weights = bandits.bandit_weights(
            experiment.algorithm,
            arms,
            burn_in=settings.BANDIT_BURN_IN,
            epsilon=experiment.epsilon,
            min_share=experiment.min_arm_share,
            rng=np.random.default_rng(run_seed),
        )
        variant_weights_set(
            experiment=experiment,
            weights={v.pk: float(w) for v, w in zip(variants, weights, strict=True)},
            seed=run_seed,
            computed_at=now,
        )
