import datetime

import pytest
from django.utils import timezone

from logs.models import AuditEvent
from personalization.models import Interaction, Preferences, SkillAssessment, User
from tests.conftest import assert_error_shape
from tests.personalization.factories import InteractionFactory, UserFactory

SOFTWARE = {"level": "INTERMEDIATE", "languages": ["python"], "frameworks": ["django"]}
HARDWARE = {"level": "BASIC", "domains": ["robotics_kits", "3d_printing"]}


# --- me/ ------------------------------------------------------------------------------------


def test_me__get__profile_preferences_and_summary(user_client, user):
    body = user_client.get("/api/v1/me/").json()
    assert body["id"] == user.pk
    assert body["profile_completed"] is False
    assert body["summary"]["preferences"]["personalization_level"] == "MEDIUM"
    assert body["summary"]["preferences"]["is_default"] is True
    assert body["summary"]["skills"] == {"ratings": {}, "weaknesses": [], "learning_velocity": None}


def test_me__patch_both_backgrounds__profile_completed(user_client, user):
    response = user_client.patch(
        "/api/v1/me/",
        {"software_background": SOFTWARE, "display_name": "Ada"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["profile_completed"] is False
    response = user_client.patch("/api/v1/me/", {"hardware_background": HARDWARE}, format="json")
    body = response.json()
    assert body["profile_completed"] is True
    assert body["hardware_background"] == HARDWARE
    user.refresh_from_db()
    assert user.display_name == "Ada"
    assert user.profile_completed is True
    event = AuditEvent.objects.filter(action="PROFILE_UPDATED").first()
    assert event.changes["hardware_background"] == {"old": {}, "new": HARDWARE}


def test_me__profile_completed_is_not_input(user_client):
    response = user_client.patch("/api/v1/me/", {"profile_completed": True}, format="json")
    assert_error_shape(response, 400, attr="profile_completed")


@pytest.mark.parametrize(
    ("payload", "attr", "message"),
    [
        (
            {"display_name": "x" * 101},
            "display_name",
            "Display name must be 100 characters or less",
        ),
        (
            {"software_background": {"languages": ["python"]}},
            "software_background",
            "Software level is required",
        ),
        (
            {"hardware_background": {"domains": ["robotics_kits"]}},
            "hardware_background",
            "Hardware level is required",
        ),
        (
            {"hardware_background": {"level": "BASIC", "domains": ["quantum"]}},
            "hardware_background",
            "Invalid hardware domain",
        ),
        (
            {"software_background": {"level": "GURU"}},
            "software_background",
            "Invalid software level",
        ),
        ({"nickname": "Ada"}, "nickname", "Unknown field."),
    ],
)
def test_me__patch_invalid__400_with_message(user_client, user, payload, attr, message):
    response = user_client.patch("/api/v1/me/", payload, format="json")
    body = assert_error_shape(response, 400, attr=attr)
    assert message in [error["detail"] for error in body["errors"]]
    user.refresh_from_db()
    assert user.display_name != "x" * 101
    assert user.software_background == {}


def test_me__display_name_at_limit__accepted(user_client):
    response = user_client.patch("/api/v1/me/", {"display_name": "x" * 100}, format="json")
    assert response.status_code == 200


def test_me__privacy_switches(user_client, user):
    response = user_client.patch(
        "/api/v1/me/",
        {"behavioral_analysis_enabled": False, "share_anonymized_patterns": True},
        format="json",
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.behavioral_analysis_enabled is False
    assert user.share_anonymized_patterns is True


def test_me__delete__erases_and_204(user_client, user):
    InteractionFactory(user=user)
    response = user_client.delete("/api/v1/me/")
    assert response.status_code == 204
    assert not User.objects.filter(pk=user.pk).exists()
    assert not Interaction.objects.exists()
    event = AuditEvent.objects.get(action="USER_ERASED")
    assert event.target_id == str(user.pk)
    assert event.actor is None


# --- me/preferences/ ------------------------------------------------------------------------


def test_preferences__get_defaults_when_none_stored(user_client, user):
    body = user_client.get("/api/v1/me/preferences/").json()
    assert body == {
        "personalization_level": "MEDIUM",
        "auto_adapt_enabled": True,
        "mission_personalization_enabled": True,
        "content_personalization_enabled": True,
        "assessment_personalization_enabled": True,
        "session_personalization_enabled": True,
        "disabled_features": [],
        "learning_style": "MIXED",
        "goals": [],
        "daily_minutes": 30,
        "preferred_language": "en",
        "preferred_themes": [],
        "preferred_services": [],
        "notification_settings": {"daily": True, "weekly": True},
        "reading_length": "MEDIUM",
        "tone_preference": "CASUAL",
        "last_reset_at": None,
        "is_default": True,
    }
    assert not Preferences.objects.exists()


def test_preferences__get__at_most_3_queries(user_client, user, django_assert_max_num_queries):
    Preferences.objects.create(user=user, daily_minutes=45)
    with django_assert_max_num_queries(3):
        body = user_client.get("/api/v1/me/preferences/").json()
    assert body["daily_minutes"] == 45


def test_preferences__patch__changes_part_and_audits(user_client, user):
    response = user_client.patch(
        "/api/v1/me/preferences/",
        {"daily_minutes": 45, "disabled_features": ["mission"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["daily_minutes"] == 45
    prefs = Preferences.objects.get(user=user)
    assert prefs.disabled_features == ["mission"]
    assert prefs.learning_style == "MIXED"
    event = AuditEvent.objects.get(action="PREFERENCES_UPDATED")
    assert event.changes == {
        "daily_minutes": {"old": 30, "new": 45},
        "disabled_features": {"old": [], "new": ["mission"]},
    }
    assert event.actor == user


def test_preferences__put__replaces_left_out_fields_with_defaults(user_client, user):
    Preferences.objects.create(user=user, daily_minutes=90, learning_style="VISUAL")
    response = user_client.put(
        "/api/v1/me/preferences/", {"personalization_level": "HIGH"}, format="json"
    )
    assert response.status_code == 200
    prefs = Preferences.objects.get(user=user)
    assert prefs.personalization_level == "HIGH"
    assert prefs.daily_minutes == 30
    assert prefs.learning_style == "MIXED"


def test_preferences__delete__resets_and_answers_defaults(user_client, user):
    Preferences.objects.create(user=user, daily_minutes=90, personalization_level="HIGH")
    response = user_client.delete("/api/v1/me/preferences/")
    assert response.status_code == 200
    body = response.json()
    assert body["daily_minutes"] == 30
    assert body["personalization_level"] == "MEDIUM"
    assert body["last_reset_at"] is not None
    prefs = Preferences.objects.get(user=user)
    assert prefs.last_reset_at is not None
    event = AuditEvent.objects.get(action="PREFERENCES_RESET")
    assert event.changes["daily_minutes"] == {"old": 90, "new": 30}


@pytest.mark.parametrize(
    ("payload", "attr"),
    [
        ({"daily_minutes": 4}, "daily_minutes"),
        ({"daily_minutes": 601}, "daily_minutes"),
        ({"daily_minutes": "lots"}, "daily_minutes"),
        ({"personalization_level": "EXTREME"}, "personalization_level"),
        ({"learning_style": "telepathic"}, "learning_style"),
        ({"tone_preference": "SARCASTIC"}, "tone_preference"),
        ({"reading_length": "EPIC"}, "reading_length"),
        ({"disabled_features": "mission"}, "disabled_features"),
        ({"disabled_features": ["x" * 51]}, "disabled_features.0"),
        ({"disabled_features": [1, {}]}, "disabled_features.1"),
        ({"notification_settings": {"daily": "often"}}, "notification_settings.daily"),
        ({"notification_settings": {"hourly": True}}, "notification_settings.hourly"),
        ({"preferred_language": "english please"}, "preferred_language"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_preferences__invalid__400_names_field(user_client, user, payload, attr):
    response = user_client.patch("/api/v1/me/preferences/", payload, format="json")
    assert_error_shape(response, 400, attr=attr)
    assert not Preferences.objects.exists()


def test_preferences__daily_minutes_bounds_accepted(user_client):
    for minutes in (5, 600):
        response = user_client.patch(
            "/api/v1/me/preferences/", {"daily_minutes": minutes}, format="json"
        )
        assert response.status_code == 200


# --- me/skills/ -----------------------------------------------------------------------------


def test_skills__post__profile_updated(user_client, user):
    for score in (0.2, 0.6):
        response = user_client.post("/api/v1/me/skills/", {"skill": "algebra", "score": score})
        assert response.status_code == 201
    user_client.post("/api/v1/me/skills/", {"skill": "geometry", "score": 0.9})
    body = user_client.get("/api/v1/me/skills/").json()
    assert body["skill_ratings"] == {"algebra": pytest.approx(0.4), "geometry": 0.9}
    assert body["weaknesses"] == ["algebra"]
    assert body["learning_velocity"] == pytest.approx(0.1)
    assert [a["skill"] for a in body["recent_assessments"]] == ["geometry", "algebra", "algebra"]
    assert SkillAssessment.objects.filter(user=user).count() == 3


@pytest.mark.parametrize(
    ("payload", "attr"),
    [
        ({"skill": "algebra", "score": 1.5}, "score"),
        ({"skill": "algebra", "score": -0.1}, "score"),
        ({"skill": "algebra"}, "score"),
        ({"score": 0.5}, "skill"),
        ({"skill": "x" * 101, "score": 0.5}, "skill"),
        ({"skill": "algebra", "score": 0.5, "assessed_at": "2999-01-01T00:00:00Z"}, "assessed_at"),
    ],
)
def test_skills__invalid__400(user_client, payload, attr):
    assert_error_shape(
        user_client.post("/api/v1/me/skills/", payload, format="json"), 400, attr=attr
    )
    assert not SkillAssessment.objects.exists()


# --- interactions/ --------------------------------------------------------------------------

INTERACTION = {"type": "READING", "service": "library", "theme": "space", "rating": 5}


def test_interactions__post_one__201_object(user_client, user):
    response = user_client.post("/api/v1/interactions/", INTERACTION, format="json")
    assert response.status_code == 201
    assert response.json()["service"] == "library"
    assert Interaction.objects.get().user == user


def test_interactions__post_list__201_with_count(user_client, user):
    items = [INTERACTION, {**INTERACTION, "type": "CHAT", "rating": None, "theme": None}]
    response = user_client.post("/api/v1/interactions/", items, format="json")
    assert response.status_code == 201
    assert response.json()["created"] == 2
    assert Interaction.objects.filter(user=user).count() == 2


def test_interactions__post_500__accepted_501__413(user_client):
    assert (
        user_client.post("/api/v1/interactions/", [INTERACTION] * 500, format="json").status_code
        == 201
    )
    response = user_client.post("/api/v1/interactions/", [INTERACTION] * 501, format="json")
    assert_error_shape(response, 413)
    assert Interaction.objects.count() == 500


def test_interactions__bad_item_in_list__whole_list_rejected_index_named(user_client):
    items = [INTERACTION, {**INTERACTION, "rating": 6}]
    response = user_client.post("/api/v1/interactions/", items, format="json")
    assert_error_shape(response, 400, attr="1.rating")
    assert not Interaction.objects.exists()


@pytest.mark.parametrize(
    ("payload", "attr"),
    [
        ({**INTERACTION, "rating": 0}, "rating"),
        ({**INTERACTION, "rating": 6}, "rating"),
        ({**INTERACTION, "type": "DANCE"}, "type"),
        ({**INTERACTION, "service": ""}, "service"),
        ({**INTERACTION, "metadata": [1]}, "metadata"),
        ({**INTERACTION, "occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({**INTERACTION, "mood": "happy"}, "mood"),
    ],
)
def test_interactions__invalid__400(user_client, payload, attr):
    assert_error_shape(
        user_client.post("/api/v1/interactions/", payload, format="json"), 400, attr=attr
    )


def test_interactions__list_own_with_filters(user_client, user, other_user):
    now = timezone.now()
    InteractionFactory(user=user, type="CHAT", service="tutor", occurred_at=now)
    InteractionFactory(
        user=user, type="READING", service="library", occurred_at=now - datetime.timedelta(days=3)
    )
    InteractionFactory(user=other_user, type="CHAT", service="tutor")
    assert user_client.get("/api/v1/interactions/").json()["count"] == 2
    assert user_client.get("/api/v1/interactions/", {"type": "CHAT"}).json()["count"] == 1
    assert user_client.get("/api/v1/interactions/", {"service": "library"}).json()["count"] == 1
    since = (now - datetime.timedelta(days=1)).isoformat()
    assert user_client.get("/api/v1/interactions/", {"since": since}).json()["count"] == 1
    assert_error_shape(
        user_client.get("/api/v1/interactions/", {"since": "last week"}), 400, attr="since"
    )


def test_interactions__another_users__404(user_client, other_user):
    theirs = InteractionFactory(user=other_user)
    assert_error_shape(user_client.get(f"/api/v1/interactions/{theirs.pk}/"), 404)


def test_interactions__cannot_change_or_delete(user_client, user):
    own = InteractionFactory(user=user)
    assert_error_shape(user_client.patch(f"/api/v1/interactions/{own.pk}/", {"rating": 1}), 405)
    assert_error_shape(user_client.delete(f"/api/v1/interactions/{own.pk}/"), 405)


# --- users/ ---------------------------------------------------------------------------------


def test_users__service_account_creates_and_finds(service_client):
    response = service_client.post("/api/v1/users/", {"external_id": "crm-42"}, format="json")
    assert response.status_code == 201, response.content
    created = User.objects.get(external_id="crm-42")
    assert not created.has_usable_password()
    found = service_client.get("/api/v1/users/", {"external_id": "crm-42"}).json()
    assert [row["id"] for row in found["results"]] == [created.pk]
    assert AuditEvent.objects.filter(action="USER_CREATED", target_id=str(created.pk)).exists()


@pytest.mark.parametrize(
    "external_id", ["id:24", " padded", "padded ", "jürgen", "tab\there", "", "x" * 256]
)
def test_users__external_id_the_header_cannot_carry__400(service_client, external_id):
    """X-On-Behalf-Of names learners by external id: one it would read as an Attune id
    (`id:…`), or could not carry unchanged, is refused when the learner is created."""
    response = service_client.post("/api/v1/users/", {"external_id": external_id}, format="json")
    assert_error_shape(response, 400, attr="external_id")
    assert not User.objects.filter(external_id=external_id).exists()


def test_users__external_id_with_inner_spaces_and_symbols__accepted(service_client):
    response = service_client.post("/api/v1/users/", {"external_id": "crm 7/a:b@x"}, format="json")
    assert response.status_code == 201, response.content


def test_users__duplicate_external_id__409(service_client, user):
    response = service_client.post(
        "/api/v1/users/", {"external_id": user.external_id}, format="json"
    )
    assert_error_shape(response, 409, code="conflict")
    assert User.objects.filter(external_id=user.external_id).count() == 1


def test_users__staff_allowed(staff_client):
    assert (
        staff_client.post("/api/v1/users/", {"external_id": "x1"}, format="json").status_code == 201
    )
    assert staff_client.get("/api/v1/users/").status_code == 200


def test_users__ordinary_user__403(user_client):
    assert_error_shape(user_client.get("/api/v1/users/"), 403)
    assert_error_shape(user_client.post("/api/v1/users/", {"external_id": "x"}, format="json"), 403)


def test_users__invalid__400(service_client):
    assert_error_shape(
        service_client.post("/api/v1/users/", {}, format="json"), 400, attr="external_id"
    )
    response = service_client.post(
        "/api/v1/users/", {"external_id": "a", "email": "nope"}, format="json"
    )
    assert_error_shape(response, 400, attr="email")


# --- On behalf of: every route --------------------------------------------------------------

ON_BEHALF_ROUTES = [
    ("get", "/api/v1/me/", None, 200),
    ("patch", "/api/v1/me/", {"display_name": "Via service"}, 200),
    ("get", "/api/v1/me/export/", None, 200),
    ("get", "/api/v1/me/preferences/", None, 200),
    ("put", "/api/v1/me/preferences/", {"daily_minutes": 40}, 200),
    ("patch", "/api/v1/me/preferences/", {"daily_minutes": 50}, 200),
    ("delete", "/api/v1/me/preferences/", None, 200),
    ("get", "/api/v1/me/skills/", None, 200),
    ("post", "/api/v1/me/skills/", {"skill": "algebra", "score": 0.5}, 201),
    ("get", "/api/v1/interactions/", None, 200),
    ("post", "/api/v1/interactions/", INTERACTION, 201),
    ("get", "/api/v1/interactions/summary/", None, 200),
]


@pytest.mark.parametrize(("method", "url", "payload", "expected"), ON_BEHALF_ROUTES)
def test_on_behalf_of__every_route_acts_for_the_user(
    service_client, service_account, user, method, url, payload, expected
):
    response = getattr(service_client, method)(
        url, payload, format="json", HTTP_X_ON_BEHALF_OF=user.external_id
    )
    assert response.status_code == expected, response.content
    if url == "/api/v1/me/" and method == "get":
        assert response.json()["id"] == user.pk
    if method == "post" and "interactions" in url:
        assert Interaction.objects.get().user == user
    if method == "post" and "skills" in url:
        assert SkillAssessment.objects.get().user == user
    if method in ("put", "patch") and "preferences" in url:
        assert Preferences.objects.get().user == user
        assert AuditEvent.objects.get(action="PREFERENCES_UPDATED").actor == service_account


def test_on_behalf_of__delete_me__erases_the_user_actor_is_service(
    service_client, service_account, user
):
    response = service_client.delete("/api/v1/me/", HTTP_X_ON_BEHALF_OF=f"id:{user.pk}")
    assert response.status_code == 204
    assert User.objects.filter(pk=service_account.pk).exists()
    assert not User.objects.filter(pk=user.pk).exists()
    assert AuditEvent.objects.get(action="USER_ERASED").actor == service_account


@pytest.mark.parametrize(("method", "url", "payload", "expected"), ON_BEHALF_ROUTES)
def test_on_behalf_of__ordinary_user__403_every_route(
    other_client, user, method, url, payload, expected
):
    response = getattr(other_client, method)(
        url, payload, format="json", HTTP_X_ON_BEHALF_OF=str(user.pk)
    )
    assert_error_shape(response, 403)


def test_on_behalf_of__other_user_never_changed(other_client, user):
    other_client.patch("/api/v1/me/preferences/", {"daily_minutes": 99}, format="json")
    other_client.post("/api/v1/me/skills/", {"skill": "algebra", "score": 0.5}, format="json")
    assert not Preferences.objects.filter(user=user).exists()
    assert not SkillAssessment.objects.filter(user=user).exists()


def test_other_user__routes_show_only_own_data(other_client, user):
    InteractionFactory(user=user)
    UserFactory()
    assert other_client.get("/api/v1/interactions/").json()["count"] == 0
    summary = other_client.get("/api/v1/interactions/summary/").json()
    assert summary["popular_services"] == []
    export = other_client.get("/api/v1/me/export/").json()
    assert export["data"]["personalization.interaction"] == []


@pytest.mark.parametrize(
    ("email", "status"), [("", 201), ("learner@example.org", 201), ("not-an-address", 400)]
)
def test_users__email_optional_but_valid_when_given(service_client, email, status):
    response = service_client.post(
        "/api/v1/users/",
        {"external_id": f"crm-{status}-{len(email)}", "email": email},
        format="json",
    )
    assert response.status_code == status
    if status == 400:
        error = assert_error_shape(response, 400)["errors"][0]
        assert (error["attr"], error["code"]) == ("email", "invalid")
