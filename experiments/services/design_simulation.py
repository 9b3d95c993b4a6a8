"""`experiments/{id}/simulate/`: a DRAFT experiment's design simulated before launch
(experiments/design_simulation.py) — power, false-winner rate, expected regret and days to
readiness of the design as configured, beside the alternative staff would weigh it against
(a bandit's fixed equal split, a fixed split's THOMPSON bandit).

The world is measured from the context as the planner measures it (outcomes/services/
planning.py): the daily number of deciding learners over the last 28 days and, unless given,
the mean and sd of the learners' mean primary metric over the same days. The planner lives in
outcomes, which depends on experiments; this read-only use of it runs against the apps' usual
direction, as the policy simulator's use of outcomes/ope.py does. Targeting is not
modelled: every learner of the namespace range and traffic share counts as eligible, so a
targeted design enrols fewer learners than simulated.
"""

import dataclasses
import datetime
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Avg
from django.utils import timezone

from config.errors import ConflictError, DomainError
from experiments import design_simulation as simulation
from experiments.models import Experiment, Variant
from outcomes import analysis, planning
from outcomes.models import Outcome
from outcomes.services import planning as context_planning
from outcomes.services.evaluation import METRIC_FIELDS, design_of

DEFAULT_DAYS = 28
DEFAULT_RUNS = 200
MAX_RUNS = 1000
# Simulated runs × days: each day of a bandit run is one §5.4 update (10,000 Thompson draws),
# so this bounds the time a request can take (about 15 s on two cores).
MAX_RUN_DAYS = 28_000
MAX_LEARNERS = 20_000_000  # learners drawn over all runs, days and designs


def _learner_means(context: str, metric: str, since: datetime.datetime) -> np.ndarray:
    """Each learner's mean primary metric in the context since `since`, as the planner
    measures rewards."""
    field = METRIC_FIELDS[metric]
    means = (
        Outcome.objects.filter(
            context=context, occurred_at__gte=since, **{f"{field}__isnull": False}
        )
        .values("user_id")
        .annotate(mean=Avg(field))
        .order_by()
        .values_list("mean", flat=True)
    )
    return np.array(list(means), dtype=float)


def planned_days(experiment: Experiment, *, now: datetime.datetime) -> int:
    """The experiment's planned duration in whole days (from its start, or from now when it
    has none, to its end), else DEFAULT_DAYS."""
    start = experiment.start_date or now
    if experiment.end_date and experiment.end_date > start:
        return max(1, math.ceil((experiment.end_date - start).total_seconds() / 86400))
    return DEFAULT_DAYS


def _designs(experiment: Experiment, variants: list[Variant]) -> list[simulation.DesignSpec]:
    """The design as configured, then the alternative(s) to compare it with."""
    rules = design_of(experiment)
    equal = tuple(1.0 for _ in variants)
    fixed_type = Experiment.Type.AB_TEST if len(variants) == 2 else Experiment.Type.MULTIVARIATE
    common = {
        "epsilon": experiment.epsilon,
        "min_arm_share": experiment.min_arm_share,
        "burn_in": settings.BANDIT_BURN_IN,
        "min_participants": experiment.min_participants,
        "min_duration_days": experiment.min_duration_days,
    }
    fixed_split = simulation.DesignSpec(
        label="fixed split",
        rules=dataclasses.replace(rules, experiment_type=str(fixed_type)),
        weights=equal,
        **common,
    )
    thompson = simulation.DesignSpec(
        label=str(Experiment.Algorithm.THOMPSON),
        rules=dataclasses.replace(rules, experiment_type=str(Experiment.Type.MULTI_ARMED_BANDIT)),
        weights=equal,
        algorithm=str(Experiment.Algorithm.THOMPSON),
        **common,
    )
    if experiment.is_bandit:
        # Bandits start with equal weights (experiment_start), whatever the draft says.
        configured = dataclasses.replace(
            thompson, label="as configured", algorithm=experiment.algorithm
        )
        if experiment.algorithm == Experiment.Algorithm.THOMPSON:
            return [configured, fixed_split]
        return [configured, fixed_split, thompson]
    configured = dataclasses.replace(
        fixed_split,
        label="as configured",
        rules=rules,
        weights=tuple(float(v.weight) for v in variants),
    )
    return [configured, thompson]


def _check_design(experiment: Experiment, variants: list[Variant]) -> None:
    controls = sum(1 for v in variants if v.is_control)
    if len(variants) < 2 or controls != 1:
        raise DomainError(
            f"Experiment {experiment.name!r} has {len(variants)} variant(s) and {controls} "
            "control(s): a design to simulate needs a control and at least one treatment.",
            code="cannot_simulate",
            attr="variants",
        )
    if not experiment.is_bandit and not sum(v.weight for v in variants) > 0:
        raise DomainError(
            "Every variant has weight 0: nobody would be assigned.",
            code="cannot_simulate",
            attr="variants",
        )
    if experiment.min_arm_share * len(variants) > 1:
        raise DomainError(
            f"min_arm_share {experiment.min_arm_share} × {len(variants)} variants exceeds 1, "
            "so no bandit weights exist.",
            code="cannot_simulate",
            attr="min_arm_share",
        )


def _effects(
    variants: list[Variant],
    effects: Mapping[str, float] | None,
    default: float | None,
) -> dict[str, float]:
    keys = {v.key for v in variants}
    given = dict(effects or {})
    unknown = sorted(set(given) - keys)
    if unknown:
        raise DomainError(
            f"effects names {', '.join(unknown)}, not a variant of this experiment "
            f"(variants: {', '.join(sorted(keys))}).",
            code="unknown_variant",
            attr="effects",
        )
    control = next(v.key for v in variants if v.is_control)
    if given.get(control, 0.0) != 0.0:
        raise DomainError(
            f"{control} is the control: lifts are relative to it, so its own is 0.",
            code="invalid",
            attr="effects",
        )
    resolved = {}
    for variant in variants:
        lift = 0.0 if variant.is_control else given.get(variant.key, default)
        if lift is None:
            raise DomainError(
                f"No lift is known for {variant.key}: give effects or mde.",
                code="invalid",
                attr="effects",
            )
        resolved[variant.key] = float(lift)
    return resolved


def experiment_simulate(
    *,
    experiment: Experiment,
    effects: Mapping[str, float] | None = None,
    mde: float | None = None,
    baseline_mean: float | None = None,
    sd: float | None = None,
    runs: int = DEFAULT_RUNS,
    seed: int = 0,
    days: int | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Simulate a DRAFT experiment's design and its alternative (see the module docstring).
    A variant missing from `effects` gets `mde`, or without it the planner's MDE: the
    smallest relative lift the planner (§5.3, power 0.8) detects with the learners the
    horizon brings, split equally."""
    now = now or timezone.now()
    if experiment.status != Experiment.Status.DRAFT:
        raise ConflictError(
            f"Experiment {experiment.name!r} is {experiment.status}: only a DRAFT design is "
            "simulated before launch (the results of a running one are at results/).",
            code="experiment_not_draft",
        )
    variants = list(experiment.variants.order_by("-is_control", "key"))
    _check_design(experiment, variants)
    if not 2 <= runs <= MAX_RUNS:
        raise DomainError(f"runs must be from 2 to {MAX_RUNS:,}.", attr="runs")
    if mde is not None and not mde > 0:
        raise DomainError(
            "The minimum detectable effect must be above 0 (e.g. 0.05 for 5 %).", attr="mde"
        )
    horizon = days if days is not None else planned_days(experiment, now=now)
    if runs * horizon > MAX_RUN_DAYS:
        raise DomainError(
            f"{runs:,} runs × {horizon:,} days is more than {MAX_RUN_DAYS:,} simulated "
            "run-days: lower runs or days.",
            code="too_large",
            attr="runs",
        )

    measured = {"baseline_mean": baseline_mean is None, "sd": sd is None}
    if baseline_mean is None or sd is None:
        values = _learner_means(
            experiment.context, experiment.primary_metric, now - context_planning.LOOKBACK
        )
        if values.size < 2:
            raise DomainError(
                f"{experiment.context} has {experiment.primary_metric.lower()} outcomes from "
                f"{values.size} learner(s) in the last 28 days: give baseline_mean and sd, or "
                "simulate once learners have reported outcomes.",
                code="not_measurable",
                attr="baseline_mean" if baseline_mean is None else "sd",
            )
        baseline_mean = float(values.mean()) if baseline_mean is None else baseline_mean
        sd = float(values.std(ddof=1)) if sd is None else sd
    if not sd > 0:
        raise DomainError(
            "The standard deviation must be above 0 (the learners measured all had the same "
            "value: give sd)."
            if measured["sd"]
            else "The standard deviation must be above 0.",
            attr="sd",
        )
    traffic = context_planning.daily_learners(experiment.context, now=now)
    if traffic <= 0:
        raise DomainError(
            f"No learner was decided for in {experiment.context} in the last 28 days, so "
            "there is no traffic to simulate: simulate once the context has traffic.",
            code="no_traffic",
            attr="context",
        )
    share = (
        experiment.traffic_percent / 100 * (experiment.namespace_end - experiment.namespace_start)
    )
    enrolled_per_day = traffic * share
    if enrolled_per_day <= 0:
        raise DomainError(
            "traffic_percent is 0: nobody would take part.",
            code="no_traffic",
            attr="traffic_percent",
        )
    designs = _designs(experiment, variants)
    if runs * horizon * enrolled_per_day * len(designs) > MAX_LEARNERS:
        raise DomainError(
            f"About {runs * horizon * enrolled_per_day * len(designs):,.0f} simulated learners "
            f"exceed {MAX_LEARNERS:,}: lower runs or days.",
            code="too_large",
            attr="runs",
        )

    default = mde
    if default is None and (effects is None or len(effects) < len(variants) - 1):
        try:
            default = simulation.detectable_mde(
                baseline_mean=baseline_mean,
                sd=sd,
                learners_per_variant=enrolled_per_day * horizon / len(variants),
                variants=len(variants),
                alpha=experiment.alpha,
                analysis_kind=experiment.analysis,
                tuning=experiment.sequential_tuning,
            )
        except planning.PlanError as exc:
            raise DomainError(str(exc), code="cannot_plan", attr=exc.attr) from exc
        if default is None:
            raise DomainError(
                f"About {enrolled_per_day * horizon:,.0f} learners in {horizon} days are too "
                "few for the planner to name a detectable effect: give effects.",
                code="cannot_plan",
                attr="effects",
            )
    lifts = _effects(variants, effects, default)
    scenario = simulation.Scenario(
        arms=tuple(
            analysis.Arm(key=v.key, name=v.name, is_control=v.is_control, weight=v.weight)
            for v in variants
        ),
        means=tuple(baseline_mean * (1 + lifts[v.key]) for v in variants),
        sd=sd,
        learners_per_day=traffic,
        enrolment_share=share,
        days=horizon,
        runs=runs,
        seed=seed,
    )
    results = simulation.simulate(scenario, designs)
    return {
        "experiment": experiment.pk,
        "assumptions": {
            "baseline_mean": baseline_mean,
            "sd": sd,
            "measured": measured,
            "primary_metric": experiment.primary_metric,
            "effects": lifts,
            "mde": default,
            "learners_per_day": traffic,
            "enrolment_share": share,
            "enrolled_per_day": enrolled_per_day,
            "days": horizon,
            "runs": runs,
            "seed": seed,
        },
        "designs": [_design_row(result) for result in results],
    }


def _figure(figure: simulation.Figure) -> dict[str, float | None]:
    return {"value": figure.value, "standard_error": figure.standard_error}


def _design_row(result: simulation.DesignResult) -> dict[str, Any]:
    design = result.design
    return {
        "design": design.label,
        "experiment_type": design.rules.experiment_type,
        "algorithm": design.algorithm,
        "analysis": design.rules.analysis,
        "engine": design.rules.engine,
        "weights": None if design.is_bandit else list(design.weights),
        "power": _figure(result.power),
        "false_winner_rate": _figure(result.false_winner_rate),
        "expected_regret": _figure(result.expected_regret),
        "days_to_readiness": {"median": result.readiness_median, "p90": result.readiness_p90},
        "days_to_winner": {"median": result.winner_median},
        "learners": result.learners,
        "allocation": result.allocation,
    }
