import json

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
    # Saved by strategy_update, which records the change as the API's edits are recorded.
    event = AuditEvent.objects.get(action="STRATEGY_CHANGED")
    assert event.changes["default_params"]["new"]["duration"] == 35
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


def _strategy_form(strategy, **changes):
    form = {
        "context": strategy.context,
        "key": strategy.key,
        "name": strategy.name,
        "description": strategy.description,
        "default_params": json.dumps(strategy.default_params),
    }
    form.update({"is_baseline": "on"} if strategy.is_baseline else {})
    form.update({"is_active": "on"} if strategy.is_active else {})
    form.update(changes)
    return {name: value for name, value in form.items() if value is not None}


def test_admin_strategy__baseline_deactivated__form_error_and_decide_still_answers(
    admin_client, strategy_catalog, user_client
):
    baseline = Strategy.objects.get(context="MISSION", is_baseline=True)
    url = reverse("admin:experiments_strategy_change", args=[baseline.pk])

    for changes in ({"is_active": None}, {"is_baseline": None}):
        response = admin_client.post(url, _strategy_form(baseline, **changes))
        assert response.status_code == 200, changes
        assert "errornote" in response.content.decode()

    baseline.refresh_from_db()
    assert baseline.is_baseline
    assert baseline.is_active
    decided = user_client.post("/api/v1/decisions/", {"context": "MISSION"}, format="json")
    assert decided.status_code == 201, decided.content


def test_admin_strategy__another_baseline_named__takes_over_the_role(
    admin_client, strategy_catalog, staff_user
):
    balanced = Strategy.objects.get(context="MISSION", key="balanced")
    url = reverse("admin:experiments_strategy_change", args=[balanced.pk])

    response = admin_client.post(url, _strategy_form(balanced, is_baseline="on"))

    assert response.status_code == 302, response.content.decode()[:3000]
    baselines = Strategy.objects.filter(context="MISSION", is_baseline=True, is_active=True)
    assert list(baselines.values_list("key", flat=True)) == ["balanced"]
    event = AuditEvent.objects.get(action="STRATEGY_CHANGED", target_id=str(balanced.pk))
    assert event.actor == staff_user
    assert event.changes["is_baseline"] == {"old": False, "new": True}


def test_admin_baseline_strategy__cannot_be_deleted(admin_client, strategy_catalog):
    baseline = Strategy.objects.get(context="SESSION", is_baseline=True)
    response = admin_client.post(
        reverse("admin:experiments_strategy_changelist"),
        {"action": "delete_selected", "_selected_action": [baseline.pk], "post": "yes"},
    )
    assert response.status_code in (200, 403)
    assert Strategy.objects.filter(pk=baseline.pk, is_baseline=True, is_active=True).exists()
    delete_url = reverse("admin:experiments_strategy_delete", args=[baseline.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert Strategy.objects.filter(pk=baseline.pk).exists()


def _experiment_form(experiment, **changes):
    variants = list(experiment.variants.order_by("-is_control", "key"))
    form = {
        "name": experiment.name,
        "description": experiment.description,
        "experiment_type": experiment.experiment_type,
        "context": experiment.context,
        "traffic_percent": experiment.traffic_percent,
        "salt": experiment.salt,
        "min_participants": experiment.min_participants,
        "min_duration_days": experiment.min_duration_days,
        "primary_metric": experiment.primary_metric,
        "alpha": experiment.alpha,
        "algorithm": experiment.algorithm,
        "epsilon": experiment.epsilon,
        "min_arm_share": experiment.min_arm_share,
        "analysis": experiment.analysis,
        "sequential_tuning": experiment.sequential_tuning,
        "engine": experiment.engine,
        "prior_mean": "",
        "prior_sd": "",
        "targeting": "[]",
        "namespace_start": experiment.namespace_start,
        "namespace_end": experiment.namespace_end,
        "variants-TOTAL_FORMS": len(variants),
        "variants-INITIAL_FORMS": len(variants),
        "variants-MIN_NUM_FORMS": 0,
        "variants-MAX_NUM_FORMS": 1000,
    }
    if experiment.cuped:
        form["cuped"] = "on"
    for index, variant in enumerate(variants):
        prefix = f"variants-{index}-"
        form.update(
            {
                f"{prefix}id": variant.pk,
                f"{prefix}experiment": experiment.pk,
                f"{prefix}key": variant.key,
                f"{prefix}name": variant.name,
                f"{prefix}strategy": variant.strategy_id,
                f"{prefix}params": json.dumps(variant.params),
                f"{prefix}weight": variant.weight,
            }
        )
        if variant.is_control:
            form[f"{prefix}is_control"] = "on"
    form.update(changes)
    return form


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ('{"duration": 999}', "duration: must be between 5 and 240"),
        ('{"pace": "fast"}', "pace: unknown parameter for MISSION"),
        ("5", "Expected a dictionary"),
    ],
)
def test_admin_variant_inline__invalid_params__form_error_nothing_stored(
    admin_client, strategy_catalog, params, message
):
    draft = make_experiment(start=False)
    url = reverse("admin:experiments_experiment_change", args=[draft.pk])

    response = admin_client.post(url, _experiment_form(draft, **{"variants-1-params": params}))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert [v.params for v in draft.variants.all()] == [{}, {}]


def test_admin_variant_inline__strategy_of_another_context__form_error(
    admin_client, strategy_catalog
):
    draft = make_experiment(start=False)
    foreign = Strategy.objects.get(context="SESSION", key="balanced")
    url = reverse("admin:experiments_experiment_change", args=[draft.pk])

    response = admin_client.post(
        url, _experiment_form(draft, **{"variants-1-strategy": foreign.pk})
    )

    assert response.status_code == 200
    assert "belongs to SESSION" in response.content.decode()
    assert not draft.variants.filter(strategy=foreign).exists()


def test_admin_draft_experiment__valid_edit__saved_through_the_service(
    admin_client, strategy_catalog, staff_user
):
    draft = make_experiment(start=False)
    url = reverse("admin:experiments_experiment_change", args=[draft.pk])
    form = _experiment_form(
        draft, description="Longer missions", **{"variants-1-params": '{"duration": 60}'}
    )

    response = admin_client.post(url, form)

    assert response.status_code == 302, response.content.decode()[:3000]
    draft.refresh_from_db()
    assert draft.description == "Longer missions"
    assert draft.variants.get(key="treatment").params == {"duration": 60}
    event = AuditEvent.objects.get(action="EXPERIMENT_UPDATED")
    assert event.actor == staff_user


def test_admin_experiment_after_draft__not_editable(admin_client, strategy_catalog):
    active = make_experiment()
    url = reverse("admin:experiments_experiment_change", args=[active.pk])

    response = admin_client.post(url, _experiment_form(active, description="Changed later"))

    assert response.status_code == 403
    active.refresh_from_db()
    assert active.description == ""
    assert admin_client.get(url).status_code == 200


def test_admin_results__method_engine_cuped_and_why(admin_client, strategy_catalog):
    """§8 / §5.3: the results page says how the results were computed, what CUPED removed,
    and why no winner is declared."""
    import datetime

    from django.utils import timezone

    from experiments.services.decisions import decision_make
    from outcomes.services.evaluation import experiment_evaluate
    from outcomes.services.ingest import outcome_record_many
    from tests.personalization.factories import UserFactory

    experiment = make_experiment(context="MISSION", engine="BAYESIAN")
    for index in range(30):
        user = UserFactory()
        level = 0.3 + (index % 7) / 20
        outcome_record_many(
            user=user,
            items=[
                {
                    "event_id": f"pre-{index}",
                    "context": "CONTENT",
                    "outcome_type": "CONTENT_ENGAGED",
                    "occurred_at": timezone.now() - datetime.timedelta(days=3),
                    "retention_score": level,
                }
            ],
        )
        decision = decision_make(user=user, context="MISSION").decision
        outcome_record_many(
            user=user,
            items=[
                {
                    "event_id": f"post-{index}",
                    "decision": decision.pk,
                    "outcome_type": "MISSION_COMPLETED",
                    "retention_score": level + 0.01 * (index % 3),
                }
            ],
        )
    experiment_evaluate(experiment=experiment)
    page = admin_client.get(f"/admin/experiments/experiment/{experiment.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Bayesian Gaussian effect model" in html
    assert "variance reduced by" in html
    assert "Chance to win" in html
    assert 'id="winner-reason"' in html
