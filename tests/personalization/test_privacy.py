"""Export and erasure cover every model that points at a user, including models added later:
the models are discovered, and one without a row maker here fails the test."""

from collections.abc import Callable

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from experiments.models import Experiment, Strategy, StrategyConfig
from experiments.services.decisions import decision_make
from logs.models import AuditEvent
from logs.services import audit_event_record
from personalization.models import Preferences, SkillProfile, User
from personalization.selectors import user_data_export
from personalization.services.skills import skill_assessment_record
from personalization.services.users import user_erase
from tests.experiments.factories import make_experiment
from tests.logs.factories import PersonalizationLogFactory, TranslationLogFactory
from tests.personalization.factories import InteractionFactory, UserFactory


def _audit_event(user: User) -> None:
    with transaction.atomic():
        audit_event_record(actor=user, action=AuditEvent.Action.PROFILE_UPDATED, target=user)


def _admin_log_entry(user: User) -> None:
    LogEntry.objects.create(
        user=user,
        content_type=ContentType.objects.get_for_model(User),
        object_id=str(user.pk),
        object_repr=str(user),
        action_flag=CHANGE,
        change_message="[]",
    )


def _decisions_with_assignment(user: User) -> None:
    """Configs and decisions in SESSION, and an experiment assignment in MISSION."""
    if not Experiment.objects.filter(status="ACTIVE", context="MISSION").exists():
        make_experiment(context="MISSION")
    decision_make(user=user, context="SESSION")
    decision_make(user=user, context="MISSION")


def _rollout(user: User) -> None:
    """A rollout the user shipped (staff do; the row names who created it)."""
    from experiments.models import Rollout, Strategy

    strategy = Strategy.objects.get(context="CONTENT", key="balanced")
    Rollout.objects.create(context="CONTENT", strategy=strategy, created_by=user)


def _outcome_and_effectiveness(user: User) -> None:
    from outcomes.models import Outcome
    from outcomes.services.effectiveness import effectiveness_windows_compute
    from outcomes.services.ingest import outcome_record_many

    if Outcome.objects.filter(user=user).exists():  # one maker serves both models
        return
    decision = decision_make(user=user, context="CONTENT").decision
    now = timezone.now()
    items = [
        {
            "event_id": f"e{i}",
            "decision": decision.pk,
            "outcome_type": "CONTENT_ENGAGED",
            "occurred_at": now,
            "engagement_score": 0.5,
        }
        for i in range(2)
    ] + [
        {
            "event_id": f"b{i}",
            "context": "CONTENT",
            "personalization_applied": False,
            "outcome_type": "CONTENT_ENGAGED",
            "occurred_at": now,
            "engagement_score": 0.3 + 0.1 * i,
        }
        for i in range(2)
    ]
    outcome_record_many(user=user, items=items)
    # The decision's strategy may be the baseline; make sure a personalized sample exists.
    balanced = Strategy.objects.get(context="CONTENT", key="balanced")
    config = StrategyConfig.objects.get(user=user, strategy=balanced)
    Outcome.objects.filter(user=user, event_id__startswith="e").update(
        strategy=balanced, config=config, personalization_applied=True
    )
    effectiveness_windows_compute()


def _recommendations_and_path(user: User) -> None:
    from recommendations.models import LearningPath
    from recommendations.services.generation import recommendations_generate
    from recommendations.services.paths import learning_path_create

    if LearningPath.objects.filter(user=user).exists():  # one maker serves both models
        return
    recommendations_generate(user=user, limit=2)
    learning_path_create(user=user, goal="Privacy", skills=["testing"])


# One way to give a user a row of each model that references the user model.
ROW_MAKERS: dict[str, Callable[[User], object]] = {
    "personalization.preferences": lambda u: Preferences.objects.create(user=u),
    "personalization.skillassessment": lambda u: skill_assessment_record(
        user=u, skill="algebra", score=0.4
    ),
    "personalization.skillprofile": lambda u: SkillProfile.objects.get_or_create(user=u),
    "personalization.interaction": lambda u: InteractionFactory(user=u),
    "logs.auditevent": _audit_event,
    "logs.personalizationlog": lambda u: PersonalizationLogFactory(user=u),
    "logs.translationlog": lambda u: TranslationLogFactory(user=u),
    "authtoken.token": lambda u: Token.objects.get_or_create(user=u),
    "admin.logentry": _admin_log_entry,
    "experiments.strategyconfig": _decisions_with_assignment,
    "experiments.decision": _decisions_with_assignment,
    "experiments.assignment": _decisions_with_assignment,
    "outcomes.outcome": _outcome_and_effectiveness,
    "outcomes.effectiveness": _outcome_and_effectiveness,
    "recommendations.recommendation": _recommendations_and_path,
    "recommendations.learningpath": _recommendations_and_path,
    "experiments.rollout": _rollout,
}


def user_references() -> list[tuple[type[models.Model], models.Field]]:
    """Every (model, field) whose foreign key or one-to-one points at the user model."""
    return [
        (model, field)
        for model in apps.get_models()
        if not model._meta.proxy  # a proxy shares its concrete model's table
        for field in model._meta.concrete_fields
        if field.is_relation and field.related_model is User
    ]


def test_every_user_reference_has_a_row_maker():
    labels = {model._meta.label_lower for model, _field in user_references()}
    assert labels == set(ROW_MAKERS), "add a row maker (and an export source) for new models"


@pytest.fixture
def user_with_everything(strategy_catalog, content_catalog) -> User:
    user = UserFactory(display_name="Erin Example", external_id="erin-1")
    for make in ROW_MAKERS.values():
        make(user)
    return user


def test_export__every_referencing_model_included(user_with_everything):
    user = user_with_everything
    export = user_data_export(user=user)
    data = export["data"]
    assert export["user_id"] == user.pk
    for model, field in user_references():
        rows = data.get(model._meta.label_lower)
        assert rows, f"{model._meta.label_lower} missing from the export"
        assert any(row[field.attname] == user.pk for row in rows), model._meta.label_lower
    (own,) = data["personalization.user"]
    assert own["display_name"] == "Erin Example"
    assert own["password"] != user.password
    assert data["recommendations.learningpathitem"]
    (token,) = data["authtoken.token"]
    assert token["key"] != Token.objects.get(user=user).key


def test_export__nothing_of_another_user(user_with_everything):
    other = UserFactory()
    InteractionFactory(user=other)
    data = user_data_export(user=user_with_everything)["data"]
    for label, rows in data.items():
        for row in rows:
            assert other.pk not in {row.get("user_id"), row.get("actor_id")}, label


def test_erase__leaves_no_row_that_references_the_user(user_with_everything):
    user = user_with_everything
    user_pk = user.pk
    survivor = UserFactory()
    InteractionFactory(user=survivor)

    user_erase(actor=None, user=user)

    for model, field in user_references():
        leftover = model._default_manager.filter(**{field.attname: user_pk})
        assert not leftover.exists(), model._meta.label_lower
    assert not User.objects.filter(pk=user_pk).exists()
    assert survivor.interactions.count() == 1


def test_erase__audit_trail_kept_without_personal_data(user_with_everything):
    user = user_with_everything
    user_pk = user.pk
    with transaction.atomic():
        audit_event_record(
            actor=None,
            action=AuditEvent.Action.PROFILE_UPDATED,
            target=user,
            changes={"display_name": {"old": "Erin Example", "new": "Erin E."}},
        )

    user_erase(actor=None, user=user)

    about_user = AuditEvent.objects.filter(
        target_type="personalization.user", target_id=str(user_pk)
    )
    assert about_user.exclude(action="USER_ERASED").exists()
    for event in about_user.exclude(action="USER_ERASED"):
        assert event.changes == {}
    erased = AuditEvent.objects.get(action="USER_ERASED")
    assert "Erin" not in str(erased.changes)
    assert "erin-1" not in str(erased.changes)
    assert erased.changes["rows_deleted"]["new"]["personalization.interaction"] == 1
    assert erased.created_at <= timezone.now()


def test_every_user_reference_has_a_merge_rule():
    """users/{id}/merge/ moves what the merge registry names: every model that refers to
    users is declared there (moved, merged by its app, or staying to be erased)."""
    from personalization.registry import user_merges

    labels = {model._meta.label_lower for model, _field in user_references()}
    declared = {rule.label for rule in user_merges()}
    # Stages and items of a learning path move with their path.
    assert labels - declared == set(), "declare how a merge treats these models"
