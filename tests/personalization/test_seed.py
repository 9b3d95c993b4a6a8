from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings
from rest_framework.authtoken.models import Token

from personalization.models import User


def _seed() -> str:
    out = StringIO()
    call_command("seed", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed__creates_logins():
    _seed()
    admin = User.objects.get(username="admin")
    assert admin.is_staff
    assert admin.is_superuser
    assert admin.check_password("attune-admin")
    demo = User.objects.get(username="demo")
    assert not demo.is_staff
    assert demo.check_password("attune-demo")
    client = User.objects.get(username="client-app")
    assert client.has_perm("personalization.act_for_users")
    assert not client.has_usable_password()


@pytest.mark.django_db
def test_seed__idempotent():
    _seed()
    tokens = list(Token.objects.values_list("key", flat=True))
    _seed()
    assert User.objects.count() == 3  # staff, demo, service account
    assert list(Token.objects.values_list("key", flat=True)) == tokens


@pytest.mark.django_db
@override_settings(SEED_ADMIN_PASSWORD="rotated-Secret-7")
def test_seed__credentials_from_settings():
    _seed()
    assert User.objects.get(username="admin").check_password("rotated-Secret-7")


@pytest.mark.django_db
@override_settings(SEED_DEMO_PASSWORD="")
def test_seed__without_password__refuses_with_advice():
    with pytest.raises(ImproperlyConfigured, match="SEED_DEMO_PASSWORD"):
        _seed()


@pytest.mark.django_db
def test_seed__demo_profile_complete_and_stable():
    from personalization.models import Interaction, Preferences, SkillAssessment

    _seed()
    demo = User.objects.get(username="demo")
    assert demo.profile_completed
    assert demo.software_background["level"] == "INTERMEDIATE"
    assert demo.hardware_background["level"] == "BASIC"
    assert Preferences.objects.get(user=demo).learning_style == "VISUAL"
    profile = demo.skill_profile
    assert len(profile.skill_ratings) >= 5
    assert profile.weaknesses
    assert SkillAssessment.objects.filter(user=demo).count() > len(profile.skill_ratings)
    interactions = Interaction.objects.filter(user=demo)
    assert interactions.count() == 30
    assert interactions.values("service").distinct().count() >= 3
    assert interactions.values("theme").distinct().count() >= 3

    counts = (SkillAssessment.objects.count(), Interaction.objects.count())
    _seed()
    assert (SkillAssessment.objects.count(), Interaction.objects.count()) == counts
