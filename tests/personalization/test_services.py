import pytest

from config.errors import ConflictError
from logs.models import AuditEvent
from personalization.models import Preferences, SkillProfile
from personalization.services.preferences import preferences_reset, preferences_update
from personalization.services.skills import skill_assessment_record, skill_profile_recompute
from personalization.services.users import user_create, user_profile_update


def test_profile_update__no_change__no_event(user):
    user_profile_update(actor=user, user=user, data={"display_name": user.display_name})
    assert not AuditEvent.objects.exists()


def test_profile_update__clearing_a_level__profile_incomplete(user):
    user_profile_update(
        actor=user,
        user=user,
        data={
            "software_background": {"level": "ADVANCED"},
            "hardware_background": {"level": "NONE"},
        },
    )
    assert user.profile_completed is True
    user_profile_update(actor=user, user=user, data={"hardware_background": None})
    user.refresh_from_db()
    assert user.hardware_background == {}
    assert user.profile_completed is False


def test_preferences_update__unknown_field__refused(user):
    with pytest.raises(ValueError, match="not preference fields"):
        preferences_update(actor=user, user=user, data={"last_reset_at": None})


def test_preferences_reset__without_stored_row__creates_defaults_with_reset_time(user):
    prefs = preferences_reset(actor=user, user=user)
    assert prefs.pk is not None
    assert prefs.last_reset_at is not None
    assert Preferences.objects.get(user=user).daily_minutes == 30


def test_skill_profile_recompute__rerun_changes_nothing(user):
    skill_assessment_record(user=user, skill="algebra", score=0.3)
    skill_assessment_record(user=user, skill="algebra", score=0.9)
    first = SkillProfile.objects.get(user=user)
    again = skill_profile_recompute(user=user)
    assert again.skill_ratings == first.skill_ratings == {"algebra": 0.6}
    assert again.weaknesses == []


def test_skill_profile_recompute__fixes_drift(user):
    skill_assessment_record(user=user, skill="algebra", score=0.3)
    SkillProfile.objects.filter(user=user).update(skill_ratings={"algebra": 0.99}, weaknesses=[])
    profile = skill_profile_recompute(user=user)
    assert profile.skill_ratings == {"algebra": 0.3}
    assert profile.weaknesses == ["algebra"]


def test_user_create__duplicate_email_case_insensitive__conflict(user, staff_user):
    with pytest.raises(ConflictError) as excinfo:
        user_create(actor=staff_user, external_id="new-1", email=user.email.upper())
    assert excinfo.value.attr == "email"
