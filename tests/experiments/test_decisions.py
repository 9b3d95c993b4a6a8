"""The decide call, DESIGN.md §4."""

import threading

import numpy as np
import pytest
from django.db import connection, connections, transaction

from experiments import catalog as catalog_module
from experiments.catalog import (
    catalog_invalidate,
    context_catalog,
    population_invalidate,
    population_model,
)
from experiments.models import Assignment, Decision, Experiment, Strategy, StrategyConfig, Variant
from experiments.services.configs import config_update
from experiments.services.decisions import decision_make
from personalization.models import Preferences
from tests.experiments.factories import make_experiment
from tests.personalization.factories import UserFactory

Source = Decision.Source


def decide(user, context="MISSION", seed=1):
    return decision_make(user=user, context=context, rng=np.random.default_rng(seed))


# --- Step 1: consent ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preferences",
    [
        {"personalization_level": "NONE"},
        {"mission_personalization_enabled": False},
        {"disabled_features": ["mission"]},
        {"disabled_features": ["Mission"]},
    ],
)
def test_consent__denied__baseline_disabled(strategy_catalog, user, preferences):
    Preferences.objects.create(user=user, **preferences)
    make_experiment(context="MISSION")
    result = decide(user)
    decision = result.decision
    assert decision.source == Source.DISABLED
    assert result.strategy.key == "conservative"
    assert decision.propensity == 1.0
    assert decision.personalization_applied is False
    assert decision.config is None
    assert not Assignment.objects.exists()
    assert not StrategyConfig.objects.filter(user=user).exists()


def test_consent__other_context_switched_off__not_affected(strategy_catalog, user):
    Preferences.objects.create(user=user, session_personalization_enabled=False)
    assert decide(user, "MISSION").decision.source != Source.DISABLED
    assert decide(user, "SESSION").decision.source == Source.DISABLED


# --- Step 2: experiments --------------------------------------------------------------------


def test_experiment__assignment_stored_and_sticky(strategy_catalog, user):
    experiment = make_experiment(context="MISSION")
    first = decide(user).decision
    assert first.source == Source.EXPERIMENT
    assert first.experiment_id == experiment.pk
    assert first.propensity == pytest.approx(0.5)
    assignment = Assignment.objects.get(user=user)
    assert first.variant_id == assignment.variant_id

    # Neither new weights nor new traffic move an assigned user.
    Variant.objects.filter(pk=assignment.variant_id).update(weight=0.0001)
    Experiment.objects.filter(pk=experiment.pk).update(traffic_percent=0.0)
    catalog_invalidate()
    for seed in range(5):
        again = decide(user, seed=seed).decision
        assert again.variant_id == assignment.variant_id
        assert again.propensity == pytest.approx(0.5)
    assert Assignment.objects.count() == 1


def test_experiment__variant_follows_the_hash(strategy_catalog):
    from experiments.assignment import index_by_bucket, variant_bucket

    experiment = make_experiment(
        context="MISSION",
        variants=[("control", "conservative", 1.0), ("treatment", "balanced", 3.0)],
    )
    variants = list(experiment.variants.order_by("pk"))
    for user in UserFactory.create_batch(12):
        expected = variants[index_by_bucket([1.0, 3.0], variant_bucket(experiment.salt, user.pk))]
        decision = decide(user).decision
        assert decision.variant_id == expected.pk
        assert decision.propensity == pytest.approx(0.25 if expected.key == "control" else 0.75)


def test_experiment__ineligible_user_falls_through(strategy_catalog, user):
    make_experiment(context="MISSION", traffic_percent=0.0)
    decision = decide(user).decision
    assert decision.source == Source.BANDIT
    assert not Assignment.objects.exists()


def test_experiment__bandit_draws_with_current_weights(strategy_catalog):
    make_experiment(
        context="MISSION",
        experiment_type=Experiment.Type.MULTI_ARMED_BANDIT,
        variants=[
            ("control", "conservative", 1.0),
            ("b", "balanced", 1.0),
            ("p", "pattern_heavy", 1.0),
        ],
    )
    decision = decide(UserFactory()).decision
    assert decision.source == Source.EXPERIMENT
    assert decision.propensity == pytest.approx(1 / 3)


def test_experiment__params_overlay_default_variant_config(strategy_catalog, user):
    experiment = make_experiment(context="MISSION")
    Variant.objects.filter(experiment=experiment).update(params={"duration": 25, "objectives": 3})
    catalog_invalidate()
    decide(user)
    variant = Assignment.objects.get(user=user).variant
    config = StrategyConfig.objects.get(user=user, strategy=variant.strategy)
    config_update(actor=user, config=config, data={"params": {"objectives": 6}})
    decision = decide(user).decision
    defaults = variant.strategy.default_params
    assert decision.params == {**defaults, "duration": 25, "objectives": 6}


# --- Step 3: adaptive -----------------------------------------------------------------------


def test_adaptive__bandit_source_and_exact_propensity(strategy_catalog, user):
    decision = decide(user, seed=3).decision
    assert decision.source == Source.BANDIT
    # MEDIUM, default confidence 0.7 reaches the threshold: ε/K + (1 − ε) for the exploit arm
    assert decision.propensity in (pytest.approx(0.1 / 4), pytest.approx(0.9 + 0.1 / 4))


def _rewarded(config_filter, *, n: int, mean: float, variance: float) -> None:
    """Reward statistics as the recompute stores them: count, Σ, Σ² and mean."""
    StrategyConfig.objects.filter(**config_filter).update(
        times_selected=n,
        times_rewarded=n,
        total_reward=n * mean,
        total_reward_sq=n * mean**2 + (n - 1) * variance,
        avg_reward=mean,
    )


def test_adaptive__learns_the_users_best_arm(strategy_catalog, user):
    """§5.5: 50 rewards of 0.9 on pattern_heavy against 20 of 0.4 on the baseline make the
    posterior confidence pass MEDIUM's gate, whatever the stored confidence_score says."""
    decide(user)
    _rewarded({"user": user, "strategy__key": "pattern_heavy"}, n=50, mean=0.9, variance=0.01)
    _rewarded({"user": user, "strategy__key": "conservative"}, n=20, mean=0.4, variance=0.01)
    StrategyConfig.objects.filter(user=user).update(confidence_score=0.0)
    population_invalidate()
    chosen = [decide(user, seed=seed).strategy.key for seed in range(200)]
    assert chosen.count("pattern_heavy") > 150


def test_adaptive__no_evidence_against_the_baseline__baseline_exploited(strategy_catalog, user):
    """A stored confidence of 1.0 is not evidence: with no rewards anywhere the posterior
    confidence is undefined and exploitation keeps the baseline (LOW, MEDIUM and HIGH)."""
    decide(user)
    StrategyConfig.objects.filter(user=user).update(confidence_score=1.0)
    chosen = [decide(user, seed=seed).strategy.key for seed in range(200)]
    assert chosen.count("conservative") > 150


@pytest.mark.parametrize("switch", ["auto_adapt_enabled", "behavioral_analysis_enabled"])
def test_adaptive__switched_off__fixed_baseline(strategy_catalog, user, switch):
    if switch == "auto_adapt_enabled":
        Preferences.objects.create(user=user, auto_adapt_enabled=False)
    else:
        user.behavioral_analysis_enabled = False
        user.save()
    result = decide(user)
    assert result.decision.source == Source.BASELINE
    assert result.strategy.key == "conservative"
    assert result.decision.personalization_applied is False
    assert result.decision.propensity == 1.0


# --- Step 4: fixed, configs -----------------------------------------------------------------


def test_fixed__users_active_config_wins(strategy_catalog, user):
    Preferences.objects.create(user=user, auto_adapt_enabled=False)
    decide(user)
    assert StrategyConfig.objects.filter(user=user, context="MISSION").count() == 4
    balanced = StrategyConfig.objects.get(user=user, context="MISSION", strategy__key="balanced")
    config_update(actor=user, config=balanced, data={"is_active": True})
    result = decide(user)
    assert result.strategy.key == "balanced"
    assert result.decision.personalization_applied is True
    assert result.decision.config_id == balanced.pk


def test_configs__active_switched_to_the_chosen_strategy(strategy_catalog, user):
    make_experiment(context="MISSION")
    decision = decide(user).decision
    active = StrategyConfig.objects.get(user=user, context="MISSION", is_active=True)
    assert active.strategy_id == decision.strategy_id
    assert StrategyConfig.objects.filter(user=user, is_active=True).count() == 1


def test_decision__stored_with_latency(strategy_catalog, user):
    decision = decide(user).decision
    stored = Decision.objects.get(pk=decision.pk)
    assert stored.latency_ms >= 0
    assert stored.context == "MISSION"


def test_no_active_strategy__conflict(strategy_catalog, user):
    from config.errors import ConflictError

    Strategy.objects.filter(context="SESSION").update(is_active=False)
    catalog_invalidate()
    with pytest.raises(ConflictError, match="No active baseline strategy in SESSION"):
        decide(user, "SESSION")


# --- Budget ---------------------------------------------------------------------------------


def test_warm_path__assigned_user__at_most_3_queries(
    strategy_catalog, user, user_client, django_assert_max_num_queries
):
    # The token's user, the learner's preferences + assignment + configs, the INSERT.
    make_experiment(context="MISSION")
    Preferences.objects.create(user=user)
    user_client.post("/api/v1/decisions/", {"context": "MISSION"}, format="json")
    with django_assert_max_num_queries(3):
        response = user_client.post("/api/v1/decisions/", {"context": "MISSION"}, format="json")
    assert response.status_code == 201
    assert response.json()["source"] == "EXPERIMENT"


def test_warm_path__bandit_user__at_most_3_queries(
    strategy_catalog, user, user_client, django_assert_max_num_queries, monkeypatch
):
    Preferences.objects.create(user=user)
    user_client.post("/api/v1/decisions/", {"context": "SESSION"}, format="json")
    # The measured call exploits (the generator's first draw, 0.64, is above ε = 0.1), which
    # picks the baseline on a fresh profile; make that the active config, so nothing switches.
    monkeypatch.setattr(
        "experiments.services.decisions.new_generator", lambda: np.random.default_rng(0)
    )
    StrategyConfig.objects.filter(user=user, context="SESSION").update(is_active=False)
    StrategyConfig.objects.filter(
        user=user, strategy__key="conservative", context="SESSION"
    ).update(is_active=True)
    context_catalog("SESSION")
    population_model("SESSION")
    with django_assert_max_num_queries(3):
        response = user_client.post("/api/v1/decisions/", {"context": "SESSION"}, format="json")
    assert response.status_code == 201
    assert response.json()["source"] == "BANDIT"
    assert response.json()["strategy"]["key"] == "conservative"


def test_warm_path__on_behalf_of__at_most_4_queries(
    strategy_catalog, user, service_client, django_assert_max_num_queries
):
    # The warm path plus the named learner's row.
    make_experiment(context="MISSION")
    headers = {"HTTP_X_ON_BEHALF_OF": f"id:{user.pk}"}
    service_client.post("/api/v1/decisions/", {"context": "MISSION"}, format="json", **headers)
    with django_assert_max_num_queries(4):
        response = service_client.post(
            "/api/v1/decisions/", {"context": "MISSION"}, format="json", **headers
        )
    assert response.status_code == 201, response.content
    assert response.json()["source"] == "EXPERIMENT"
    assert Decision.objects.filter(user=user).count() == 2


def test_decision__stored_row_matches_the_answer(strategy_catalog, user, user_client):
    experiment = make_experiment(context="MISSION")
    body = user_client.post("/api/v1/decisions/", {"context": "MISSION"}, format="json").json()
    stored = Decision.objects.get(pk=body["id"])
    assignment = Assignment.objects.get(user=user)
    config = StrategyConfig.objects.get(user=user, context="MISSION", is_active=True)
    assert stored.user_id == user.pk
    assert stored.context == "MISSION"
    assert stored.strategy_id == assignment.variant.strategy_id == config.strategy_id
    assert stored.config_id == config.pk
    assert (stored.experiment_id, stored.variant_id) == (experiment.pk, assignment.variant_id)
    assert stored.source == body["source"] == Source.EXPERIMENT
    assert stored.propensity == body["propensity"] == assignment.propensity
    assert stored.params == body["params"]
    assert stored.personalization_applied is body["personalization_applied"]
    assert stored.created_at is not None
    assert stored.created_at == stored.updated_at


def test_decision__stored_preferences_read_with_the_configs(strategy_catalog, user):
    Preferences.objects.create(user=user, personalization_level="HIGH", auto_adapt_enabled=False)
    decide(user, "MISSION")
    # auto_adapt off: the fixed step, the baseline on a fresh profile.
    decision = decide(user, "MISSION").decision
    assert decision.source == Source.BASELINE
    assert decision.strategy.key == "conservative"


# --- Caches ---------------------------------------------------------------------------------


def test_catalog__warm__one_version_query__none_with_the_version(
    strategy_catalog, django_assert_num_queries
):
    context_catalog("MISSION")
    with django_assert_num_queries(1):
        context_catalog("MISSION")
    version = catalog_module.stored_version(catalog_module.CATALOG)
    with django_assert_num_queries(0):
        context_catalog("MISSION", version=version)


def test_catalog__shared_copy__serves_a_process_that_has_none(
    strategy_catalog, django_assert_num_queries
):
    version = catalog_module.stored_version(catalog_module.CATALOG)
    context_catalog("MISSION", version=version)
    catalog_module._catalogs.local.clear()  # as in another worker process
    with django_assert_num_queries(0):
        assert context_catalog("MISSION", version=version).baseline.key == "conservative"


def test_catalog__version_replaced_by_another_process__reloaded(strategy_catalog):
    before = context_catalog("MISSION")
    Strategy.objects.filter(context="MISSION", key="balanced").update(name="Renamed")
    assert context_catalog("MISSION") is before
    # What catalog_invalidate in another process stores once its change is committed.
    catalog_module.version_replace(catalog_module.CATALOG)
    names = {s.key: s.name for s in context_catalog("MISSION").strategies}
    assert names["balanced"] == "Renamed"


def test_catalog__invalidated__new_version_in_the_transaction__reloaded(strategy_catalog):
    version = catalog_module.stored_version(catalog_module.CATALOG)
    context_catalog("MISSION", version=version)
    with transaction.atomic():
        Strategy.objects.filter(context="MISSION", key="balanced").update(name="Renamed")
        catalog_invalidate()
        replaced = catalog_module.stored_version(catalog_module.CATALOG)
        assert replaced != version
        names = {s.key: s.name for s in context_catalog("MISSION").strategies}
        assert names["balanced"] == "Renamed"


def test_catalog__decide_reads_the_versions_with_the_learner(
    strategy_catalog, user, django_assert_num_queries
):
    """A warm decision validates its cached catalog by the version its learner read
    returned: two statements, the read and the INSERT."""
    decide(user, "MISSION")
    with django_assert_num_queries(2):
        decide(user, "MISSION")
    catalog_module.version_replace(catalog_module.CATALOG)  # another process's change
    Strategy.objects.filter(context="MISSION", key="conservative").update(name="Renamed")
    decision = decide(user, "MISSION")
    assert decision.strategy.name == "Renamed"


@pytest.mark.django_db(transaction=True)
def test_catalog__committed_change__another_process_reloads_from_the_new_version(
    strategy_catalog,
):
    """Committed for real: the new version commits with the change, so a process holding the
    old copy (and the shared copy filed under the old version) reloads on its next read."""
    old = catalog_module.stored_version(catalog_module.CATALOG)
    before = context_catalog("MISSION", version=old)
    seen_elsewhere: list[int] = []

    def another_connection() -> None:
        try:
            seen_elsewhere.append(catalog_module.stored_version(catalog_module.CATALOG))
        finally:
            connections.close_all()

    with transaction.atomic():
        Strategy.objects.filter(context="MISSION", key="balanced").update(name="Renamed")
        catalog_invalidate()
        if connection.vendor == "postgresql":  # SQLite's test database is one connection's
            reader = threading.Thread(target=another_connection)
            reader.start()
            reader.join(timeout=10)
            assert seen_elsewhere == [old]  # before the commit, everyone else has the old one
    new = catalog_module.stored_version(catalog_module.CATALOG)
    assert new != old
    # Another process: its own copy is still the one read before the change.
    catalog_module._catalogs.local["MISSION"] = (old, float("inf"), before)
    names = {s.key: s.name for s in context_catalog("MISSION", version=new).strategies}
    assert names["balanced"] == "Renamed"


@pytest.mark.django_db(transaction=True)
def test_catalog__read_inside_a_rolled_back_change__nothing_kept_or_shared(strategy_catalog):
    """What a transaction reads after changing the catalog is its own uncommitted state:
    neither this process nor another keeps it, so a rollback leaves no trace."""
    version = catalog_module.stored_version(catalog_module.CATALOG)

    seen: list[str] = []

    class Undone(Exception):
        pass

    @transaction.atomic
    def change_then_fail() -> None:
        Strategy.objects.filter(context="MISSION", key="balanced").update(name="Phantom")
        catalog_invalidate()
        seen.extend(s.name for s in context_catalog("MISSION").strategies)
        raise Undone

    with pytest.raises(Undone):
        change_then_fail()
    assert "Phantom" in seen
    assert catalog_module.stored_version(catalog_module.CATALOG) == version
    names = {s.key: s.name for s in context_catalog("MISSION").strategies}
    assert names["balanced"] != "Phantom"
    catalog_module._catalogs.local.clear()  # another process, reading the shared copy
    names = {s.key: s.name for s in context_catalog("MISSION", version=version).strategies}
    assert names["balanced"] != "Phantom"


@pytest.mark.django_db(transaction=True)
def test_catalog__no_stored_version__a_random_one_is_stored(strategy_catalog):
    from experiments.models import CacheVersion

    CacheVersion.objects.all().delete()  # a database flushed since its migration
    context_catalog("MISSION", version=0)
    stored = catalog_module.stored_version(catalog_module.CATALOG)
    assert stored != 0
    assert CacheVersion.objects.get(name=catalog_module.CATALOG).version == stored


class _UnreachableCache:
    """The fail-open cache while Redis is down: every read misses, every write is dropped."""

    def get(self, key, default=None):
        return default

    def add(self, *args, **kwargs):
        return False

    def set(self, *args, **kwargs):
        return None

    def delete_many(self, *args, **kwargs):
        return None


def test_catalog__cache_unavailable__each_process_keeps_and_validates_its_copy(
    strategy_catalog, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr(catalog_module, "cache", _UnreachableCache())
    version = catalog_module.stored_version(catalog_module.CATALOG)
    context_catalog("MISSION", version=version)
    with django_assert_num_queries(0):
        context_catalog("MISSION", version=version)
    Strategy.objects.filter(context="MISSION", key="balanced").update(name="Renamed")
    catalog_invalidate()
    names = {s.key: s.name for s in context_catalog("MISSION").strategies}
    assert names["balanced"] == "Renamed"


def test_population__invalidated__recomputed(strategy_catalog, user):
    decide(user, "MISSION")
    before = population_model("MISSION")
    assert population_model("MISSION") is before
    StrategyConfig.objects.filter(user=user, context="MISSION").update(
        times_rewarded=2, total_reward=1.6, total_reward_sq=1.3, avg_reward=0.8
    )
    population_invalidate()
    after = population_model("MISSION")
    assert after is not before
    assert set(after.means.values()) == {0.8}


# --- Concurrency (PostgreSQL) ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_decisions__one_assignment(strategy_catalog):
    if connection.vendor != "postgresql":
        pytest.skip("row locking and concurrent inserts are exercised on PostgreSQL")
    make_experiment(
        context="MISSION",
        experiment_type=Experiment.Type.MULTI_ARMED_BANDIT,
        variants=[("control", "conservative", 1.0), ("b", "balanced", 1.0)],
    )
    users = UserFactory.create_batch(6)
    barrier = threading.Barrier(2)
    results: dict[int, list[int]] = {u.pk: [] for u in users}
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            for user in users:
                barrier.wait(timeout=10)
                decision = decision_make(
                    user=user, context="MISSION", rng=np.random.default_rng(seed + user.pk)
                ).decision
                results[user.pk].append(decision.variant_id)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in (1, 1000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    for user in users:
        assert Assignment.objects.filter(user=user).count() == 1
        stored = Assignment.objects.get(user=user).variant_id
        assert results[user.pk] == [stored, stored]
        assert StrategyConfig.objects.filter(user=user, context="MISSION").count() == 4
        assert StrategyConfig.objects.filter(user=user, is_active=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_config_switches__no_deadlock_one_active(strategy_catalog):
    if connection.vendor != "postgresql":
        pytest.skip("row locking is exercised on PostgreSQL")
    user = UserFactory()
    decision_make(user=user, context="MISSION")
    configs = list(StrategyConfig.objects.filter(user=user, context="MISSION").order_by("pk"))
    errors: list[BaseException] = []
    for round_ in range(10):
        barrier = threading.Barrier(2)
        pair = (configs[round_ % 4], configs[(round_ + 1) % 4])

        def switch(config, barrier=barrier):
            try:
                barrier.wait(timeout=10)
                config_update(actor=None, config=config, data={"is_active": True})
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=switch, args=(config,)) for config in pair]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert (
            StrategyConfig.objects.filter(user=user, context="MISSION", is_active=True).count() == 1
        )
    assert not errors, errors
