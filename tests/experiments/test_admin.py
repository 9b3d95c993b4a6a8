import json
import re

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


RAW_FLOAT = re.compile(r"\d\.\d{6,}")


def _visible_text(html):
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def _field_names(html):
    """The fields of the experiment's fieldsets (not of the variant rows)."""
    classes = re.findall(
        r'class="(?:form-row|fieldBox)([^"]*)"', html.split('id="variants-group"')[0]
    )
    return {name for attribute in classes for name in re.findall(r"field-(\w+)", attribute)}


def test_admin_experiment_fieldsets__bandit_fields_only_on_bandits(admin_client, strategy_catalog):
    ab = make_experiment(name="Plain A/B", start=False)
    bandit = make_experiment(
        name="Bandit", experiment_type=Experiment.Type.MULTI_ARMED_BANDIT, start=False
    )

    ab_page = admin_client.get(reverse("admin:experiments_experiment_change", args=[ab.pk]))
    bandit_page = admin_client.get(reverse("admin:experiments_experiment_change", args=[bandit.pk]))
    add_page = admin_client.get(reverse("admin:experiments_experiment_add"))

    bandit_only = {"algorithm", "epsilon", "min_arm_share", "burn_in"}
    ab_fields = _field_names(ab_page.content.decode())
    assert not bandit_only & ab_fields
    assert {"cuped", "alpha", "traffic_percent"} <= ab_fields
    assert "variant_metrics" not in ab_fields
    bandit_fields = _field_names(bandit_page.content.decode())
    assert bandit_only <= bandit_fields
    assert "cuped" not in bandit_fields  # bandits are compared within allocation periods
    assert bandit_only <= _field_names(add_page.content.decode())


def test_admin_experiment_ab_edit__hidden_bandit_fields_keep_their_values(
    admin_client, strategy_catalog
):
    draft = make_experiment(name="Keeps epsilon", start=False, epsilon=0.2)
    url = reverse("admin:experiments_experiment_change", args=[draft.pk])
    page = admin_client.get(url)
    form = {
        "name": draft.name,
        "description": "Edited",
        "experiment_type": draft.experiment_type,
        "context": draft.context,
        "traffic_percent": "100",
        "salt": draft.salt,
        "min_participants": "20",
        "min_duration_days": "14",
        "primary_metric": "REWARD",
        "alpha": "0.05",
        "targeting": "[]",
        "namespace_start": "0",
        "namespace_end": "1",
        "analysis": "SEQUENTIAL",
        "sequential_tuning": "5000",
        "engine": "FREQUENTIST",
        "cuped": "on",
        "variants-TOTAL_FORMS": "0",
        "variants-INITIAL_FORMS": "0",
    }
    assert page.status_code == 200
    response = admin_client.post(url, form)
    assert response.status_code == 302, _visible_text(response.content.decode())[:2000]
    draft.refresh_from_db()
    assert draft.description == "Edited"
    assert draft.epsilon == 0.2
    assert draft.variants.count() == 2


def test_admin_titles__names_not_ids(admin_client, strategy_catalog):
    from experiments.services.decisions import decision_make
    from tests.personalization.factories import UserFactory

    experiment = make_experiment(name="Pacing test")
    learner = UserFactory(display_name="Jane Doe")
    decision = decision_make(user=learner, context="MISSION").decision

    decisions = admin_client.get(reverse("admin:experiments_decision_changelist")).content
    assignments = admin_client.get(reverse("admin:experiments_assignment_changelist")).content
    config_page = admin_client.get(
        reverse("admin:experiments_strategyconfig_change", args=[decision.config_id])
    ).content.decode()

    strategy = decision.strategy.name
    assert f"{strategy} for Jane Doe · Mission" in decisions.decode()
    assert "Jane Doe in Pacing test: " in assignments.decode()
    assert f"<h2>Jane Doe · Mission · {strategy}</h2>" in config_page
    assert f"{learner.pk} · MISSION" not in config_page
    assert experiment.name in decisions.decode()


def test_admin_results__tables_in_words_no_json_no_raw_floats(admin_client, strategy_catalog):
    experiment = make_experiment(name="Formatted")
    experiment.variant_metrics = {
        "primary_metric": "REWARD",
        "variants": [
            {
                "key": "control",
                "name": "Control",
                "is_control": True,
                "weight": 1.0,
                "assigned": 1652,
                "with_outcomes": 1600,
                "mean": 0.8000000000000002,
                "variance": 0.0123456789,
            },
            {
                "key": "treatment",
                "name": "Treatment",
                "is_control": False,
                "weight": 1.0,
                "assigned": 1650,
                "with_outcomes": 1601,
                "mean": 0.8234567891,
                "variance": 0.0123456789,
            },
        ],
        "comparisons": [
            {
                "variant": "treatment",
                "difference": 0.0234567891,
                "ci_lower": 0.0111111111,
                "ci_upper": 0.0358024691,
                "p_value": 0.0000000000000011630261408257713,
                "adjusted_p_value": 0.0000000000000011630261408257713,
                "relative_lift": 0.0293209864,
                "lift_ci_lower": 0.0138888889,
                "lift_ci_upper": 0.0447530864,
                "chance_to_beat_control": 0.9995,
            },
        ],
        "sample_ratio": {"p_value": 0.97223456789, "mismatch": False},
        "winner": "treatment",
        "warnings": ["The pre-period covariate differs (p = 0.00076): check it."],
        "method": {
            "engine": "FREQUENTIST",
            "analysis": "SEQUENTIAL",
            "alpha": 0.05,
            "multiple_comparisons": "none",
            "description": "always-valid",
        },
    }
    experiment.save(update_fields=["variant_metrics"])

    html = admin_client.get(
        reverse("admin:experiments_experiment_change", args=[experiment.pk])
    ).content.decode()
    text = _visible_text(html)

    assert "Variant metrics" not in text
    assert "&gt; 99.9 %" in html
    assert "100 %" not in text
    assert "&lt; 0.001" in html
    assert "0.0000" not in text
    assert "1,652" in text
    assert "+2.9 %" in text
    assert "Assignments follow the weights (χ² p = 0.972)" in text
    assert "Treatment beats the control" in text
    assert "Better than control" in text
    assert "(p &lt; 0.001): check it." in html
    assert "Not ready yet" in text
    assert not RAW_FLOAT.search(text)
