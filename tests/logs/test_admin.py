import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import reverse

from logs.admin import AuditedModelAdmin, ReadOnlyModelAdmin
from logs.models import AuditEvent, PersonalizationLog
from tests.logs.factories import PersonalizationLogFactory
from tests.personalization.factories import UserFactory


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_every_registered_admin_is_audited():
    """Models added later are covered too: every ModelAdmin derives from the audited base."""
    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedModelAdmin)
    ]
    assert unaudited == []


def _user_change_form(user, **changes):
    data = {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "external_id": user.external_id or "",
        "software_background": "{}",
        "hardware_background": "{}",
        "is_active": "on",
        "behavioral_analysis_enabled": "on",
        "learning_style_profiling_enabled": "on",
    }
    for prefix in ("preferences", "skill_profile"):
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": "0",
                f"{prefix}-INITIAL_FORMS": "0",
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "1",
            }
        )
    data.update(changes)
    return data


def test_admin_change__records_event_with_diff(admin_client, staff_user):
    learner = UserFactory(display_name="Old Name")
    url = reverse("admin:personalization_user_change", args=[learner.pk])
    response = admin_client.post(url, _user_change_form(learner, display_name="New Name"))
    assert response.status_code == 302, response.content.decode()[:2000]

    event = AuditEvent.objects.get(action=AuditEvent.Action.ADMIN_CHANGED)
    assert event.actor == staff_user
    assert event.target_type == "personalization.user"
    assert event.target_id == str(learner.pk)
    assert event.changes == {"display_name": {"old": "Old Name", "new": "New Name"}}


def test_admin_inline_preferences__recorded_on_their_own_target(admin_client):
    learner = UserFactory()
    url = reverse("admin:personalization_user_change", args=[learner.pk])
    form = _user_change_form(learner)
    form.update(
        {
            "preferences-TOTAL_FORMS": "1",
            "preferences-0-personalization_level": "HIGH",
            "preferences-0-auto_adapt_enabled": "on",
            "preferences-0-disabled_features": "[]",
            "preferences-0-learning_style": "VISUAL",
            "preferences-0-reading_length": "MEDIUM",
            "preferences-0-tone_preference": "CASUAL",
            "preferences-0-daily_minutes": "45",
            "preferences-0-preferred_language": "en",
            "preferences-0-goals": "[]",
            "preferences-0-preferred_themes": "[]",
            "preferences-0-preferred_services": "[]",
            "preferences-0-notification_settings": '{"daily": true, "weekly": false}',
            "preferences-0-user": str(learner.pk),
        }
    )
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.get(
        action=AuditEvent.Action.ADMIN_CREATED, target_type="personalization.preferences"
    )
    assert event.changes["personalization_level"] == {"old": None, "new": "HIGH"}
    assert event.changes["daily_minutes"] == {"old": None, "new": 45}


def test_admin_background_without_level__form_error_no_event(admin_client):
    learner = UserFactory()
    url = reverse("admin:personalization_user_change", args=[learner.pk])
    form = _user_change_form(learner, software_background='{"languages": ["python"]}')
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert "Software level is required" in response.content.decode()
    assert not AuditEvent.objects.exists()


def test_admin_save_without_change__no_event(admin_client):
    learner = UserFactory()
    url = reverse("admin:personalization_user_change", args=[learner.pk])
    admin_client.post(url, _user_change_form(learner))
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.ADMIN_CHANGED).exists()


def test_admin_create_and_delete__recorded(admin_client, staff_user):
    response = admin_client.post(
        reverse("admin:auth_group_add"), {"name": "Reviewers", "permissions": []}
    )
    assert response.status_code == 302
    group = Group.objects.get(name="Reviewers")
    created = AuditEvent.objects.get(action=AuditEvent.Action.ADMIN_CREATED)
    assert created.target_type == "auth.group"
    assert created.changes["name"] == {"old": None, "new": "Reviewers"}

    response = admin_client.post(
        reverse("admin:auth_group_delete", args=[group.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    deleted = AuditEvent.objects.get(action=AuditEvent.Action.ADMIN_DELETED)
    assert deleted.target_id == str(group.pk)
    assert deleted.changes["name"] == {"old": "Reviewers", "new": None}
    assert deleted.actor == staff_user


def test_admin_bulk_delete_action__one_event_per_object(admin_client):
    groups = [Group.objects.create(name=f"g{i}") for i in range(3)]
    response = admin_client.post(
        reverse("admin:auth_group_changelist"),
        {"action": "delete_selected", "_selected_action": [g.pk for g in groups], "post": "yes"},
    )
    assert response.status_code == 302
    events = AuditEvent.objects.filter(action=AuditEvent.Action.ADMIN_DELETED)
    assert sorted(e.target_id for e in events) == sorted(str(g.pk) for g in groups)


def test_admin_password_change__recorded_without_the_password(admin_client, staff_user):
    learner = UserFactory()
    url = reverse("admin:auth_user_password_change", args=[learner.pk])
    response = admin_client.post(
        url,
        {"password1": "a-new-Secret-91", "password2": "a-new-Secret-91", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action=AuditEvent.Action.PASSWORD_CHANGED)
    assert event.target_id == str(learner.pk)
    assert "a-new-Secret-91" not in str(event.changes)


def test_read_only_admin__cannot_add_change_or_delete(admin_client, user):
    entry = PersonalizationLogFactory(user=user)
    assert isinstance(admin.site._registry[PersonalizationLog], ReadOnlyModelAdmin)
    assert admin_client.get(reverse("admin:logs_personalizationlog_add")).status_code == 403
    change_url = reverse("admin:logs_personalizationlog_change", args=[entry.pk])
    assert admin_client.get(change_url).status_code == 200  # view only
    admin_client.post(change_url, {"chapter_id": "changed"})
    entry.refresh_from_db()
    assert entry.chapter_id == "chapter-1"
    delete_url = reverse("admin:logs_personalizationlog_delete", args=[entry.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403


def test_admin_changelists__render(admin_client, user):
    PersonalizationLogFactory(user=user)
    for name in [
        "logs_auditevent",
        "logs_personalizationlog",
        "logs_translationlog",
        "personalization_user",
    ]:
        assert admin_client.get(reverse(f"admin:{name}_changelist")).status_code == 200
