"""Identity merge (DESIGN.md §10, users/{id}/merge/): an anonymous learner's rows move into
the signed-in one, the survivor's rows win on a shared key, the merged identity is erased to a
tombstone whose reference finds the survivor, and the reward figures stay those of a rebuild."""

import numpy as np
import pytest

from experiments.models import Assignment, Decision, StrategyConfig
from experiments.services.decisions import decision_make
from logs.models import AuditEvent, PersonalizationLog, TranslationLog
from outcomes.merge import merged_event_id
from outcomes.models import Outcome
from outcomes.services.ingest import outcome_record_many
from outcomes.services.rewards import bandit_rewards_recompute
from personalization.models import Interaction, Preferences, SkillAssessment, User
from recommendations.models import (
    LearningPath,
    LearningPathItem,
    LearningPathStage,
    Recommendation,
)
from tests.conftest import assert_error_shape
from tests.experiments.factories import make_experiment
from tests.logs.factories import PersonalizationLogFactory, TranslationLogFactory
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


def test_merge__long_conflicting_event_ids_sharing_a_prefix__rekeyed_apart(
    service_client, strategy_catalog
):
    """Re-keying once truncated the event id before appending `~merged-<id>`: two long ids
    with a common prefix became one, and the merge answered 500 (IntegrityError)."""
    anonymous, signed_in = UserFactory(external_id="anon-6"), UserFactory(external_id="crm-6")
    prefix = "lesson-2026-11-01T10:00:00Z/chapter-robotics-kinematics/"  # 56 characters
    shared = [f"{prefix}quiz-{n:03d}" for n in range(3)]  # 64 characters, the column's limit
    for user, score in ((signed_in, 0.8), (anonymous, 0.3)):
        outcome_record_many(
            user=user,
            items=[
                {
                    "event_id": event_id,
                    "context": "MISSION",
                    "outcome_type": "MISSION_COMPLETED",
                    "retention_score": score,
                }
                for event_id in shared
            ],
        )

    response = _merge(service_client, signed_in, "anon-6")

    assert response.status_code == 200, response.content
    stored = dict(Outcome.objects.filter(user=signed_in).values_list("event_id", "retention_score"))
    assert len(stored) == 6
    assert all(len(event_id) <= 64 for event_id in stored)
    assert {event_id: stored[event_id] for event_id in shared} == dict.fromkeys(shared, 0.8)
    rekeyed = {merged_event_id(event_id, anonymous.pk) for event_id in shared}
    assert len(rekeyed) == 3
    assert {event_id: stored[event_id] for event_id in rekeyed} == dict.fromkeys(rekeyed, 0.3)
    # The rule is deterministic: a repeat merge answers the same and moves nothing again.
    again = _merge(service_client, signed_in, "anon-6")
    assert again.status_code == 200
    assert again.json() == response.json()
    assert set(Outcome.objects.filter(user=signed_in).values_list("event_id", flat=True)) == set(
        stored
    )


def test_merge__recommendations_paths_logs_and_skill_history__move_to_the_survivor(
    service_client, strategy_catalog, content_catalog
):
    anonymous, signed_in = UserFactory(external_id="anon-7"), UserFactory(external_id="crm-7")
    first, second = content_catalog[0], content_catalog[1]

    def recommend(user, item, status):
        return Recommendation.objects.create(
            user=user, item=item, priority_score=0.5, reason="test", status=status
        )

    def path(user, goal, status):
        created = LearningPath.objects.create(user=user, title=goal, goal=goal, status=status)
        stage = LearningPathStage.objects.create(path=created, title="Stage", order=1)
        LearningPathItem.objects.create(stage=stage, item=first, order=1)
        return created

    survivors_pending = recommend(signed_in, first, "PENDING")
    recommend(anonymous, first, "PENDING")  # the survivor's pending one of the item wins
    moving_recommendations = {
        recommend(anonymous, second, "PENDING").pk,
        recommend(anonymous, first, "ACCEPTED").pk,
    }
    survivors_path = path(signed_in, "robotics", "ACTIVE")
    path(anonymous, "robotics", "ACTIVE")  # the survivor's active path to the goal wins
    moving_paths = {path(anonymous, "gpus", "ACTIVE").pk, path(anonymous, "robotics", "PAUSED").pk}
    moving_logs = {PersonalizationLogFactory(user=anonymous).pk}
    moving_translations = {TranslationLogFactory(user=anonymous).pk}
    moving_skills = {
        SkillAssessment.objects.create(user=anonymous, skill="python", score=score).pk
        for score in (0.4, 0.6)
    }
    SkillAssessment.objects.create(user=signed_in, skill="python", score=0.9)

    assert _merge(service_client, signed_in, "anon-7").status_code == 200

    assert set(Recommendation.objects.filter(user=signed_in).values_list("pk", flat=True)) == {
        survivors_pending.pk,
        *moving_recommendations,
    }
    assert set(LearningPath.objects.filter(user=signed_in).values_list("pk", flat=True)) == {
        survivors_path.pk,
        *moving_paths,
    }
    # A path moves with its stages and their items.
    assert LearningPathItem.objects.filter(stage__path__pk__in=moving_paths).count() == 2
    for model, moving in ((PersonalizationLog, moving_logs), (TranslationLog, moving_translations)):
        assert set(model.objects.filter(user=signed_in).values_list("pk", flat=True)) == moving
    skills = SkillAssessment.objects.filter(user=signed_in)
    assert moving_skills < set(skills.values_list("pk", flat=True))
    assert skills.count() == 3
    # Nothing is left with the merged identity: the rows the survivor's won over are erased.
    for left in (Recommendation, LearningPath, PersonalizationLog, TranslationLog):
        assert not left.objects.filter(user=anonymous).exists(), left
    assert not SkillAssessment.objects.filter(user=anonymous).exists()
    assert LearningPathStage.objects.filter(path__user=signed_in).count() == 3
