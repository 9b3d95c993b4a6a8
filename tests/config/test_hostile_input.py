"""Inputs found by fuzzing the API (schemathesis and by hand): each is a 4xx in the error
shape, and none stores anything."""

import io

import pytest
from rest_framework.test import APIClient

from experiments.models import Experiment
from personalization.models import Interaction, Preferences, SkillAssessment
from tests.conftest import assert_error_shape

INTERACTION = {"type": "READING", "service": "library"}


@pytest.mark.parametrize(
    "body",
    [
        '{"type": "READING", "service": "lib", "metadata": {"a": "\\ud800"}}',
        '{"type": "READING", "service": "lib", "metadata": {"a": "x\\u0000y"}}',
        '{"type": "READING", "service": "lib", "\\ud800": 1}',
        '{"type": "READING", "service": "lib", "rating": NaN}',
        '{"type": "READING", "service": "lib", "rating": Infinity}',
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_body__unstorable_json__400_nothing_stored(user_client, body):
    response = user_client.post("/api/v1/interactions/", data=body, content_type="application/json")
    assert_error_shape(response, 400)
    assert not Interaction.objects.exists()


def test_body__surrogate_in_background__400_profile_unchanged(user_client, user):
    body = '{"software_background": {"level": "BEGINNER", "languages": ["\\ud800"]}}'
    assert_error_shape(
        user_client.patch("/api/v1/me/", data=body, content_type="application/json"), 400
    )
    assert user_client.get("/api/v1/me/").status_code == 200


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_float_fields__not_finite__400(user_client, staff_client, strategy_catalog, value):
    response = user_client.post("/api/v1/me/skills/", {"skill": "x", "score": value}, format="json")
    assert_error_shape(response, 400, attr="score")
    assert not SkillAssessment.objects.exists()
    payload = {
        "name": "n",
        "experiment_type": "AB_TEST",
        "context": "MISSION",
        "alpha": value,
        "variants": [
            {
                "key": "c",
                "name": "C",
                "strategy": strategy_catalog[("MISSION", "conservative")].pk,
                "weight": value,
            }
        ],
    }
    response = staff_client.post("/api/v1/experiments/", payload, format="json")
    body = assert_error_shape(response, 400)
    assert {"alpha", "variants.0.weight"} <= {e["attr"] for e in body["errors"]}
    assert not Experiment.objects.exists()
    assert staff_client.get("/api/v1/experiments/").status_code == 200


def test_notification_settings__partial__merged_and_readable(user_client, user):
    response = user_client.patch(
        "/api/v1/me/preferences/", {"notification_settings": {"daily": False}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["notification_settings"] == {"daily": False, "weekly": True}
    response = user_client.put(
        "/api/v1/me/preferences/", {"notification_settings": {}}, format="json"
    )
    assert response.json()["notification_settings"] == {"daily": True, "weekly": True}
    assert Preferences.objects.get(user=user).notification_settings == {
        "daily": True,
        "weekly": True,
    }
    assert user_client.get("/api/v1/me/").status_code == 200


@pytest.mark.parametrize("reference", ["²", "¹²³", "a\x00b", "x" * 300])
def test_on_behalf_of__odd_reference__404(service_client, reference):
    assert_error_shape(service_client.get("/api/v1/me/", HTTP_X_ON_BEHALF_OF=reference), 404)


@pytest.mark.parametrize("token", ["\x00", "abc\x00def", "z" * 40, "a" * 41])
def test_token__malformed__401(api_client, db, token):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert_error_shape(api_client.get("/api/v1/me/"), 401)


@pytest.mark.parametrize(
    ("url", "params", "attr"),
    [
        ("/api/v1/logs/personalization/", {"user": "1e30"}, "user"),
        ("/api/v1/logs/personalization/", {"user": "99999999999999999999"}, "user"),
        ("/api/v1/audit/", {"actor": "-1e30"}, "actor"),
        ("/api/v1/interactions/", {"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ("/api/v1/interactions/", {"until": "9999-12-31T23:59:59-05:00"}, "until"),
        ("/api/v1/decisions/", {"since": "2020-01-01T00:00:00+17:45"}, "since"),
        ("/api/v1/logs/stats/", {"since": "0001-01-01T00:00:00+01:00"}, "since"),
    ],
)
def test_query__out_of_range__400(staff_client, url, params, attr):
    assert_error_shape(staff_client.get(url, params), 400, attr=attr)


def test_query__too_many_fields__400(user_client):
    query = "&".join(["a=1"] * 1500)
    assert_error_shape(user_client.get(f"/api/v1/interactions/?{query}"), 400)


def test_unknown_route__any_method__json_404_not_csrf_page(user):
    client = APIClient(enforce_csrf_checks=True)
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)("/api/v1/nope/", {}, format="json")
        assert_error_shape(response, 404)


def test_session_csrf_failure__json_403(user):
    from tests.personalization.factories import DEFAULT_PASSWORD

    client = APIClient(enforce_csrf_checks=True)
    client.login(username=user.username, password=DEFAULT_PASSWORD)
    response = client.post("/api/v1/interactions/", INTERACTION, format="json")
    assert_error_shape(response, 403)


def test_wsgi__nul_in_content_type__json_400(db):
    from config.wsgi import application

    captured = {}

    def start_response(status, headers):
        captured["status"], captured["headers"] = status, dict(headers)

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/interactions/",
        "CONTENT_TYPE": "application/json; charset=\x00",
        "CONTENT_LENGTH": "2",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(b"{}"),
        "wsgi.url_scheme": "http",
    }
    body = b"".join(application(environ, start_response))
    assert captured["status"].startswith("400")
    assert b'"type": "client_error"' in body


def test_schema__errors_are_json(client, db):
    response = client.get("/api/schema/", {"format": "xml"})
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/")
    assert response.json()["type"] == "client_error"


# --- Second fuzzing round -------------------------------------------------------------------


def test_outcome__decision_id_beyond_bigint__400(user_client):
    payload = {
        "event_id": "e1",
        "context": "MISSION",
        "outcome_type": "MISSION_COMPLETED",
        "retention_score": 0.5,
        "decision": 2**63,
    }
    assert_error_shape(
        user_client.post("/api/v1/outcomes/", payload, format="json"), 400, attr="decision"
    )


def test_outcome__vanishing_score_rounded_results_still_computed(
    user_client, staff_client, strategy_catalog
):
    from outcomes.models import Outcome

    payload = {
        "event_id": "tiny",
        "context": "MISSION",
        "outcome_type": "MISSION_COMPLETED",
        "retention_score": 1e-320,
    }
    assert user_client.post("/api/v1/outcomes/", payload, format="json").status_code == 201
    assert Outcome.objects.get(event_id="tiny").retention_score == 0.0


def test_relative_lift__tiny_control_mean__no_crash():
    from outcomes.stats import Sample, relative_lift

    result = relative_lift(Sample.of([2e-300, 3e-300]), Sample.of([1e-300, 1.5e-300]))
    assert result.lift == pytest.approx(1.0)


def test_booleans_are_not_numbers(user_client):
    response = user_client.post("/api/v1/me/skills/", {"skill": "x", "score": False}, format="json")
    assert_error_shape(response, 400, attr="score")


def test_body_datetime__offset_checked_as_written(user_client):
    payload = {
        "event_id": "e1",
        "context": "MISSION",
        "outcome_type": "MISSION_COMPLETED",
        "retention_score": 0.5,
        "occurred_at": "2026-01-01T00:00:00+17:45",
    }
    assert_error_shape(
        user_client.post("/api/v1/outcomes/", payload, format="json"), 400, attr="occurred_at"
    )


def test_experiment_patch__incomplete_variants__400(staff_client, strategy_catalog):
    from tests.experiments.factories import make_experiment

    experiment = make_experiment(start=False)
    for variants in ([{}], [{"key": "a", "name": "a"}]):
        response = staff_client.patch(
            f"/api/v1/experiments/{experiment.pk}/", {"variants": variants}, format="json"
        )
        assert_error_shape(response, 400)
    assert experiment.variants.count() == 2


def test_experiment__infinite_weights_refused(staff_client, strategy_catalog):
    payload = {
        "name": "huge",
        "experiment_type": "AB_TEST",
        "context": "CONTENT",
        "variants": [
            {
                "key": k,
                "name": k,
                "strategy": strategy_catalog[("CONTENT", s)].pk,
                "weight": 1e308,
                "is_control": k == "c",
            }
            for k, s in (("c", "conservative"), ("t", "balanced"))
        ],
    }
    response = staff_client.post("/api/v1/experiments/", payload, format="json")
    assert_error_shape(response, 400, attr="variants.0.weight")


def test_experiment__end_before_start_on_patch__400(staff_client, strategy_catalog):
    from tests.experiments.factories import make_experiment

    experiment = make_experiment(
        start=False, start_date="2031-01-01T00:00:00Z", end_date="2032-01-01T00:00:00Z"
    )
    response = staff_client.patch(
        f"/api/v1/experiments/{experiment.pk}/", {"end_date": "2030-01-01T00:00:00Z"}, format="json"
    )
    assert_error_shape(response, 400, attr="end_date")


def test_bandit__min_arm_share_too_large__cannot_start(strategy_catalog):
    from config.errors import ConflictError
    from experiments.services.experiments import experiment_start
    from tests.experiments.factories import make_experiment

    experiment = make_experiment(
        experiment_type="MULTI_ARMED_BANDIT",
        variants=[("c", "conservative", 1.0), ("b", "balanced", 1.0), ("p", "pattern_heavy", 1.0)],
        min_arm_share=0.5,
        start=False,
    )
    with pytest.raises(ConflictError, match="min_arm_share"):
        experiment_start(actor=None, experiment=experiment)


@pytest.mark.parametrize(
    ("change", "attr"),
    [
        ({"context": "ASSESSMENT"}, "context"),
        ({"is_active": False}, "is_active"),
    ],
)
def test_strategy__context_fixed_and_baseline_active(staff_client, strategy_catalog, change, attr):
    baseline = strategy_catalog[("SESSION", "conservative")]
    response = staff_client.patch(f"/api/v1/strategies/{baseline.pk}/", change, format="json")
    assert_error_shape(response, 400, attr=attr)


def test_variant_params__must_be_an_object(staff_client, strategy_catalog):
    payload = {
        "name": "p",
        "experiment_type": "AB_TEST",
        "context": "MISSION",
        "variants": [
            {
                "key": "c",
                "name": "c",
                "strategy": strategy_catalog[("MISSION", "conservative")].pk,
                "params": "",
            }
        ],
    }
    assert_error_shape(
        staff_client.post("/api/v1/experiments/", payload, format="json"),
        400,
        attr="variants.0.params",
    )


# --- Impossible dates and overflowing numbers -------------------------------------------------

IMPOSSIBLE_DATE = "2026-02-30T10:00:00Z"


def _experiment_payload(strategy_catalog, **fields):
    return {
        "name": "dates",
        "experiment_type": "AB_TEST",
        "context": "MISSION",
        "variants": [
            {
                "key": key,
                "name": key,
                "strategy": strategy_catalog[("MISSION", strategy)].pk,
                "is_control": key == "c",
            }
            for key, strategy in (("c", "conservative"), ("t", "balanced"))
        ],
        **fields,
    }


@pytest.mark.parametrize(
    ("url", "payload", "attr"),
    [
        (
            "/api/v1/outcomes/",
            {
                "event_id": "e1",
                "context": "MISSION",
                "outcome_type": "MISSION_COMPLETED",
                "retention_score": 0.5,
                "occurred_at": IMPOSSIBLE_DATE,
            },
            "occurred_at",
        ),
        ("/api/v1/interactions/", {**INTERACTION, "occurred_at": IMPOSSIBLE_DATE}, "occurred_at"),
        (
            "/api/v1/interactions/",
            [INTERACTION, {**INTERACTION, "occurred_at": "2026-04-31T00:00:00Z"}],
            "1.occurred_at",
        ),
        (
            "/api/v1/me/skills/",
            {"skill": "x", "score": 0.5, "assessed_at": IMPOSSIBLE_DATE},
            "assessed_at",
        ),
        (
            "/api/v1/logs/personalization/",
            {
                "chapter_id": "c1",
                "response_time_ms": 5,
                "status": "SUCCESS",
                "request_timestamp": IMPOSSIBLE_DATE,
            },
            "request_timestamp",
        ),
        (
            "/api/v1/logs/translation/",
            {
                "chapter_id": "c1",
                "response_time_ms": 5,
                "status": "SUCCESS",
                "target_language": "de",
                "request_timestamp": "2025-13-01T00:00:00+02:00",
            },
            "request_timestamp",
        ),
    ],
)
def test_body_datetime__impossible_calendar_date__400_naming_it(user_client, url, payload, attr):
    assert_error_shape(user_client.post(url, payload, format="json"), 400, attr=attr)
    assert not Interaction.objects.exists()
    assert not SkillAssessment.objects.exists()


@pytest.mark.parametrize("field", ["start_date", "end_date"])
def test_experiment__impossible_calendar_date__400_naming_it(staff_client, strategy_catalog, field):
    payload = _experiment_payload(strategy_catalog, **{field: "2031-02-29T00:00:00Z"})
    response = staff_client.post("/api/v1/experiments/", payload, format="json")
    assert_error_shape(response, 400, attr=field)
    assert not Experiment.objects.exists()


def test_experiment_start__impossible_calendar_date__400(staff_client, strategy_catalog):
    from tests.experiments.factories import make_experiment

    experiment = make_experiment(start=False)
    response = staff_client.post(
        f"/api/v1/experiments/{experiment.pk}/start/",
        {"start_date": "2031-06-31T00:00:00Z"},
        format="json",
    )
    assert_error_shape(response, 400, attr="start_date")
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.DRAFT


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "1E400", "-2.5e+308"])
def test_body__number_overflowing_a_float__400_nothing_stored(user_client, literal):
    body = '{"type": "READING", "service": "lib", "metadata": {"a": [LITERAL]}}'.replace(
        "LITERAL", literal
    )
    response = user_client.post("/api/v1/interactions/", data=body, content_type="application/json")
    assert_error_shape(response, 400)
    assert not Interaction.objects.exists()


def test_body__underflowing_and_long_numbers__still_accepted(user_client):
    body = '{"type": "READING", "service": "lib", "metadata": {"tiny": 1e-999, "big": BIG}}'
    body = body.replace("BIG", "9" * 30)
    response = user_client.post("/api/v1/interactions/", data=body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert Interaction.objects.get().metadata == {"tiny": 0.0, "big": int("9" * 30)}
