"""Identity merge (DESIGN.md §10, users/{id}/merge/): an anonymous learner's rows move into
the signed-in one, the survivor's rows win on a shared key, the merged identity is erased to a
tombstone whose reference finds the survivor, and the reward figures stay those of a rebuild."""

import numpy as np
import pytest

from experiments.models import Assignment, Decision, StrategyConfig
from experiments.services.decisions import decision_make
from logs.models import AuditEvent
from outcomes.models import Outcome
from outcomes.services.ingest import outcome_record_many
from outcomes.services.rewards import bandit_rewards_recompute
from personalization.models import Interaction, Preferences, User
from tests.conftest import assert_error_shape
from tests.experiments.factories import make_experiment
from tests.personalization.factories import UserFactory

FIGURES = ("times_selected", "times_rewarded", "total_reward", "total_reward_sq", "avg_reward")


def _history(user, rng, prefix, count=3):
    for index in range(count):
        decision = decision_make(user=user, context="MISSION", rng=rng).decision
        outcome_record_many(
            user=user,
            items=[
                {
                    "event_id": f"{prefix}{index}",
                    "decision": decision.pk,
                    "outcome_type": "MISSION_COMPLETED",
                    "retention_score": float(rng.uniform(0.2, 0.9)),
                }
            ],
        )


def _merge(client, target, reference):
    return client.post(f"/api/v1/users/{target.pk}/merge/", {"from": reference}, format="json")


def test_merge__rows_move__survivor_wins__tombstone_finds_survivor(
    service_client, strategy_catalog
):
    experiment = make_experiment()
    anonymous = UserFactory(external_id="anon-1")
    signed_in = UserFactory(external_id="crm-1")
    rng = np.random.default_rng(1)
    _history(anonymous, rng, "a")
    _history(signed_in, rng, "s")
    # The same client event id under both identities.
    outcome_record_many(
        user=anonymous,
        items=[
            {
                "event_id": "s0",
                "context": "MISSION",
                "outcome_type": "MISSION_COMPLETED",
                "retention_score": 0.1,
            }
        ],
    )
    Interaction.objects.create(
        user=anonymous, type="READING", service="reader", occurred_at="2026-11-01T00:00:00Z"
    )
    Preferences.objects.create(user=anonymous, personalization_level="HIGH")
    Preferences.objects.create(user=signed_in, personalization_level="LOW")
    bandit_rewards_recompute()
    decisions = Decision.objects.filter(user__in=[anonymous, signed_in]).count()

    response = _merge(service_client, signed_in, "anon-1")

    assert response.status_code == 200, response.content
    assert Decision.objects.filter(user=signed_in).count() == decisions
    # The same event id under both identities: the merged one's is re-keyed, nothing lost.
    assert set(Outcome.objects.filter(user=signed_in).values_list("event_id", flat=True)) == {
        "a0",
        "a1",
        "a2",
        "s0",
        "s1",
        "s2",
        f"s0~merged-{anonymous.pk}",
    }
    assert (
        Outcome.objects.get(user=signed_in, event_id=f"s0~merged-{anonymous.pk}").retention_score
        == 0.1
    )
    assert Interaction.objects.filter(user=signed_in).count() == 1
    assert Preferences.objects.get(user=signed_in).personalization_level == "LOW"
    # Both were assigned to the experiment: the survivor's assignment wins.
    assert Assignment.objects.filter(experiment=experiment, user=signed_in).count() == 1
    assert not Assignment.objects.filter(user=anonymous).exists()
    # Every decision and outcome points at one of the survivor's configs.
    mine = set(StrategyConfig.objects.filter(user=signed_in).values_list("id", flat=True))
    assert set(Decision.objects.filter(user=signed_in).values_list("config_id", flat=True)) <= mine
    attributed = Outcome.objects.filter(user=signed_in, config__isnull=False)
    assert set(attributed.values_list("config_id", flat=True)) <= mine
    assert attributed.count() == 6  # the re-keyed one named no strategy
    assert StrategyConfig.objects.filter(user=signed_in, is_active=True).count() == 1
    # The merged identity is a tombstone; its old reference finds the survivor.
    tombstone = User.objects.get(pk=anonymous.pk)
    assert (tombstone.merged_into, tombstone.is_active, tombstone.email) == (
        signed_in.pk,
        False,
        "",
    )
    assert not Outcome.objects.filter(user=anonymous).exists()
    found = service_client.get("/api/v1/me/", HTTP_X_ON_BEHALF_OF="anon-1")
    assert found.status_code == 200
    assert found.json()["id"] == signed_in.pk
    event = AuditEvent.objects.get(action="USER_MERGED")
    assert event.changes["merged"]["new"] == anonymous.pk
    # Idempotent: the same merge again answers the same, and changes nothing.
    again = _merge(service_client, signed_in, "anon-1")
    assert again.status_code == 200
    assert again.json() == response.json()
    assert AuditEvent.objects.filter(action="USER_MERGED").count() == 1


def test_merge__reward_figures_equal_a_rebuild(service_client, strategy_catalog):
    anonymous, signed_in = UserFactory(external_id="anon-2"), UserFactory(external_id="crm-2")
    rng = np.random.default_rng(2)
    _history(anonymous, rng, "a", count=6)
    _history(signed_in, rng, "s", count=6)
    bandit_rewards_recompute()
    _history(anonymous, rng, "late", count=2)  # not yet counted by the reward run
    assert _merge(service_client, signed_in, "anon-2").status_code == 200
    bandit_rewards_recompute()
    incremental = {c[0]: c[1:] for c in StrategyConfig.objects.values_list("id", *FIGURES)}
    bandit_rewards_recompute(rebuild=True)
    for row in StrategyConfig.objects.values_list("id", *FIGURES):
        assert incremental[row[0]] == pytest.approx(row[1:], rel=1e-9, abs=1e-12), row[0]
    rewarded = sum(
        StrategyConfig.objects.filter(user=signed_in).values_list("times_rewarded", flat=True)
    )
    assert rewarded == 14


def test_merge__refusals(service_client, staff_user, service_account, user, strategy_catalog):
    other = UserFactory(external_id="crm-3")
    assert_error_shape(_merge(service_client, user, f"id:{user.pk}"), 409, code="same_user")
    assert_error_shape(_merge(service_client, user, "nobody"), 404, attr="from")
    assert_error_shape(_merge(service_client, user, f"id:{staff_user.pk}"), 404, attr="from")
    assert _merge(service_client, user, "crm-3").status_code == 200
    # `other` is now a tombstone: merging into it is refused.
    assert_error_shape(_merge(service_client, other, f"id:{user.pk}"), 409, code="not_mergeable")


def test_merge__learners_cannot_merge(user_client, user, strategy_catalog):
    other = UserFactory(external_id="crm-4")
    assert _merge(user_client, user, "crm-4").status_code == 403
    assert User.objects.get(pk=other.pk).is_active
