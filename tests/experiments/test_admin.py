import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from experiments.catalog import context_catalog
from experiments.models import Experiment, Strategy
from logs.models import AuditEvent
from tests.experiments.factories import make_experiment


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _action(admin_client, action, experiments):
    return admin_client.post(
        reverse("admin:experiments_experiment_changelist"),
        {"action": action, "_selected_action": [e.pk for e in experiments]},
        follow=True,
    )


def test_admin_start_action__calls_the_service(admin_client, strategy_catalog, staff_user):
    experiment = make_experiment(start=False)
    response = _action(admin_client, "start_experiments", [experiment])
    experiment.refresh_from_db()
    assert experiment.status == "ACTIVE"
    assert AuditEvent.objects.get(action="EXPERIMENT_STARTED").actor == staff_user
    assert "start done" in " ".join(str(m) for m in get_messages(response.wsgi_request))


def test_admin_start_action__shows_the_services_error(admin_client, strategy_catalog):
    make_experiment(name="Already running")
    waiting = make_experiment(name="Waiting", start=False)
    response = _action(admin_client, "start_experiments", [waiting])
    text = " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert "Already running" in text
    waiting.refresh_from_db()
    assert waiting.status == "DRAFT"


def test_admin_complete_and_force_actions(admin_client, strategy_catalog):
    experiment = make_experiment()
    response = _action(admin_client, "complete_experiments", [experiment])
    assert "not ready" in " ".join(str(m) for m in get_messages(response.wsgi_request))
    _action(admin_client, "force_complete_experiments", [experiment])
    experiment.refresh_from_db()
    assert experiment.status == "COMPLETED"


def test_admin_cancel_action(admin_client, strategy_catalog):
    experiment = make_experiment()
    _action(admin_client, "cancel_experiments", [experiment])
    experiment.refresh_from_db()
    assert experiment.status == "CANCELLED"


def test_admin_variants__read_only_after_draft(admin_client, strategy_catalog):
    draft = make_experiment(start=False, name="Draft")
    active = make_experiment(name="Active", context="SESSION")
    draft_page = admin_client.get(reverse("admin:experiments_experiment_change", args=[draft.pk]))
    active_page = admin_client.get(reverse("admin:experiments_experiment_change", args=[active.pk]))
    assert 'name="variants-0-weight"' in draft_page.content.decode()
    assert 'name="variants-0-weight"' not in active_page.content.decode()


def test_admin_strategy_edit__validated_audited_and_cache_dropped(admin_client, strategy_catalog):
    strategy = Strategy.objects.get(context="MISSION", key="balanced")
    context_catalog("MISSION")
    url = reverse("admin:experiments_strategy_change", args=[strategy.pk])
    form = {
        "context": "MISSION",
        "key": "balanced",
        "name": "Balanced",
        "description": "",
        "default_params": (
            '{"timing": "flexible", "duration": 999, "objectives": 3, "difficulty": "medium"}'
        ),
        "is_active": "on",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert "duration: must be between 5 and 240" in response.content.decode()

    form["default_params"] = form["default_params"].replace("999", "35")
    assert admin_client.post(url, form).status_code == 302
    assert (
        AuditEvent.objects.get(action="ADMIN_CHANGED").changes["default_params"]["new"]["duration"]
        == 35
    )
    cached = context_catalog("MISSION")
    assert (
        next(s for s in cached.strategies if s.key == "balanced").default_params["duration"] == 35
    )


def test_admin_read_only_pages(admin_client, strategy_catalog, user):
    from experiments.services.decisions import decision_make

    decision_make(user=user, context="MISSION")
    for name in ["strategyconfig", "decision", "assignment", "banditweightsnapshot"]:
        assert admin_client.get(reverse(f"admin:experiments_{name}_changelist")).status_code == 200
        assert admin_client.get(reverse(f"admin:experiments_{name}_add")).status_code == 403
    assert Experiment.objects.count() == 0
