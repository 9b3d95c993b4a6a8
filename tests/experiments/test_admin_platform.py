"""The admin keeps the platform's rules (DESIGN.md §8, §3, §4.1): targeting rules are checked
as the API checks them, and an active holdout keeps its percent; a refused change is a form
error and stores nothing."""

import json

import pytest
from django.urls import reverse

from experiments.models import Experiment, Holdout
from logs.models import AuditEvent


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _new_experiment_form(catalog, targeting):
    return {
        "name": "Targeted pacing",
        "description": "",
        "experiment_type": "AB_TEST",
        "context": "MISSION",
        "traffic_percent": "100",
        "salt": "targeted-pacing",
        "min_participants": "20",
        "min_duration_days": "14",
        "primary_metric": "REWARD",
        "alpha": "0.05",
        "algorithm": "THOMPSON",
        "epsilon": "0.1",
        "min_arm_share": "0.01",
        "analysis": "SEQUENTIAL",
        "sequential_tuning": "5000",
        "engine": "FREQUENTIST",
        "cuped": "on",
        "prior_mean": "",
        "prior_sd": "",
        "targeting": json.dumps(targeting),
        "namespace_start": "0",
        "namespace_end": "1",
        "variants-TOTAL_FORMS": "2",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "50",
        "variants-0-key": "control",
        "variants-0-name": "Control",
        "variants-0-strategy": catalog[("MISSION", "conservative")].pk,
        "variants-0-params": "{}",
        "variants-0-weight": "1",
        "variants-0-is_control": "on",
        "variants-1-key": "treatment",
        "variants-1-name": "Treatment",
        "variants-1-strategy": catalog[("MISSION", "balanced")].pk,
        "variants-1-params": "{}",
        "variants-1-weight": "1",
    }


@pytest.mark.parametrize(
    ("targeting", "message"),
    [
        ([{"attr": "software_level", "op": "like", "value": "B"}], "Unknown operator &#x27;like"),
        ([{"attr": "shoe_size", "op": "eq", "value": 3}], "Unknown attribute &#x27;shoe_size"),
        (
            [{"attr": "days_since_joined", "op": "gte", "value": "x"}],
            "gte takes a number",
        ),
    ],
)
def test_admin_experiment_add__invalid_targeting_rule__form_error_nothing_saved(
    admin_client, strategy_catalog, targeting, message
):
    response = admin_client.post(
        reverse("admin:experiments_experiment_add"),
        _new_experiment_form(strategy_catalog, targeting),
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "errornote" in html
    assert 'id="id_targeting_error"' in html
    assert html.count(message) == 1  # at the targeting field, once
    assert not Experiment.objects.exists()
    assert not AuditEvent.objects.filter(action="EXPERIMENT_CREATED").exists()


def test_admin_experiment_add__valid_targeting__saved_with_its_rules(
    admin_client, strategy_catalog
):
    rules = [{"attr": "software_level", "op": "eq", "value": "BEGINNER"}]

    response = admin_client.post(
        reverse("admin:experiments_experiment_add"), _new_experiment_form(strategy_catalog, rules)
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    assert Experiment.objects.get(name="Targeted pacing").targeting == rules


def _holdout_form(holdout, **changes):
    form = {
        "name": holdout.name,
        "contexts": holdout.contexts,
        "percent": holdout.percent,
        "salt": holdout.salt,
    }
    if holdout.is_active:
        form["is_active"] = "on"
    form.update(changes)
    return form


def test_admin_holdout__active_percent_change__form_error_nothing_saved(admin_client, db):
    holdout = Holdout.objects.create(name="Five percent", percent=5, salt="h1")
    url = reverse("admin:experiments_holdout_change", args=[holdout.pk])

    response = admin_client.post(url, _holdout_form(holdout, percent=10))

    assert response.status_code == 200
    html = response.content.decode()
    assert "errornote" in html
    assert "is active; changing its percent would move learners" in html
    holdout.refresh_from_db()
    assert (holdout.percent, holdout.salt, holdout.is_active) == (5, "h1", True)
    assert not AuditEvent.objects.filter(action="HOLDOUT_CHANGED").exists()
    # The same form without the percent change saves, through the service.
    renamed = admin_client.post(url, _holdout_form(holdout, name="Five percent, renamed"))
    assert renamed.status_code == 302, renamed.content.decode()[:3000]
    holdout.refresh_from_db()
    assert (holdout.name, holdout.percent) == ("Five percent, renamed", 5)
    assert AuditEvent.objects.filter(action="HOLDOUT_CHANGED").count() == 1
