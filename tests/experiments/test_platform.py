"""Targeting and namespaces on experiments, holdouts, and shipping a winner into a rollout
(DESIGN.md §3, §4.1, §7): the API and services."""

import pytest

from experiments.models import Experiment, Holdout, Rollout
from logs.models import AuditEvent
from tests.conftest import assert_error_shape
from tests.experiments.factories import make_experiment

URL = "/api/v1/experiments/"


def _body(catalog, **fields):
    return {
        "name": fields.pop("name", "Pacing"),
        "experiment_type": "AB_TEST",
        "context": "MISSION",
        "variants": [
            {
                "key": "control",
                "name": "Control",
                "strategy": catalog[("MISSION", "conservative")].pk,
                "is_control": True,
            },
            {
                "key": "treatment",
                "name": "Treatment",
                "strategy": catalog[("MISSION", "balanced")].pk,
            },
        ],
        **fields,
    }


def test_targeting__stored_with_its_summary(staff_client, strategy_catalog):
    rules = [
        {"attr": "software_level", "op": "eq", "value": "BEGINNER"},
        {"attr": "preferred_language", "op": "in", "value": ["en", "ur"]},
    ]
    response = staff_client.post(URL, _body(strategy_catalog, targeting=rules), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["targeting"] == rules
    assert body["targeting_summary"] == "software level is BEGINNER and language in [en, ur]"
    assert (body["namespace_start"], body["namespace_end"]) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("targeting", "attr"),
    [
        ([{"attr": "software_level", "op": "like", "value": "B"}], "targeting.0.op"),
        (
            [
                {"attr": "software_level", "op": "eq", "value": "BEGINNER"},
                {"attr": "shoe_size", "op": "eq", "value": 3},
            ],
            "targeting.1.attr",
        ),
        ([{"attr": "days_since_joined", "op": "gte", "value": "x"}], "targeting.0.value"),
        ("everyone", "targeting"),
    ],
)
def test_targeting__invalid_rule__400_naming_its_index(
    staff_client, strategy_catalog, targeting, attr
):
    response = staff_client.post(URL, _body(strategy_catalog, targeting=targeting), format="json")
    assert_error_shape(response, 400, attr=attr)
    assert not Experiment.objects.exists()


def test_namespace__empty_range__400(staff_client, strategy_catalog):
    response = staff_client.post(
        URL, _body(strategy_catalog, namespace_start=0.6, namespace_end=0.4), format="json"
    )
    assert_error_shape(response, 400, attr="namespace_end")


def test_namespaces__disjoint_experiments_run_side_by_side__overlap_is_409(
    staff_client, strategy_catalog
):
    first = make_experiment(name="Left", namespace_start=0.0, namespace_end=0.5)
    second = make_experiment(name="Right", namespace_start=0.5, namespace_end=1.0)
    assert {first.status, second.status} == {"ACTIVE"}
    third = make_experiment(name="Middle", namespace_start=0.4, namespace_end=0.6, start=False)
    response = staff_client.post(f"{URL}{third.pk}/start/", {}, format="json")
    body = assert_error_shape(response, 409, code="namespace_overlap")
    assert "Left" in body["errors"][0]["detail"]
    third.refresh_from_db()
    assert third.status == "DRAFT"


# --- Holdouts -----------------------------------------------------------------------------


def test_holdouts__staff_create_and_list__learners_403(staff_client, user_client, db):
    response = staff_client.post(
        "/api/v1/holdouts/", {"name": "Global 5%", "percent": 5}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["contexts"] == []
    assert body["is_active"] is True
    assert body["started_at"] is not None
    assert staff_client.get("/api/v1/holdouts/").json()["count"] == 1
    assert_error_shape(user_client.get("/api/v1/holdouts/"), 403)
    assert AuditEvent.objects.filter(action="HOLDOUT_CREATED").count() == 1


@pytest.mark.parametrize(
    ("data", "attr"),
    [
        ({"name": "h", "percent": 25}, "percent"),
        ({"name": "h", "contexts": ["CHAT"]}, "contexts.0"),
    ],
)
def test_holdouts__invalid__400(staff_client, db, data, attr):
    assert_error_shape(staff_client.post("/api/v1/holdouts/", data, format="json"), 400, attr=attr)


def test_holdouts__active_percent_or_salt_change__409__inactive_may_change(staff_client, db):
    holdout = Holdout.objects.create(name="H", percent=5, started_at=None)
    url = f"/api/v1/holdouts/{holdout.pk}/"
    assert_error_shape(
        staff_client.patch(url, {"percent": 10}, format="json"), 409, code="holdout_active"
    )
    assert_error_shape(staff_client.patch(url, {"salt": "new"}, format="json"), 409)
    renamed = staff_client.patch(url, {"name": "H2", "contexts": ["MISSION"]}, format="json")
    assert renamed.status_code == 200, renamed.content
    staff_client.patch(url, {"is_active": False}, format="json")
    changed = staff_client.patch(url, {"percent": 10}, format="json")
    assert changed.status_code == 200, changed.content
    holdout.refresh_from_db()
    assert (holdout.percent, holdout.name, holdout.contexts) == (10, "H2", ["MISSION"])


# --- Shipping -----------------------------------------------------------------------------


def _completed_with_winner(name="Shipped"):
    experiment = make_experiment(name=name)
    experiment.status = Experiment.Status.COMPLETED
    experiment.winning_variant = experiment.variants.get(key="treatment")
    experiment.save()
    return experiment


def test_ship__winner_becomes_the_contexts_rollout__replacing_the_previous(
    staff_client, strategy_catalog
):
    first = _completed_with_winner("First")
    response = staff_client.post(f"{URL}{first.pk}/ship/", {}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["context"], body["strategy"], body["variant"]) == (
        "MISSION",
        "balanced",
        "treatment",
    )
    first.refresh_from_db()
    assert first.shipped_at is not None
    second = _completed_with_winner("Second")
    staff_client.post(f"{URL}{second.pk}/ship/", {"variant": "control"}, format="json")
    assert Rollout.objects.filter(is_active=True).count() == 1
    active = Rollout.objects.get(is_active=True)
    assert (active.experiment_id, active.strategy.key) == (second.pk, "conservative")
    assert AuditEvent.objects.filter(action="EXPERIMENT_SHIPPED").count() == 2
    deactivated = staff_client.post(f"/api/v1/rollouts/{active.pk}/deactivate/", {}, format="json")
    assert deactivated.json()["is_active"] is False
    assert not Rollout.objects.filter(is_active=True).exists()
    assert staff_client.get("/api/v1/rollouts/").json()["count"] == 2


def test_rollout_deactivate__audited_once__repeat_changes_nothing(
    staff_client, staff_user, strategy_catalog
):
    experiment = _completed_with_winner("Deactivated")
    shipped = staff_client.post(f"{URL}{experiment.pk}/ship/", {}, format="json").json()
    url = f"/api/v1/rollouts/{shipped['id']}/deactivate/"

    response = staff_client.post(url, {}, format="json")

    assert response.status_code == 200, response.content
    event = AuditEvent.objects.get(action="ROLLOUT_DEACTIVATED")
    assert (event.actor, event.target_type, event.target_id) == (
        staff_user,
        "experiments.rollout",
        str(shipped["id"]),
    )
    assert event.changes == {"is_active": {"old": True, "new": False}}
    assert staff_client.post(url, {}, format="json").json()["is_active"] is False
    assert AuditEvent.objects.filter(action="ROLLOUT_DEACTIVATED").count() == 1


def test_ship__without_winner__409__unknown_variant__404(staff_client, strategy_catalog):
    running = make_experiment(name="Running")
    assert_error_shape(
        staff_client.post(f"{URL}{running.pk}/ship/", {}, format="json"), 409, code="no_winner"
    )
    assert_error_shape(
        staff_client.post(f"{URL}{running.pk}/ship/", {"variant": "nope"}, format="json"),
        404,
        attr="variant",
    )
    draft = make_experiment(name="Draft", start=False)
    assert_error_shape(
        staff_client.post(f"{URL}{draft.pk}/ship/", {"variant": "control"}, format="json"), 409
    )
    assert not Rollout.objects.exists()


def test_admin__experiment_page_shows_the_namespace_bar_and_who_takes_part(
    admin_client, strategy_catalog
):
    from django.urls import reverse

    make_experiment(name="Left half", namespace_start=0.0, namespace_end=0.5)
    right = make_experiment(
        name="Right half",
        namespace_start=0.5,
        namespace_end=1.0,
        targeting=[{"attr": "software_level", "op": "eq", "value": "BEGINNER"}],
        start=False,
    )
    page = admin_client.get(reverse("admin:experiments_experiment_change", args=[right.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'aria-label="Namespace of the context"' in html
    assert "Left half (50.0 %)" in html
    assert "Right half (draft) (50.0 %)" in html
    assert "software level is BEGINNER" in html


def test_admin__holdout_page_says_what_personalization_is_worth(admin_client, db):
    from django.urls import reverse

    holdout = Holdout.objects.create(
        name="H",
        percent=5,
        results={
            "holdout": {"learners": 40, "mean": 0.45},
            "everyone_else": {"learners": 760, "mean": 0.5},
            "difference": 0.05,
            "ci_lower": 0.01,
            "ci_upper": 0.09,
            "significant": True,
        },
    )
    page = admin_client.get(reverse("admin:experiments_holdout_change", args=[holdout.pk]))
    assert page.status_code == 200
    assert (
        "+0.05 mean reward [+0.0100, +0.0900], significant: 760 learners at 0.5 against 40 "
        "held out at 0.45" in page.content.decode()
    )


def test_admin__ship_action_makes_the_rollout(admin_client, strategy_catalog):
    from django.urls import reverse

    experiment = make_experiment(name="To ship")
    experiment.status = Experiment.Status.COMPLETED
    experiment.winning_variant = experiment.variants.get(key="treatment")
    experiment.save()
    response = admin_client.post(
        reverse("admin:experiments_experiment_changelist"),
        {"action": "ship_winners", "_selected_action": [experiment.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Balanced now serves Mission" in response.content.decode()
    assert Rollout.objects.get(is_active=True).experiment_id == experiment.pk
