"""The decide route's one-statement authentication (experiments/api/authentication.py) and
the first read that stands in for the connection's health check (config/db.py)."""

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test.utils import CaptureQueriesContext

from experiments.models import Decision, StrategyConfig
from personalization.models import Preferences
from tests.conftest import assert_error_shape, token_client
from tests.experiments.factories import make_experiment
from tests.personalization.factories import UserFactory

DECISIONS = "/api/v1/decisions/"


def _decide(client, body=None, **headers):
    return client.post(DECISIONS, body or {"context": "MISSION"}, format="json", **headers)


def _answer_without_id(response):
    body = response.json()
    body.pop("id")
    return body


def test_decide__token_and_learner_read_in_one_statement__then_the_insert(
    strategy_catalog, user, user_client
):
    make_experiment(context="MISSION")
    Preferences.objects.create(user=user, learning_style="VISUAL")
    assert _decide(user_client).status_code == 201  # creates the configs and the assignment
    with CaptureQueriesContext(connection) as queries:
        response = _decide(user_client)
    assert response.status_code == 201, response.content
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 2, statements
    assert statements[0].startswith("SELECT u.*")
    assert "authtoken_token" in statements[0]
    assert statements[1].startswith("INSERT")
    assert response.json()["source"] == "EXPERIMENT"


def test_decide__joined_read_answers_as_the_separate_reads(strategy_catalog, user, user_client):
    """The same learner decided through the joined read and through the general path (a body
    the joined read does not serve: an explicit charset) gets the same answer."""
    make_experiment(context="MISSION")
    first = _decide(user_client)
    joined = _decide(user_client)
    general = user_client.generic(
        "POST",
        DECISIONS,
        b'{"context": "MISSION"}',
        content_type="application/json; charset=utf-8",
    )
    assert (first.status_code, joined.status_code, general.status_code) == (201, 201, 201)
    assert _answer_without_id(joined) == _answer_without_id(general) == _answer_without_id(first)
    assert Decision.objects.filter(user=user).count() == 3


def test_decide__learner_state_read_with_the_token_is_the_callers(strategy_catalog):
    """Two learners' tokens on one connection: each decision is filed under its own caller,
    with its own configs."""
    make_experiment(context="MISSION")
    learners = UserFactory.create_batch(3)
    clients = [token_client(u) for u in learners]
    for client in clients * 2:
        assert _decide(client).status_code == 201
    for learner in learners:
        decisions = Decision.objects.filter(user=learner)
        assert decisions.count() == 2
        assert {d.config.user_id for d in decisions} == {learner.pk}


@pytest.mark.parametrize(
    "case", ["unknown token", "malformed token", "inactive", "staff", "service", "bad context"]
)
def test_decide__what_the_joined_read_cannot_serve__answers_as_everywhere(
    strategy_catalog, user, staff_user, service_account, case
):
    make_experiment(context="MISSION")
    client = token_client({"staff": staff_user, "service": service_account}.get(case, user))
    body = {"context": "MISSION"}
    if case == "unknown token":
        client.credentials(HTTP_AUTHORIZATION="Token " + "a" * 40)
    elif case == "malformed token":
        client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    elif case == "inactive":
        user.is_active = False
        user.save(update_fields=["is_active"])
    elif case == "bad context":
        body = {"context": "NOWHERE"}
    response = _decide(client, body)
    expected = {
        "unknown token": (401, "authentication_failed"),
        "malformed token": (401, "authentication_failed"),
        "inactive": (401, "authentication_failed"),
        "staff": (403, "learner_required"),
        "service": (403, "learner_required"),
        "bad context": (400, "invalid_choice"),
    }[case]
    assert_error_shape(response, expected[0], code=expected[1])
    assert not Decision.objects.exists()


def test_decide__service_account_acting_for_a_learner__decides_for_the_learner(
    strategy_catalog, user, service_account
):
    make_experiment(context="MISSION")
    client = token_client(service_account)
    response = _decide(client, HTTP_X_ON_BEHALF_OF=user.external_id)
    assert response.status_code == 201, response.content
    assert Decision.objects.get().user == user


@pytest.mark.django_db(transaction=True)
def test_decide__connection_died_between_requests__next_request_succeeds_without_health_check(
    strategy_catalog,
):
    """A persistent connection killed between two requests (a database restart): the next
    decide call, whose first statement is a read, reconnects and answers 201; on a live
    connection the request runs no `SELECT 1` of its own."""
    if connection.vendor != "postgresql":
        pytest.skip("terminating a backend is exercised on PostgreSQL")
    make_experiment(context="MISSION")
    client = token_client(UserFactory())
    assert _decide(client).status_code == 201
    wrapper = connections[DEFAULT_DB_ALIAS]
    checks = []
    original = type(wrapper).is_usable

    def counted(self):
        checks.append(1)
        return original(self)

    type(wrapper).is_usable = counted
    try:
        wrapper.health_check_done = False  # a new request on the persistent connection
        assert _decide(client).status_code == 201
        assert checks == []
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        other = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        finally:
            other.close()
        wrapper.health_check_done = False
        response = _decide(client)
        assert response.status_code == 201, response.content
        assert checks == [1]  # asked only once the read had failed
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            assert cursor.fetchone()[0] != pid
    finally:
        type(wrapper).is_usable = original
    assert Decision.objects.count() == 3


@pytest.mark.parametrize("by", ["external id", "attune id"])
def test_decide__service_account_for_a_learner__one_statement_then_the_insert(
    strategy_catalog, user, service_account, by
):
    make_experiment(context="MISSION")
    client = token_client(service_account)
    reference = user.external_id if by == "external id" else f"id:{user.pk}"
    assert _decide(client, HTTP_X_ON_BEHALF_OF=reference).status_code == 201
    with CaptureQueriesContext(connection) as queries:
        response = _decide(client, HTTP_X_ON_BEHALF_OF=reference)
    assert response.status_code == 201, response.content
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 2, statements
    assert statements[0].startswith("SELECT c.*, x.*")
    assert statements[1].startswith("INSERT")
    assert set(Decision.objects.values_list("user", flat=True)) == {user.pk}


@pytest.mark.parametrize(
    "case", ["unknown", "inactive", "staff target", "service target", "no permission", "bad id"]
)
def test_decide__on_behalf_of_what_the_joined_read_found__checked_as_everywhere(
    strategy_catalog, user, other_user, staff_user, service_account, case
):
    make_experiment(context="MISSION")
    caller = other_user if case == "no permission" else service_account
    reference = {
        "unknown": "nobody-has-this",
        "staff target": f"id:{staff_user.pk}",
        "service target": f"id:{service_account.pk}",
        "bad id": "id:12x",
    }.get(case, user.external_id)
    if case == "inactive":
        user.is_active = False
        user.save(update_fields=["is_active"])
    response = _decide(token_client(caller), HTTP_X_ON_BEHALF_OF=reference)
    expected = {
        "unknown": (404, "not_found"),
        "inactive": (404, "not_found"),
        "bad id": (404, "not_found"),
        "staff target": (403, "target_not_learner"),
        "service target": (403, "target_not_learner"),
        "no permission": (403, "permission_denied"),
    }[case]
    assert_error_shape(response, expected[0], code=expected[1])
    assert not Decision.objects.exists()


def test_decide__on_behalf_of_a_merged_learner__decides_for_the_survivor(
    strategy_catalog, user, service_account
):
    make_experiment(context="MISSION")
    merged = UserFactory(is_active=False, merged_into=user.pk, external_id="merged-learner")
    response = _decide(token_client(service_account), HTTP_X_ON_BEHALF_OF=merged.external_id)
    assert response.status_code == 201, response.content
    assert Decision.objects.get().user == user


def test_decide__sqlite_and_postgresql_read_the_mean_reward_exactly(strategy_catalog, user):
    """The configs travel as JSON in the learner read: the mean keeps all its digits."""
    from experiments.services.decisions import _learner_state, decision_make

    make_experiment(context="MISSION")
    decision_make(user=user, context="MISSION")
    mean = 0.6333333333333333
    StrategyConfig.objects.filter(user=user, context="MISSION").update(avg_reward=mean)
    state = _learner_state(user=user, context="MISSION")
    assert state.configs
    assert {c.avg_reward for c in state.configs.values()} == {mean}
