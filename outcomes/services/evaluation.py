"""Experiment evaluation (DESIGN.md §5.3) and bandit reweighting (§5.4).

The unit is the assigned user: each user's value is the mean of the primary metric over
their outcomes in the experiment's context at or after assignment (until completion)."""

import datetime
import logging
import secrets
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
from experiments.services.experiments import readiness
from experiments.services.variants import variant_weights_set
from outcomes import stats
from outcomes.models import Outcome

logger = logging.getLogger(__name__)

METRIC_FIELDS = {
    "REWARD": "reward",
    "RETENTION": "retention_score",
    "PERFORMANCE": "performance_score",
    "COMPLETION": "completion_rate",
    "ENGAGEMENT": "engagement_score",
}
SRM_THRESHOLD = 0.001


def user_values(experiment: Experiment) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(assignment ids, variant ids, per-user value or NaN, outcomes counted) in one query:
    the per-user mean of the primary metric is a correlated subquery the database
    aggregates."""
    metric = METRIC_FIELDS[experiment.primary_metric]
    outcomes = Outcome.objects.filter(
        user_id=OuterRef("user_id"),
        context=experiment.context,
        occurred_at__gte=OuterRef("assigned_at"),
    )
    if experiment.completed_at:
        outcomes = outcomes.filter(occurred_at__lte=experiment.completed_at)
    per_user = outcomes.values("user_id").annotate(value=Avg(metric)).values("value")
    counts = (
        outcomes.filter(**{f"{metric}__isnull": False})
        .values("user_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    rows = list(
        Assignment.objects.filter(experiment=experiment)
        .annotate(value=Subquery(per_user[:1]), n=Coalesce(Subquery(counts[:1]), 0))
        .values_list("id", "variant_id", "value", "n")
        .order_by("id")
    )
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
    table = np.array(rows, dtype=object)
    values = np.array([np.nan if v is None else v for v in table[:, 2]], dtype=float)
    return (
        table[:, 0].astype(np.int64),
        table[:, 1].astype(np.int64),
        values,
        table[:, 3].astype(np.int64),
    )


def _lift_or_none(treatment: stats.Sample, control: stats.Sample) -> stats.LiftResult | None:
    """The relative lift, or None where it is undefined (a zero or vanishing control mean)."""
    try:
        return stats.relative_lift(treatment, control)
    except ValueError:
        return None


def _json_number(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


@transaction.atomic
def experiment_evaluate(
    *, experiment: Experiment, now: datetime.datetime | None = None
) -> dict[str, Any]:
    """Compute §5.3 and cache it on the experiment; returns the results."""
    serialized(f"outcomes.evaluate_experiment:{experiment.pk}")
    now = now or timezone.now()
    variants = list(experiment.variants.order_by("-is_control", "key"))
    assignment_ids, variant_of, values, counts = user_values(experiment)
    per_variant: dict[int, dict[str, Any]] = {}
    samples: dict[int, stats.Sample] = {}
    for variant in variants:
        mine = variant_of == variant.pk
        observed = values[mine & ~np.isnan(values)]
        samples[variant.pk] = stats.Sample.of(observed)
        per_variant[variant.pk] = {
            "key": variant.key,
            "name": variant.name,
            "is_control": variant.is_control,
            "weight": variant.weight,
            "assigned": int(mine.sum()),
            "with_outcomes": int(observed.size),
            "mean": _json_number(samples[variant.pk].mean),
            "variance": _json_number(samples[variant.pk].variance),
            "sum": float(observed.sum()),
            "sum_of_squares": float((observed**2).sum()),
        }
    control = next((v for v in variants if v.is_control), None)
    comparisons = []
    if control is not None:
        for variant in variants:
            if variant.pk == control.pk:
                continue
            t, c = samples[variant.pk], samples[control.pk]
            row: dict[str, Any] = {"variant": variant.key}
            if t.n >= 2 and c.n >= 2:
                welch = stats.welch(t, c)
                row.update(
                    difference=welch.difference,
                    ci_lower=welch.ci_lower,
                    ci_upper=welch.ci_upper,
                    p_value=welch.p_value,
                    chance_to_beat_control=stats.chance_to_beat(t, c),
                )
                lift = _lift_or_none(t, c)
                if lift is not None:
                    row.update(
                        relative_lift=lift.lift,
                        lift_ci_lower=lift.ci_lower,
                        lift_ci_upper=lift.ci_upper,
                        lift_p_value=lift.p_value,
                    )
            comparisons.append(row)
    testable = [row for row in comparisons if "p_value" in row]
    if experiment.experiment_type == Experiment.Type.MULTIVARIATE and testable:
        for row, adjusted in zip(
            testable, stats.holm([r["p_value"] for r in testable]), strict=True
        ):
            row["adjusted_p_value"] = adjusted
    else:
        for row in testable:
            row["adjusted_p_value"] = row["p_value"]
    for row in comparisons:
        for name, number in list(row.items()):
            if isinstance(number, float):
                row[name] = _json_number(number)

    srm_p = None
    if experiment.experiment_type != Experiment.Type.MULTI_ARMED_BANDIT and variants:
        srm_p = _json_number(
            stats.sample_ratio_p_value(
                [per_variant[v.pk]["assigned"] for v in variants], [v.weight for v in variants]
            )
        )
    winners = [
        row
        for row in testable
        if row["adjusted_p_value"] is not None
        and row["adjusted_p_value"] < experiment.alpha
        and (row["difference"] or 0) > 0
    ]
    winner = max(winners, key=lambda row: row["difference"]) if winners else None
    results = {
        "experiment": experiment.pk,
        "primary_metric": experiment.primary_metric,
        "variants": [per_variant[v.pk] for v in variants],
        "comparisons": comparisons,
        "sample_ratio": {
            "p_value": srm_p,
            "mismatch": srm_p is not None and srm_p < SRM_THRESHOLD,
        },
        "winner": winner["variant"] if winner else None,
        "readiness": readiness(experiment, now=now),
        "evaluated_at": now.isoformat(),
    }
    winning = next((v for v in variants if winner and v.key == winner["variant"]), None)
    Experiment.objects.filter(pk=experiment.pk).update(
        variant_metrics=results,
        winning_variant=winning,
        statistical_significance=bool(winners),
        srm_p_value=srm_p,
        evaluated_at=now,
    )
    _store_user_metrics(assignment_ids, values, counts)
    return results


def _store_user_metrics(assignment_ids: np.ndarray, values: np.ndarray, counts: np.ndarray) -> None:
    """Each assignment's own figures ({value, outcomes}), written only where they changed."""
    current = dict(
        Assignment.objects.filter(pk__in=assignment_ids.tolist()).values_list("id", "metrics")
    )
    changed = []
    for assignment_id, value, count in zip(
        assignment_ids.tolist(), values.tolist(), counts.tolist(), strict=True
    ):
        metrics = {"value": None if np.isnan(value) else value, "outcomes": int(count)}
        if current.get(assignment_id) != metrics:
            changed.append(Assignment(pk=assignment_id, metrics=metrics))
    Assignment.objects.bulk_update(changed, ["metrics"], batch_size=1000)


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
    return {"started": started, "evaluated": evaluated, "completed": completed}


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
            _reweight(experiment, now=now, seed=seed)
            updated += 1
        except ValueError as exc:  # one misconfigured experiment must not stop the others
            logger.warning("bandit %s not reweighted: %s", experiment.name, exc)
    return {"experiments": updated}


def _reweight(experiment: Experiment, *, now: datetime.datetime, seed: int | None) -> None:
    """One bandit's §5.4 reweighting and snapshot, serialised per experiment."""
    with transaction.atomic():
        serialized(f"experiments.update_bandit_weights:{experiment.pk}")
        variants = list(experiment.variants.order_by("pk"))
        _, variant_of, values, _ = user_values(experiment)
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
