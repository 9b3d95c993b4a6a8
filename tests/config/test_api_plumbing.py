"""Authentication, X-On-Behalf-Of, the error shape, pagination and throttling."""

import json

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from config.api.throttles import CallerRateThrottle
from logs.models import PersonalizationLog
from tests.conftest import assert_error_shape
from tests.logs.factories import PersonalizationLogFactory
from tests.personalization.factories import DEFAULT_PASSWORD, UserFactory

LOGS_URL = "/api/v1/logs/personalization/"
VALID_LOG = {"chapter_id": "ch-1", "response_time_ms": 80, "status": "SUCCESS"}


# --- Token authentication -------------------------------------------------------------------


def test_token__valid_credentials__token_authenticates(api_client, user):
    response = api_client.post(
        "/api/v1/auth/token/", {"username": user.username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200
    token = response.json()["token"]

    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_client.get(LOGS_URL).status_code == 200


def test_token__wrong_password__400_in_error_shape(api_client, user):
    response = api_client.post("/api/v1/auth/token/", {"username": user.username, "password": "x"})
    assert_error_shape(response, 400, attr="non_field_errors")


def test_token__missing_field__400_names_it(api_client, user):
    response = api_client.post("/api/v1/auth/token/", {"username": user.username})
    assert_error_shape(response, 400, attr="password")


def test_request__bad_token__401(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert_error_shape(api_client.get(LOGS_URL), 401, code="authentication_failed")


def test_request__no_credentials__401(api_client, db):
    body = assert_error_shape(api_client.get(LOGS_URL), 401, code="not_authenticated")
    assert body["type"] == "client_error"


def test_session_auth__logged_in_user__allowed(user):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=DEFAULT_PASSWORD)
    assert client.get(LOGS_URL).status_code == 200
    # Unsafe methods under session authentication need the CSRF token.
    assert_error_shape(client.post(LOGS_URL, VALID_LOG, format="json"), 403)


# --- X-On-Behalf-Of -------------------------------------------------------------------------


def test_on_behalf_of__service_account_by_id__acts_as_user(service_client, user):
    response = service_client.post(
        LOGS_URL, VALID_LOG, format="json", HTTP_X_ON_BEHALF_OF=f"id:{user.pk}"
    )
    assert response.status_code == 201
    assert response.json()["user"] == user.pk
    assert PersonalizationLog.objects.get().user == user


def test_on_behalf_of__service_account_by_external_id__acts_as_user(service_client, user):
    PersonalizationLogFactory(user=user)
    PersonalizationLogFactory()  # someone else's
    response = service_client.get(LOGS_URL, HTTP_X_ON_BEHALF_OF=user.external_id)
    assert response.status_code == 200
    assert [row["user"] for row in response.json()["results"]] == [user.pk]


def test_on_behalf_of__ordinary_user__403(user_client, other_user):
    response = user_client.get(LOGS_URL, HTTP_X_ON_BEHALF_OF=str(other_user.pk))
    body = assert_error_shape(response, 403, code="permission_denied")
    assert "act_for_users" in body["errors"][0]["detail"]


def test_on_behalf_of__unknown_user__404(service_client):
    response = service_client.get(LOGS_URL, HTTP_X_ON_BEHALF_OF="no-such-user")
    assert_error_shape(response, 404, code="not_found")


def test_on_behalf_of__inactive_user__404(service_client):
    inactive = UserFactory(is_active=False, external_id="gone")
    response = service_client.get(LOGS_URL, HTTP_X_ON_BEHALF_OF=inactive.external_id)
    assert_error_shape(response, 404)


def test_on_behalf_of__service_account_cannot_borrow_staff_rights(service_client, staff_user):
    response = service_client.get("/api/v1/logs/stats/", HTTP_X_ON_BEHALF_OF=f"id:{staff_user.pk}")
    assert_error_shape(response, 403)


# --- The error shape ------------------------------------------------------------------------


def test_error__malformed_json__400(user_client):
    response = user_client.post(LOGS_URL, data="{not json", content_type="application/json")
    assert_error_shape(response, 400, code="parse_error")


def test_error__wrong_type__400_names_field(user_client):
    response = user_client.post(LOGS_URL, {**VALID_LOG, "response_time_ms": "fast"}, format="json")
    body = assert_error_shape(response, 400, attr="response_time_ms")
    assert body["type"] == "validation_error"


def test_error__json_array_instead_of_object__400(user_client):
    response = user_client.post(LOGS_URL, data="[1, 2]", content_type="application/json")
    assert_error_shape(response, 400)


def test_error__unknown_field__400_names_it(user_client):
    response = user_client.post(LOGS_URL, {**VALID_LOG, "colour": "red"}, format="json")
    assert_error_shape(response, 400, attr="colour", code="unknown_field")


def test_error__unknown_route__404(user_client):
    assert_error_shape(user_client.get("/api/v1/no-such-route/"), 404, code="not_found")
    assert_error_shape(user_client.get("/api/elsewhere"), 404, code="not_found")


def test_error__another_users_object__404(user_client, other_user):
    entry = PersonalizationLogFactory(user=other_user)
    assert_error_shape(user_client.get(f"{LOGS_URL}{entry.pk}/"), 404)


def test_error__method_not_allowed__405(user_client):
    assert_error_shape(user_client.put(LOGS_URL, VALID_LOG, format="json"), 405)


def test_error__unsupported_media_type__415(user_client):
    response = user_client.post(LOGS_URL, data="chapter_id=x", content_type="text/plain")
    assert_error_shape(response, 415, code="unsupported_media_type")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_error__oversized_body__413_and_nothing_stored(user_client):
    payload = {**VALID_LOG, "error_message": "x" * 2000}
    body = assert_error_shape(user_client.post(LOGS_URL, payload, format="json"), 413)
    assert "limit is 1024 bytes" in body["errors"][0]["detail"]
    assert PersonalizationLog.objects.count() == 0


@pytest.mark.urls("tests.config.urls_failing")
def test_error__unhandled_exception__json_500(user_client):
    user_client.raise_request_exception = False
    response = user_client.get("/api/v1/boom/")
    body = assert_error_shape(response, 500)
    assert body["type"] == "server_error"
    assert "RuntimeError" not in json.dumps(body)


@pytest.mark.urls("tests.config.urls_failing")
def test_error__exception_outside_drf__json_500(user_client):
    user_client.raise_request_exception = False
    response = user_client.get("/api/v1/plain-boom/")
    body = assert_error_shape(response, 500)
    assert body["type"] == "server_error"


# --- Pagination and throttling --------------------------------------------------------------


def test_pagination__page_size_capped_at_200(user_client, user):
    PersonalizationLog.objects.bulk_create(
        PersonalizationLogFactory.build(user=user) for _ in range(205)
    )
    body = user_client.get(LOGS_URL, {"page_size": 1000}).json()
    assert body["count"] == 205
    assert len(body["results"]) == 200
    second = user_client.get(LOGS_URL, {"page_size": 200, "page": 2}).json()
    assert len(second["results"]) == 5


def test_pagination__page_out_of_range__404(user_client):
    assert_error_shape(user_client.get(LOGS_URL, {"page": 9}), 404)


def test_throttle__over_the_rate__429(user_client, monkeypatch):
    monkeypatch.setattr(
        CallerRateThrottle, "THROTTLE_RATES", {"user": "3/minute", "service": "100/minute"}
    )
    statuses = [user_client.get(LOGS_URL).status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200]
    response = user_client.get(LOGS_URL)
    assert_error_shape(response, 429, code="throttled")
    assert int(response["Retry-After"]) > 0


def test_throttle__service_account_counted_once_across_users(service_client, monkeypatch):
    monkeypatch.setattr(
        CallerRateThrottle, "THROTTLE_RATES", {"user": "100/minute", "service": "2/minute"}
    )
    users = UserFactory.create_batch(3)
    statuses = [
        service_client.get(LOGS_URL, HTTP_X_ON_BEHALF_OF=f"id:{u.pk}").status_code for u in users
    ]
    assert statuses == [200, 200, 429]


def test_on_behalf_of__permission_through_a_group(user):
    from django.contrib.auth.models import Group, Permission

    from tests.conftest import token_client

    group = Group.objects.create(name="client applications")
    group.permissions.add(
        Permission.objects.get(codename="act_for_users", content_type__app_label="personalization")
    )
    account = UserFactory()
    account.groups.add(group)
    response = token_client(account).get(LOGS_URL, HTTP_X_ON_BEHALF_OF=f"id:{user.pk}")
    assert response.status_code == 200
