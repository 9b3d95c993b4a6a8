"""Effectiveness samples (DESIGN.md §5.2): the learner as the unit in GLOBAL scope, judged by
an A/A simulation of the service's own functions and through the service."""

import datetime

import numpy as np
import pytest
from django.utils import timezone
from scipy import stats as scipy_stats

from outcomes.models import Effectiveness
from outcomes.services.effectiveness import effectiveness_windows_compute
from outcomes.services.ingest import outcome_record_many
from outcomes.simulations import effectiveness_aa
from outcomes.windows import window_bounds, window_index
from tests.personalization.factories import UserFactory

DAYS = 14
WINDOW = window_index(timezone.now(), DAYS) - 1
START, _ = window_bounds(WINDOW, DAYS)


def test_aa__global_flag_false_positive_rate_with_learner_heterogeneity():
    """2,000 A/A windows of 80 heterogeneous learners (1 + Poisson(6) outcomes each): the
    GLOBAL flag holds 5 % ± 2 SE with the learner as the unit; with the outcome as the unit
    (the rule before) it fires far more often."""
    learner, outcome = effectiveness_aa(windows=2000, seed=20261201)
    assert abs(learner.rate - 0.05) <= 2 * learner.standard_error, str(learner)
    assert outcome.rate > 0.2, str(outcome)


def test_global_row__learners_with_many_outcomes__not_significant_per_learner(strategy_catalog):
    """40 learners with 10 outcomes each and a stable ability, split between the samples
    with no effect: per outcome Welch says p = 0.007; per learner (§5.2) p = 0.35."""
    rng = np.random.default_rng(0)
    abilities = rng.normal(0.5, 0.12, 40)
    values = [np.clip(m + rng.normal(0, 0.05, 10), 0, 1) for m in abilities]
    for index, learner_values in enumerate(values):
        user = UserFactory()
        personalized = index < 20
        outcome_record_many(
            user=user,
            items=[
                {
                    "event_id": f"{index}-{k}",
                    "context": "MISSION",
                    "personalization_applied": personalized,
                    **({"strategy": "balanced"} if personalized else {}),
                    "outcome_type": "MISSION_COMPLETED",
                    "occurred_at": START + datetime.timedelta(hours=index + k / 10),
                    "retention_score": float(value),
                }
                for k, value in enumerate(learner_values)
            ],
        )
    effectiveness_windows_compute(windows={WINDOW})
    row = Effectiveness.objects.get(scope="GLOBAL", strategy__key="balanced", window_start=START)
    p, b = values[:20], values[20:]
    per_outcome = scipy_stats.ttest_ind(np.concatenate(p), np.concatenate(b), equal_var=False)
    per_learner = scipy_stats.ttest_ind(
        [v.mean() for v in p], [v.mean() for v in b], equal_var=False
    )
    assert per_outcome.pvalue < 0.01  # what the flag used to say
    assert (row.n_personalized, row.n_baseline) == (20, 20)
    assert (row.n_outcomes_personalized, row.n_outcomes_baseline) == (200, 200)
    assert row.p_value == pytest.approx(per_learner.pvalue, rel=1e-9)
    interval = per_learner.confidence_interval(0.95)
    assert (row.ci_lower, row.ci_upper) == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert row.is_statistically_significant is False


def test_global_row__identical_constant_outcomes__p_null_never_significant(strategy_catalog):
    """20 vs 26 learners whose outcomes all carry completion_rate=0.1: undefined, not p = 0."""
    for index in range(46):
        personalized = index < 20
        outcome_record_many(
            user=UserFactory(),
            items=[
                {
                    "event_id": f"c{index}",
                    "context": "MISSION",
                    "personalization_applied": personalized,
                    **({"strategy": "balanced"} if personalized else {}),
                    "outcome_type": "MISSION_COMPLETED",
                    "occurred_at": START + datetime.timedelta(hours=index),
                    "completion_rate": 0.1,
                }
            ],
        )
    effectiveness_windows_compute(windows={WINDOW})
    row = Effectiveness.objects.get(scope="GLOBAL", strategy__key="balanced", window_start=START)
    assert row.difference == 0.0
    assert row.p_value is None
    assert row.ci_lower is None
    assert row.correlation is None
    assert row.is_statistically_significant is False


def test_config_confidence__undefined_row__keeps_the_stored_confidence(strategy_catalog):
    """A USER row with no spread on either side has no standard error: the config's
    confidence is not set to a certainty (nor to NaN), it keeps what it had."""
    from experiments.models import StrategyConfig
    from experiments.services.decisions import decision_make

    user = UserFactory()
    decision_make(user=user, context="MISSION")
    config = StrategyConfig.objects.get(user=user, strategy__key="balanced")
    items = [
        {
            "event_id": f"u{index}",
            "context": "MISSION",
            "personalization_applied": personalized,
            **({"strategy": "balanced"} if personalized else {}),
            "outcome_type": "MISSION_COMPLETED",
            "occurred_at": START + datetime.timedelta(hours=index),
            "completion_rate": 0.6 if personalized else 0.3,
        }
        for index, personalized in enumerate([True] * 25 + [False] * 25)
    ]
    outcome_record_many(user=user, items=items)
    effectiveness_windows_compute(windows={WINDOW})
    row = Effectiveness.objects.get(scope="USER", user=user, strategy__key="balanced")
    assert row.difference == pytest.approx(0.3)
    assert row.p_value is None
    config.refresh_from_db()
    assert config.confidence_score == 0.7
