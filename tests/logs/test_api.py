import datetime

import pytest
from django.utils import timezone

from logs.models import PersonalizationLog, TranslationLog
from tests.conftest import assert_error_shape
from tests.logs.factories import PersonalizationLogFactory, TranslationLogFactory

P_URL = "/api/v1/logs/personalization/"
T_URL = "/api/v1/logs/translation/"
VALID = {"chapter_id": "ch-1", "response_time_ms": 80, "status": "SUCCESS"}


def test_create__personalization__stored_for_caller(user_client, user):
    when = (timezone.now() - datetime.timedelta(minutes=3)).isoformat()
    response = user_client.post(
        P_URL, {**VALID, "request_timestamp": when, "error_message": ""}, format="json"
    )
    assert response.status_code == 201, response.content
    entry = PersonalizationLog.objects.get()
    assert entry.user == user
    assert response.json()["id"] == entry.pk
    assert entry.request_timestamp.isoformat() == datetime.datetime.fromisoformat(when).isoformat()


def test_create__translation__needs_target_language(user_client):
    assert_error_shape(user_client.post(T_URL, VALID, format="json"), 400, attr="target_language")
    response = user_client.post(T_URL, {**VALID, "target_language": "pt-BR"}, format="json")
    assert response.status_code == 201
    assert TranslationLog.objects.get().target_language == "pt-BR"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "MAYBE"),
        ("status", "success"),
        ("response_time_ms", -1),
        ("response_time_ms", 1.5),
        ("chapter_id", "x" * 101),
        ("chapter_id", ""),
        ("request_timestamp", "not a date"),
    ],
)
def test_create__invalid_field__400_names_it(user_client, field, value):
    response = user_client.post(P_URL, {**VALID, field: value}, format="json")
    assert_error_shape(response, 400, attr=field)
    assert PersonalizationLog.objects.count() == 0


def test_create__target_language_over_10__400(user_client):
    response = user_client.post(T_URL, {**VALID, "target_language": "x" * 11}, format="json")
    assert_error_shape(response, 400, attr="target_language")


def test_create__future_timestamp__400(user_client):
    future = (timezone.now() + datetime.timedelta(hours=1)).isoformat()
    response = user_client.post(P_URL, {**VALID, "request_timestamp": future}, format="json")
    assert_error_shape(response, 400, attr="request_timestamp")


def test_create__boundaries_accepted(user_client):
    response = user_client.post(
        P_URL, {**VALID, "chapter_id": "x" * 100, "response_time_ms": 0}, format="json"
    )
    assert response.status_code == 201


def test_list__own_rows_newest_first(user_client, user, other_user):
    old = PersonalizationLogFactory(
        user=user, request_timestamp=timezone.now() - datetime.timedelta(days=2)
    )
    new = PersonalizationLogFactory(user=user)
    PersonalizationLogFactory(user=other_user)
    body = user_client.get(P_URL).json()
    assert [row["id"] for row in body["results"]] == [new.pk, old.pk]


def test_list__filters(user_client, user):
    PersonalizationLogFactory(user=user, status="FAILURE", chapter_id="x")
    PersonalizationLogFactory(user=user, status="SUCCESS", chapter_id="y")
    body = user_client.get(P_URL, {"status": "FAILURE"}).json()
    assert [row["chapter_id"] for row in body["results"]] == ["x"]
    assert_error_shape(user_client.get(P_URL, {"status": "NOPE"}), 400, attr="status")


def test_retrieve__another_users_log__404(user_client, other_user):
    entry = TranslationLogFactory(user=other_user)
    assert_error_shape(user_client.get(f"{T_URL}{entry.pk}/"), 404)


def test_retrieve__own_log__200(user_client, user):
    entry = TranslationLogFactory(user=user)
    assert user_client.get(f"{T_URL}{entry.pk}/").json()["target_language"] == "de"


def test_list__staff_sees_everyone(staff_client, user, other_user):
    PersonalizationLogFactory(user=user)
    PersonalizationLogFactory(user=other_user)
    assert staff_client.get(P_URL).json()["count"] == 2
    assert staff_client.get(P_URL, {"user": user.pk}).json()["count"] == 1


def test_logs__cannot_be_changed_or_deleted(user_client, user):
    entry = PersonalizationLogFactory(user=user)
    assert_error_shape(user_client.patch(f"{P_URL}{entry.pk}/", {"status": "FAILURE"}), 405)
    assert_error_shape(user_client.delete(f"{P_URL}{entry.pk}/"), 405)


def test_stats__staff_gets_per_chapter_figures(staff_client, user):
    for ms, status in [(100, "SUCCESS"), (200, "FAILURE"), (300, "TIMEOUT"), (400, "SUCCESS")]:
        PersonalizationLogFactory(user=user, chapter_id="c", response_time_ms=ms, status=status)
    TranslationLogFactory(user=user, chapter_id="t", response_time_ms=50)
    body = staff_client.get("/api/v1/logs/stats/").json()
    (row,) = body["personalization"]
    assert row == {
        "chapter_id": "c",
        "count": 4,
        "failure_rate": 0.25,
        "timeout_rate": 0.25,
        "p50_response_time_ms": 250.0,
        "p95_response_time_ms": pytest.approx(385.0),
    }
    assert [r["chapter_id"] for r in body["translation"]] == ["t"]


def test_stats__ordinary_user__403(user_client):
    assert_error_shape(user_client.get("/api/v1/logs/stats/"), 403)


def test_stats__bad_filter__400(staff_client):
    assert_error_shape(
        staff_client.get("/api/v1/logs/stats/", {"until": "soon"}), 400, attr="until"
    )


def test_audit__staff_only(user_client, staff_client):
    assert_error_shape(user_client.get("/api/v1/audit/"), 403)
    assert staff_client.get("/api/v1/audit/").status_code == 200


def test_audit__filters_actor_action_target(staff_client, staff_user, user):
    from django.db import transaction

    from logs.models import AuditEvent
    from logs.services import audit_event_record

    with transaction.atomic():
        audit_event_record(actor=staff_user, action=AuditEvent.Action.PROFILE_UPDATED, target=user)
        audit_event_record(actor=None, action=AuditEvent.Action.USER_CREATED, target=staff_user)
    by_actor = staff_client.get("/api/v1/audit/", {"actor": staff_user.pk}).json()
    assert [e["action"] for e in by_actor["results"]] == ["PROFILE_UPDATED"]
    by_target = staff_client.get(
        "/api/v1/audit/", {"target_type": "personalization.user", "target_id": staff_user.pk}
    ).json()
    assert [e["action"] for e in by_target["results"]] == ["USER_CREATED"]
    assert_error_shape(staff_client.get("/api/v1/audit/", {"action": "NOPE"}), 400, attr="action")
