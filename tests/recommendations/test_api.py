import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from experiments.models import Decision, StrategyConfig
from outcomes.models import Outcome
from outcomes.services.rewards import bandit_rewards_recompute
from personalization.models import Preferences
from personalization.services.skills import skill_assessment_record
from recommendations.models import ContentItem, LearningPath, Recommendation
from recommendations.services.feedback import (
    COMPLETION_EVENT_PREFIX,
    recommendation_complete,
    recommendations_expire_stale,
)
from tests.conftest import assert_error_shape

GENERATE = "/api/v1/recommendations/generate/"


@pytest.fixture
def learner(user, strategy_catalog, content_catalog):
    skill_assessment_record(user=user, skill="debugging", score=0.2)
    skill_assessment_record(user=user, skill="python_basics", score=0.9)
    return user


def _generate(client, limit=5):
    response = client.post(GENERATE, {"context": "CONTENT", "limit": limit}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


# --- Generation -----------------------------------------------------------------------------


def test_generate__content_decision_reasons_and_weakness_first(user_client, learner):
    body = _generate(user_client)
    decision = Decision.objects.get(pk=body["decision"]["id"])
    assert decision.context == "CONTENT"
    results = body["results"]
    assert len(results) == 5
    assert all(r["status"] == "PENDING" and r["decision"] == decision.pk for r in results)
    assert all(r["reason"].startswith("Recommended because it") for r in results)
    scores = [r["priority_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert results[0]["item"]["skill"] in {"debugging", "algorithms"}  # weak or unrated first


def test_generate__novelty_no_repeat_of_pending_or_recent(user_client, learner):
    first = {r["item"]["id"] for r in _generate(user_client)["results"]}
    second = {r["item"]["id"] for r in _generate(user_client)["results"]}
    assert not first & second
    declined = Recommendation.objects.filter(item_id__in=first).first()
    user_client.post(f"/api/v1/recommendations/{declined.pk}/decline/", {}, format="json")
    Recommendation.objects.filter(user=learner, status="PENDING").update(status="EXPIRED")
    third = {r["item"]["id"] for r in _generate(user_client, limit=20)["results"]}
    assert declined.item_id not in third


def test_generate__consent_off__popularity_and_not_personalized(user_client, learner, other_user):
    popular = ContentItem.objects.get(key="testing-quiz-3")
    Recommendation.objects.create(
        user=other_user, item=popular, priority_score=1, reason="x", status="COMPLETED"
    )
    Preferences.objects.create(user=learner, content_personalization_enabled=False)
    body = _generate(user_client, limit=3)
    assert body["decision"]["personalization_applied"] is False
    assert body["decision"]["source"] == "DISABLED"
    assert body["results"][0]["item"]["key"] == "testing-quiz-3"
    assert "Popular with other learners" in body["results"][0]["reason"]


def test_generate__bounded_queries_whatever_the_catalog(
    user_client, learner, django_assert_max_num_queries
):
    # The decide step at a fixed strategy: an exploring bandit would switch the learner's
    # active config now and then, which is a decide-path cost (tested there), not a catalog one.
    Preferences.objects.update_or_create(user=learner, defaults={"auto_adapt_enabled": False})
    _generate(user_client, limit=1)  # warm the decide path
    with django_assert_max_num_queries(16) as small:
        _generate(user_client, limit=20)
    ContentItem.objects.bulk_create(
        ContentItem(
            key=f"extra-{i}",
            title=f"Extra {i}",
            skill="debugging",
            content_type="VIDEO",
            difficulty=1 + i % 5,
            duration_minutes=20,
        )
        for i in range(400)
    )
    with django_assert_max_num_queries(len(small.captured_queries)):
        _generate(user_client, limit=20)


@pytest.mark.parametrize(
    ("payload", "attr"),
    [({"limit": 21}, "limit"), ({"limit": 0}, "limit"), ({"context": "X"}, "context")],
)
def test_generate__bad_input__400(user_client, learner, payload, attr):
    assert_error_shape(user_client.post(GENERATE, payload, format="json"), 400, attr=attr)


@pytest.mark.parametrize("context", ["MISSION", "CONTENT", "ASSESSMENT", "SESSION"])
def test_generate__decides_in_the_requested_context(user_client, learner, context):
    response = user_client.post(GENERATE, {"context": context, "limit": 3}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    decision = Decision.objects.select_related("strategy").get(pk=body["decision"]["id"])
    assert decision.context == context
    assert decision.strategy.context == context
    assert body["decision"]["strategy"] == decision.strategy.key
    assert len(body["results"]) == 3
    assert all(r["context"] == context and r["decision"] == decision.pk for r in body["results"])
    assert all(r["reason"].startswith("Recommended because it") for r in body["results"])


def test_generate__context_switched_off__disabled_in_that_context_only(user_client, learner):
    Preferences.objects.create(user=learner, mission_personalization_enabled=False)
    mission = user_client.post(GENERATE, {"context": "MISSION", "limit": 2}, format="json")
    assert mission.status_code == 201, mission.content
    assert mission.json()["decision"]["source"] == "DISABLED"
    assert mission.json()["decision"]["personalization_applied"] is False
    content = user_client.post(GENERATE, {"context": "CONTENT", "limit": 2}, format="json")
    assert content.json()["decision"]["source"] != "DISABLED"


# --- Feedback loop --------------------------------------------------------------------------


def _one(client):
    return _generate(client, limit=1)["results"][0]["id"]


@pytest.mark.parametrize(
    ("steps", "final"),
    [
        (["accept"], "ACCEPTED"),
        (["decline"], "DECLINED"),
        (["complete"], "COMPLETED"),
        (["accept", "complete"], "COMPLETED"),
        (["accept", "decline"], "DECLINED"),
    ],
)
def test_feedback__allowed_transitions(user_client, learner, steps, final):
    rec = _one(user_client)
    for step in steps:
        body = {"effectiveness": 0.7} if step == "complete" else {}
        response = user_client.post(f"/api/v1/recommendations/{rec}/{step}/", body, format="json")
        assert response.status_code == 200, response.content
    assert Recommendation.objects.get(pk=rec).status == final


@pytest.mark.parametrize(
    ("start", "step"),
    [
        ("DECLINED", "accept"),
        ("DECLINED", "complete"),
        ("COMPLETED", "complete"),
        ("COMPLETED", "decline"),
        ("EXPIRED", "accept"),
        ("ACCEPTED", "accept"),
    ],
)
def test_feedback__illegal_transitions__409(user_client, learner, start, step):
    rec = _one(user_client)
    Recommendation.objects.filter(pk=rec).update(status=start)
    body = {"effectiveness": 0.5} if step == "complete" else {}
    assert_error_shape(
        user_client.post(f"/api/v1/recommendations/{rec}/{step}/", body, format="json"), 409
    )


def test_feedback__second_complete__409_and_one_outcome(user_client, learner):
    rec = _one(user_client)
    assert (
        user_client.post(
            f"/api/v1/recommendations/{rec}/complete/", {"effectiveness": 0.9}, format="json"
        ).status_code
        == 200
    )
    response = user_client.post(
        f"/api/v1/recommendations/{rec}/complete/", {"effectiveness": 0.9}, format="json"
    )
    assert_error_shape(response, 409)
    assert Outcome.objects.filter(event_id=f"{COMPLETION_EVENT_PREFIX}{rec}").count() == 1


def test_feedback__complete_needs_effectiveness_or_scores(user_client, learner):
    rec = _one(user_client)
    assert_error_shape(
        user_client.post(f"/api/v1/recommendations/{rec}/complete/", {}, format="json"),
        400,
        attr="effectiveness",
    )


def test_complete__without_effectiveness_or_scores__400_naming_effectiveness(learner, user_client):
    rec = Recommendation.objects.get(pk=_one(user_client))
    with pytest.raises(ValidationError) as raised:
        recommendation_complete(recommendation=rec)
    assert "effectiveness" in raised.value.message_dict
    assert Recommendation.objects.get(pk=rec.pk).status == "PENDING"
    assert not Outcome.objects.exists()


@pytest.mark.parametrize("client_event_id", ["recommendation-{pk}", "{pk}", "rec-{pk}"])
def test_complete__client_used_the_same_id__no_collision(user_client, learner, client_event_id):
    """The completion's outcome lives in a key space clients cannot write to, so whatever
    event ids the client chose, completing works and leaves the client's outcomes alone."""
    rec = _one(user_client)
    event_id = client_event_id.format(pk=rec)
    client_outcome = {
        "event_id": event_id,
        "outcome_type": "MISSION_COMPLETED",
        "context": "MISSION",
        "retention_score": 0.1,
    }
    assert user_client.post("/api/v1/outcomes/", client_outcome, format="json").status_code == 201
    response = user_client.post(
        f"/api/v1/recommendations/{rec}/complete/", {"effectiveness": 0.9}, format="json"
    )
    assert response.status_code == 200, response.content
    assert Outcome.objects.get(event_id=event_id).retention_score == 0.1
    completion = Outcome.objects.get(event_id=f"{COMPLETION_EVENT_PREFIX}{rec}")
    assert completion.outcome_type == "CONTENT_ENGAGED"
    assert completion.engagement_score == 0.9


@pytest.mark.parametrize(
    ("payload", "attr"),
    [
        ({"event_id": f"{COMPLETION_EVENT_PREFIX}1"}, "event_id"),
        ({"event_id": "Attune:anything"}, "event_id"),
        ([{"event_id": "ok-1"}, {"event_id": "attune:x"}], "1.event_id"),
    ],
)
def test_outcomes__reserved_event_id_prefix__400(user_client, learner, payload, attr):
    base = {"outcome_type": "MISSION_COMPLETED", "context": "MISSION", "retention_score": 0.5}
    body = [base | item for item in payload] if isinstance(payload, list) else base | payload
    assert_error_shape(user_client.post("/api/v1/outcomes/", body, format="json"), 400, attr=attr)
    assert not Outcome.objects.exists()


def test_feedback__decline_reason_kept(user_client, learner):
    rec = _one(user_client)
    user_client.post(
        f"/api/v1/recommendations/{rec}/decline/", {"reason": "Too long"}, format="json"
    )
    stored = Recommendation.objects.get(pk=rec)
    assert stored.feedback == "Too long"
    assert stored.responded_at is not None


def test_complete__outcome_feeds_the_bandit_statistics(user_client, learner):
    rec_id = _one(user_client)
    rec = Recommendation.objects.get(pk=rec_id)
    user_client.post(
        f"/api/v1/recommendations/{rec_id}/complete/",
        {"effectiveness": 0.9, "completion_rate": 1.0},
        format="json",
    )
    outcome = Outcome.objects.get(event_id=f"{COMPLETION_EVENT_PREFIX}{rec_id}")
    assert outcome.outcome_type == "CONTENT_ENGAGED"
    assert outcome.decision_id == rec.decision_id
    config = StrategyConfig.objects.get(pk=outcome.config_id)
    before = (config.times_rewarded, config.total_reward)
    bandit_rewards_recompute()
    config.refresh_from_db()
    assert (config.times_rewarded, config.total_reward) == (
        before[0] + 1,
        pytest.approx(before[1] + 1.0),
    )


def test_another_users_recommendation__404(user_client, other_client, learner):
    rec = _one(user_client)
    assert_error_shape(other_client.get(f"/api/v1/recommendations/{rec}/"), 404)
    assert_error_shape(
        other_client.post(f"/api/v1/recommendations/{rec}/accept/", {}, format="json"), 404
    )


def test_expire__pending_older_than_7_days(learner, user_client):
    old, new = (_one(user_client) for _ in range(2))
    Recommendation.objects.filter(pk=old).update(
        created_at=timezone.now() - datetime.timedelta(days=8)
    )
    Recommendation.objects.filter(pk=new).update(
        created_at=timezone.now() - datetime.timedelta(days=6)
    )
    assert recommendations_expire_stale() == 1
    assert Recommendation.objects.get(pk=old).status == "EXPIRED"
    assert Recommendation.objects.get(pk=new).status == "PENDING"
    assert recommendations_expire_stale() == 0


def test_me_summary__recommendation_counts(user_client, learner):
    recs = [_one(user_client) for _ in range(3)]
    user_client.post(f"/api/v1/recommendations/{recs[0]}/accept/", {}, format="json")
    user_client.post(f"/api/v1/recommendations/{recs[1]}/decline/", {}, format="json")
    summary = user_client.get("/api/v1/me/").json()["summary"]["recommendations"]
    assert summary["by_status"]["PENDING"] == 1
    assert summary["total"] == 3
    assert summary["acceptance_rate"] == pytest.approx(0.5)


# --- Learning paths -------------------------------------------------------------------------


def test_path__three_stages_from_weaknesses(user_client, learner):
    response = user_client.post("/api/v1/learning-paths/", {"goal": "Get unstuck"}, format="json")
    assert response.status_code == 201, response.content
    stages = response.json()["stages"]
    assert [s["title"] for s in stages] == ["Foundation", "Practice", "Mastery"]
    assert all(i["item"]["difficulty"] <= 2 for i in stages[0]["items"])
    assert all(i["item"]["difficulty"] == 3 for i in stages[1]["items"])
    assert all(i["item"]["difficulty"] >= 4 for i in stages[2]["items"])
    skills = {i["item"]["skill"] for s in stages for i in s["items"]}
    assert skills == {"debugging"}  # the only weakness


def test_path__given_skills_and_progress(user_client, learner):
    body = user_client.post(
        "/api/v1/learning-paths/", {"goal": "Testing", "skills": ["testing"]}, format="json"
    ).json()
    items = [i for s in body["stages"] for i in s["items"]]
    url = f"/api/v1/learning-paths/{body['id']}/items/{items[0]['id']}/complete/"
    after = user_client.post(url, {}, format="json").json()
    assert after["progress"] == pytest.approx(1 / len(items))
    assert after["stages"][0]["status"] == "IN_PROGRESS"
    assert_error_shape(user_client.post(url, {}, format="json"), 409)
    for item in items[1:]:
        last = user_client.post(
            f"/api/v1/learning-paths/{body['id']}/items/{item['id']}/complete/", {}, format="json"
        ).json()
    assert last["status"] == "COMPLETED"
    assert last["progress"] == 1.0
    assert all(s["status"] == "COMPLETED" for s in last["stages"])


def test_path__one_active_per_goal__409(user_client, learner):
    user_client.post("/api/v1/learning-paths/", {"goal": "G"}, format="json")
    assert_error_shape(
        user_client.post("/api/v1/learning-paths/", {"goal": "G"}, format="json"), 409
    )
    assert LearningPath.objects.filter(goal="G").count() == 1


@pytest.mark.parametrize(
    ("start", "target", "code"),
    [
        ("ACTIVE", "PAUSED", 200),
        ("ACTIVE", "ABANDONED", 200),
        ("PAUSED", "ACTIVE", 200),
        ("PAUSED", "ABANDONED", 200),
        ("ABANDONED", "ACTIVE", 409),
        ("COMPLETED", "PAUSED", 409),
        ("ACTIVE", "ACTIVE", 409),
    ],
)
def test_path__status_transitions(user_client, learner, start, target, code):
    body = user_client.post("/api/v1/learning-paths/", {"goal": "T"}, format="json").json()
    LearningPath.objects.filter(pk=body["id"]).update(status=start)
    response = user_client.patch(
        f"/api/v1/learning-paths/{body['id']}/", {"status": target}, format="json"
    )
    assert response.status_code == code


def test_path__resume_when_another_active_for_goal__409(user_client, learner):
    first = user_client.post("/api/v1/learning-paths/", {"goal": "T"}, format="json").json()
    user_client.patch(f"/api/v1/learning-paths/{first['id']}/", {"status": "PAUSED"}, format="json")
    user_client.post("/api/v1/learning-paths/", {"goal": "T"}, format="json")
    response = user_client.patch(
        f"/api/v1/learning-paths/{first['id']}/", {"status": "ACTIVE"}, format="json"
    )
    assert_error_shape(response, 409)


def test_path__no_profile_no_skills__400(other_client, content_catalog):
    assert_error_shape(
        other_client.post("/api/v1/learning-paths/", {"goal": "x"}, format="json"),
        400,
        attr="skills",
    )


def test_path__others_404_delete_own(user_client, other_client, learner):
    body = user_client.post("/api/v1/learning-paths/", {"goal": "T"}, format="json").json()
    assert_error_shape(other_client.get(f"/api/v1/learning-paths/{body['id']}/"), 404)
    assert user_client.delete(f"/api/v1/learning-paths/{body['id']}/").status_code == 204
    assert not LearningPath.objects.exists()


def test_content_items__read_all_write_staff(user_client, staff_client, content_catalog):
    assert user_client.get("/api/v1/content-items/", {"skill": "testing"}).json()["count"] == 6
    item = content_catalog[0]
    assert_error_shape(
        user_client.patch(f"/api/v1/content-items/{item.pk}/", {"title": "x"}, format="json"), 403
    )
    response = staff_client.patch(
        f"/api/v1/content-items/{item.pk}/", {"difficulty": 6}, format="json"
    )
    assert_error_shape(response, 400, attr="difficulty")
    response = staff_client.post(
        "/api/v1/content-items/",
        {
            "key": "new-one",
            "title": "New",
            "skill": "testing",
            "content_type": "QUIZ",
            "difficulty": 2,
            "duration_minutes": 10,
        },
        format="json",
    )
    assert response.status_code == 201
