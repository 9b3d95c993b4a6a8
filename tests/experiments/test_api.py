import pytest

from experiments.models import Decision, Experiment, Strategy, StrategyConfig
from tests.conftest import assert_error_shape
from tests.experiments.factories import make_experiment


def _experiment_payload(strategies, **overrides):
    payload = {
        "name": "Pacing test",
        "experiment_type": "AB_TEST",
        "context": "MISSION",
        "variants": [
            {
                "key": "control",
                "name": "Control",
                "strategy": strategies[("MISSION", "conservative")].pk,
                "is_control": True,
            },
            {
                "key": "treatment",
                "name": "Treatment",
                "strategy": strategies[("MISSION", "balanced")].pk,
                "params": {"duration": 25},
            },
        ],
    }
    payload.update(overrides)
    return payload


# --- strategies/ ----------------------------------------------------------------------------


def test_strategies__readable_by_everyone(user_client, strategy_catalog):
    body = user_client.get("/api/v1/strategies/", {"context": "MISSION"}).json()
    assert body["count"] == 4
    assert {row["key"] for row in body["results"]} == {
        "pattern_heavy",
        "prediction_heavy",
        "balanced",
        "conservative",
    }


def test_strategies__write_staff_only(user_client, staff_client, strategy_catalog):
    strategy = strategy_catalog[("MISSION", "balanced")]
    assert_error_shape(user_client.patch(f"/api/v1/strategies/{strategy.pk}/", {"name": "X"}), 403)
    response = staff_client.patch(
        f"/api/v1/strategies/{strategy.pk}/", {"name": "Balanced v2"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Balanced v2"


def test_strategies__bad_params__400_names_the_field(staff_client, strategy_catalog):
    strategy = strategy_catalog[("MISSION", "balanced")]
    response = staff_client.patch(
        f"/api/v1/strategies/{strategy.pk}/",
        {"default_params": {**strategy.default_params, "duration": 1000}},
        format="json",
    )
    assert_error_shape(response, 400, attr="default_params.duration")


def test_strategies__create(staff_client, strategy_catalog):
    response = staff_client.post(
        "/api/v1/strategies/",
        {
            "context": "SESSION",
            "key": "sprint",
            "name": "Sprint",
            "default_params": {
                "break_timing": 15,
                "content_sequence": "interleaved",
                "intensity_modulation": "dynamic",
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert Strategy.objects.filter(context="SESSION").count() == 5


# --- configs/ -------------------------------------------------------------------------------


@pytest.fixture
def configs(strategy_catalog, user_client):
    user_client.post("/api/v1/decisions/", {"context": "MISSION"}, format="json")
    return StrategyConfig.objects.filter(context="MISSION")


def test_configs__own_list_and_patch(user_client, user, configs):
    body = user_client.get("/api/v1/configs/", {"context": "MISSION"}).json()
    assert body["count"] == 4
    balanced = configs.get(strategy__key="balanced")
    response = user_client.patch(
        f"/api/v1/configs/{balanced.pk}/",
        {"params": {"duration": 60}, "is_active": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    balanced.refresh_from_db()
    assert balanced.params == {"duration": 60}
    assert balanced.is_active
    assert configs.filter(is_active=True).count() == 1


def test_configs__bad_params__400(user_client, configs):
    config = configs.first()
    response = user_client.patch(
        f"/api/v1/configs/{config.pk}/", {"params": {"duration": "long"}}, format="json"
    )
    assert_error_shape(response, 400, attr="params.duration")


def test_configs__another_users__404(other_client, configs):
    config = configs.first()
    assert_error_shape(other_client.get(f"/api/v1/configs/{config.pk}/"), 404)
    assert_error_shape(
        other_client.patch(f"/api/v1/configs/{config.pk}/", {"is_active": True}, format="json"), 404
    )


# --- experiments/ ---------------------------------------------------------------------------


def test_experiments__staff_creates_with_nested_variants(staff_client, strategy_catalog):
    response = staff_client.post(
        "/api/v1/experiments/", _experiment_payload(strategy_catalog), format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "DRAFT"
    assert [v["key"] for v in body["variants"]] == ["control", "treatment"]
    assert body["variants"][1]["params"] == {"duration": 25}


def test_experiments__ordinary_user__403(user_client, strategy_catalog):
    assert_error_shape(user_client.get("/api/v1/experiments/"), 403)
    response = user_client.post(
        "/api/v1/experiments/", _experiment_payload(strategy_catalog), format="json"
    )
    assert_error_shape(response, 403)


@pytest.mark.parametrize(
    ("change", "attr"),
    [
        ({"context": "LIBRARY"}, "context"),
        ({"traffic_percent": 150}, "traffic_percent"),
        ({"traffic_percent": -1}, "traffic_percent"),
        ({"epsilon": 1.5}, "epsilon"),
        ({"experiment_type": "SPLIT"}, "experiment_type"),
    ],
)
def test_experiments__bad_input__400(staff_client, strategy_catalog, change, attr):
    response = staff_client.post(
        "/api/v1/experiments/", _experiment_payload(strategy_catalog, **change), format="json"
    )
    assert_error_shape(response, 400, attr=attr)
    assert not Experiment.objects.exists()


def test_experiments__variant_from_another_context__400(staff_client, strategy_catalog):
    payload = _experiment_payload(strategy_catalog)
    payload["variants"][1]["strategy"] = strategy_catalog[("SESSION", "balanced")].pk
    response = staff_client.post("/api/v1/experiments/", payload, format="json")
    assert_error_shape(response, 400, attr="variants.1.strategy")


def test_experiments__negative_weight__400(staff_client, strategy_catalog):
    payload = _experiment_payload(strategy_catalog)
    payload["variants"][0]["weight"] = -1
    assert_error_shape(
        staff_client.post("/api/v1/experiments/", payload, format="json"),
        400,
        attr="variants.0.weight",
    )


def test_experiments__all_zero_weights__400(staff_client, strategy_catalog):
    payload = _experiment_payload(strategy_catalog)
    for variant in payload["variants"]:
        variant["weight"] = 0
    assert_error_shape(
        staff_client.post("/api/v1/experiments/", payload, format="json"), 400, attr="variants"
    )


def test_experiments__lifecycle_routes(staff_client, strategy_catalog):
    created = staff_client.post(
        "/api/v1/experiments/", _experiment_payload(strategy_catalog), format="json"
    ).json()
    url = f"/api/v1/experiments/{created['id']}/"
    started = staff_client.post(f"{url}start/", {}, format="json")
    assert started.status_code == 200, started.content
    assert started.json()["status"] == "ACTIVE"

    assert_error_shape(staff_client.patch(url, {"description": "late"}, format="json"), 409)
    assert_error_shape(staff_client.post(f"{url}start/", {}, format="json"), 409)
    assert_error_shape(staff_client.post(f"{url}complete/", {}, format="json"), 409)
    completed = staff_client.post(f"{url}complete/", {"force": True}, format="json")
    assert completed.json()["status"] == "COMPLETED"
    assert_error_shape(staff_client.post(f"{url}cancel/", {}, format="json"), 409)


def test_experiments__patch_in_draft(staff_client, strategy_catalog):
    created = staff_client.post(
        "/api/v1/experiments/", _experiment_payload(strategy_catalog), format="json"
    ).json()
    response = staff_client.patch(
        f"/api/v1/experiments/{created['id']}/", {"traffic_percent": 40}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["traffic_percent"] == 40.0


def test_experiments__second_active_in_context__409(staff_client, strategy_catalog):
    make_experiment(name="First")
    created = staff_client.post(
        "/api/v1/experiments/", _experiment_payload(strategy_catalog), format="json"
    ).json()
    response = staff_client.post(f"/api/v1/experiments/{created['id']}/start/", {}, format="json")
    body = assert_error_shape(response, 409)
    assert "First" in body["errors"][0]["detail"]


# --- decisions/ -----------------------------------------------------------------------------


def test_decisions__answer_shape(user_client, strategy_catalog):
    experiment = make_experiment()
    response = user_client.post("/api/v1/decisions/", {"context": "MISSION"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "context",
        "strategy",
        "params",
        "source",
        "experiment",
        "variant",
        "propensity",
        "personalization_applied",
    }
    assert set(body["strategy"]) == {"key", "name"}
    assert body["experiment"] == experiment.pk
    assert body["variant"] in {"control", "treatment"}
    assert body["source"] == "EXPERIMENT"
    assert Decision.objects.get(pk=body["id"]).params == body["params"]


@pytest.mark.parametrize("payload", [{"context": "LIBRARY"}, {}, {"context": "MISSION", "x": 1}])
def test_decisions__bad_input__400(user_client, strategy_catalog, payload):
    attr = "x" if "x" in payload else "context"
    assert_error_shape(
        user_client.post("/api/v1/decisions/", payload, format="json"), 400, attr=attr
    )


def test_decisions__no_active_strategy__409(user_client, db):
    response = user_client.post("/api/v1/decisions/", {"context": "SESSION"}, format="json")
    body = assert_error_shape(response, 409, code="no_active_strategy")
    assert "SESSION" in body["errors"][0]["detail"]


def test_decisions__own_list_other_404(user_client, other_client, strategy_catalog):
    decision_id = user_client.post(
        "/api/v1/decisions/", {"context": "MISSION"}, format="json"
    ).json()["id"]
    assert [d["id"] for d in user_client.get("/api/v1/decisions/").json()["results"]] == [
        decision_id
    ]
    assert other_client.get("/api/v1/decisions/").json()["count"] == 0
    assert_error_shape(other_client.get(f"/api/v1/decisions/{decision_id}/"), 404)


def test_decisions__on_behalf_of(service_client, user, strategy_catalog):
    response = service_client.post(
        "/api/v1/decisions/",
        {"context": "CONTENT"},
        format="json",
        HTTP_X_ON_BEHALF_OF=f"id:{user.pk}",
    )
    assert response.status_code == 201
    assert Decision.objects.get().user == user
