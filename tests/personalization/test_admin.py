import json

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from logs.models import AuditEvent
from personalization.models import Preferences, User
from tests.conftest import token_client
from tests.personalization.factories import InteractionFactory, UserFactory
from tests.personalization.test_privacy import user_references


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_user_changelist__search_by_external_id_and_filter_by_level(admin_client):
    high = UserFactory(external_id="crm-high")
    Preferences.objects.create(user=high, personalization_level="HIGH")
    UserFactory(external_id="crm-low")
    url = reverse("admin:personalization_user_changelist")

    found = admin_client.get(url, {"q": "crm-high"}).context["cl"].result_list
    assert list(found) == [high]
    filtered = admin_client.get(url, {"preferences__personalization_level": "HIGH"})
    assert list(filtered.context["cl"].result_list) == [high]


def test_user_change_page__shows_preferences_and_skill_profile(admin_client, user):
    Preferences.objects.create(user=user)
    response = admin_client.get(reverse("admin:personalization_user_change", args=[user.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Personalization level" in content
    assert "Skill profile" in content


def test_interactions__read_only_with_filters(admin_client, user):
    interaction = InteractionFactory(user=user, service="tutor")
    changelist = reverse("admin:personalization_interaction_changelist")
    assert admin_client.get(changelist, {"service": "tutor"}).status_code == 200
    assert admin_client.get(reverse("admin:personalization_interaction_add")).status_code == 403
    change = reverse("admin:personalization_interaction_change", args=[interaction.pk])
    admin_client.post(change, {"service": "changed"})
    interaction.refresh_from_db()
    assert interaction.service == "tutor"


def _user_change_form(user, **changes):
    data = {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "external_id": user.external_id or "",
        "software_background": json.dumps(user.software_background),
        "hardware_background": json.dumps(user.hardware_background),
        "is_active": "on",
        "behavioral_analysis_enabled": "on",
        "learning_style_profiling_enabled": "on",
        "preferences-TOTAL_FORMS": "0",
        "preferences-INITIAL_FORMS": "0",
        "preferences-MIN_NUM_FORMS": "0",
        "preferences-MAX_NUM_FORMS": "1",
        "skill_profile-TOTAL_FORMS": "0",
        "skill_profile-INITIAL_FORMS": "0",
        "skill_profile-MIN_NUM_FORMS": "0",
        "skill_profile-MAX_NUM_FORMS": "0",
    }
    data.update(changes)
    return data


def _preferences_form(user, **changes):
    data = {
        "preferences-TOTAL_FORMS": "1",
        "preferences-0-user": str(user.pk),
        "preferences-0-personalization_level": "MEDIUM",
        "preferences-0-auto_adapt_enabled": "on",
        "preferences-0-mission_personalization_enabled": "on",
        "preferences-0-content_personalization_enabled": "on",
        "preferences-0-assessment_personalization_enabled": "on",
        "preferences-0-session_personalization_enabled": "on",
        "preferences-0-disabled_features": "[]",
        "preferences-0-learning_style": "MIXED",
        "preferences-0-reading_length": "MEDIUM",
        "preferences-0-tone_preference": "CASUAL",
        "preferences-0-daily_minutes": "30",
        "preferences-0-preferred_language": "en",
        "preferences-0-goals": "[]",
        "preferences-0-preferred_themes": "[]",
        "preferences-0-preferred_services": "[]",
        "preferences-0-notification_settings": '{"daily": true, "weekly": true}',
    }
    data.update({f"preferences-0-{name}": value for name, value in changes.items()})
    return _user_change_form(user, **data)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("disabled_features", "5"),
        ("disabled_features", '{"mission": true}'),
        ("goals", '["' + "g" * 201 + '"]'),
        ("preferred_themes", "[[1, 2]]"),
        ("notification_settings", '{"daily": "often"}'),
        ("notification_settings", "[]"),
        ("preferred_language", "not a language"),
    ],
)
def test_admin_preferences_inline__invalid_value__form_error_nothing_stored(
    admin_client, strategy_catalog, field, value
):
    learner = UserFactory(external_id="crm-prefs")
    url = reverse("admin:personalization_user_change", args=[learner.pk])

    response = admin_client.post(url, _preferences_form(learner, **{field: value}))

    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert not Preferences.objects.filter(user=learner).exists()
    decided = token_client(learner).post("/api/v1/decisions/", {"context": "MISSION"})
    assert decided.status_code == 201, decided.content


def test_admin_preferences_inline__valid__stored_as_the_api_would(admin_client, strategy_catalog):
    learner = UserFactory(external_id="crm-prefs")
    url = reverse("admin:personalization_user_change", args=[learner.pk])
    form = _preferences_form(
        learner, disabled_features='["mission"]', notification_settings='{"weekly": false}'
    )

    response = admin_client.post(url, form)

    assert response.status_code == 302, response.content.decode()[:3000]
    stored = Preferences.objects.get(user=learner)
    assert stored.disabled_features == ["mission"]
    assert stored.notification_settings == {"daily": True, "weekly": False}
    decided = token_client(learner).post("/api/v1/decisions/", {"context": "MISSION"})
    assert decided.json()["source"] == "DISABLED"


@pytest.fixture(params=["edited", "with_rows"])
def learner_with_history(request, admin_client, strategy_catalog):
    """A learner whose personal data went through the admin (and so the audit trail), with
    or without rows that only erasure may delete (interactions, decisions)."""
    learner = UserFactory(
        username="erin.example",
        email="erin@example.org",
        external_id="crm-erin-77",
        display_name="Erin Example",
        software_background={"level": "BEGINNER", "languages": ["cobol-erin"]},
    )
    url = reverse("admin:personalization_user_change", args=[learner.pk])
    form = _preferences_form(learner, goals='["erin-goal"]')
    form["hardware_background"] = '{"level": "BASIC", "domains": ["robotics_kits"]}'
    form["display_name"] = "Erin Q. Example"
    assert admin_client.post(url, form).status_code == 302
    if request.param == "with_rows":
        InteractionFactory(user=learner)
        token_client(learner).post("/api/v1/decisions/", {"context": "MISSION"})
    return learner


PERSONAL = ["erin.example", "erin@example.org", "crm-erin-77", "Erin", "cobol-erin", "robotics"]


def _assert_erased(user_pk, staff_user):
    for model, field in user_references():
        assert not model._default_manager.filter(**{field.attname: user_pk}).exists(), model
    assert not User.objects.filter(pk=user_pk).exists()
    trail = [
        json.dumps([e.target_type, e.target_id, e.changes]) for e in AuditEvent.objects.all()
    ] + [json.dumps([e.object_id, e.object_repr, e.change_message]) for e in LogEntry.objects.all()]
    for value in PERSONAL:
        leaks = [entry for entry in trail if value in entry]
        assert not leaks, (value, leaks)
    erased = AuditEvent.objects.get(action="USER_ERASED", target_id=str(user_pk))
    assert erased.actor == staff_user
    assert erased.changes["rows_deleted"]["new"]["personalization.preferences"] == 1


def test_admin_user_delete__is_the_erasure_of_me_delete(
    admin_client, learner_with_history, staff_user
):
    learner = learner_with_history
    url = reverse("admin:personalization_user_delete", args=[learner.pk])
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    _assert_erased(learner.pk, staff_user)
    assert not AuditEvent.objects.filter(action="ADMIN_DELETED").exists()


def test_admin_user_delete_action__erases_each_user(admin_client, learner_with_history, staff_user):
    other = UserFactory()
    response = admin_client.post(
        reverse("admin:personalization_user_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [learner_with_history.pk, other.pk],
            "post": "yes",
        },
    )

    assert response.status_code == 302
    _assert_erased(learner_with_history.pk, staff_user)
    assert AuditEvent.objects.filter(action="USER_ERASED", target_id=str(other.pk)).exists()
    assert not User.objects.filter(pk=other.pk).exists()
