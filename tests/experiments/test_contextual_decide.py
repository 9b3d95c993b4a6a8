"""ADAPTIVE_POLICY = CONTEXTUAL_THOMPSON in the decide call (DESIGN.md §4 step 3): the model
is fitted to the context's learners and cached with the population means, a learner's
strategy follows their features, the logged propensity is the probability it was drawn with,
and the call keeps its query budget."""

import numpy as np
import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from experiments import bandits, contextual
from experiments.catalog import context_catalog, contextual_model, population_invalidate
from experiments.models import Decision, StrategyConfig
from experiments.services.decisions import decision_make
from personalization.models import Preferences
from tests.personalization.factories import UserFactory

CONTEXTUAL = override_settings(ADAPTIVE_POLICY="CONTEXTUAL_THOMPSON")


def _cohort_learner(cohort: str, **fields):
    user = UserFactory(attributes={"cohort": cohort}, **fields)
    Preferences.objects.create(user=user, personalization_level="MEDIUM")
    return user


@pytest.fixture
def cohorts(strategy_catalog):
    """40 learners with 30 rewards per strategy: cohort "a" does best with balanced, "b" with
    pattern_heavy (0.8 against 0.3); the two tie across everyone."""
    keys = ("conservative", "balanced", "pattern_heavy", "prediction_heavy")
    configs = []
    for index in range(40):
        cohort = "ab"[index % 2]
        user = _cohort_learner(cohort)
        best = "balanced" if cohort == "a" else "pattern_heavy"
        for key in keys:
            mean = 0.8 if key == best else 0.3
            configs.append(
                StrategyConfig(
                    user=user,
                    context="MISSION",
                    strategy=strategy_catalog[("MISSION", key)],
                    times_rewarded=30,
                    total_reward=30 * mean,
                    total_reward_sq=30 * (0.02 + mean**2),
                    avg_reward=mean,
                    is_active=key == "conservative",
                )
            )
    StrategyConfig.objects.bulk_create(configs)
    population_invalidate()
    return {key: strategy_catalog[("MISSION", key)] for key in keys}


@CONTEXTUAL
def test_contextual__a_new_learner_gets_the_strategy_of_their_cohort(cohorts):
    for cohort, best in (("a", "balanced"), ("b", "pattern_heavy")):
        learner = _cohort_learner(cohort)
        chosen = [
            decision_make(user=learner, context="MISSION", rng=np.random.default_rng(seed))
            for seed in range(40)
        ]
        shares = {key: sum(r.strategy.key == key for r in chosen) / len(chosen) for key in cohorts}
        assert shares[best] > 0.7, (cohort, shares)
        assert all(r.decision.source == Decision.Source.BANDIT for r in chosen)


@CONTEXTUAL
def test_contextual__logged_propensity__the_probability_the_strategy_was_drawn_with(cohorts):
    learner = _cohort_learner("a")
    decision_make(user=learner, context="MISSION", rng=np.random.default_rng(1))  # configs
    model = contextual_model("MISSION")
    strategies = [cohorts[s.key] for s in context_catalog("MISSION").strategies]
    assert model.keys == tuple(s.pk for s in strategies)
    configs = {
        c.strategy_id: c for c in StrategyConfig.objects.filter(user=learner, context="MISSION")
    }
    facts = {
        "personalization_level": "MEDIUM",
        "learning_style": "MIXED",
        "reading_length": "MEDIUM",
        "tone_preference": "CASUAL",
        "attributes": {"cohort": "a"},
        "skill_ratings": {},
        "weaknesses": [],
    }
    for seed in range(5):
        result = decision_make(user=learner, context="MISSION", rng=np.random.default_rng(seed))
        index, propensity, probabilities = contextual.contextual_policy(
            model,
            contextual.learner_features(facts),
            np.array([configs[s.pk].times_rewarded for s in strategies], dtype=float),
            np.array([configs[s.pk].avg_reward for s in strategies], dtype=float),
            epsilon=bandits.EPSILON_BY_LEVEL["MEDIUM"],
            rng=np.random.default_rng(seed),
        )
        assert result.strategy.id == strategies[index].pk
        assert result.decision.propensity == pytest.approx(propensity)
        assert probabilities.min() >= bandits.EPSILON_BY_LEVEL["MEDIUM"] / 4 - 1e-12


def _decide_queries(learner) -> int:
    """Queries of a warm decision that keeps the strategy the first one activated (the same
    draws), so no config switch is counted."""
    decision_make(user=learner, context="MISSION", rng=np.random.default_rng(0))
    with CaptureQueriesContext(connection) as queries:
        decision_make(user=learner, context="MISSION", rng=np.random.default_rng(0))
    return len(queries.captured_queries)


def test_contextual__keeps_the_query_budget_of_epsilon_greedy(cohorts):
    greedy = _decide_queries(_cohort_learner("a"))
    with CONTEXTUAL:
        contextual_queries = _decide_queries(_cohort_learner("b"))
    assert contextual_queries == greedy, connection.queries[-contextual_queries:]


def test_contextual__not_the_default(settings):
    assert settings.ADAPTIVE_POLICY == "EPSILON_GREEDY"
