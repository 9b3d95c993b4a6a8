from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings
from rest_framework.authtoken.models import Token

from personalization.models import User


def _seed() -> str:
    out = StringIO()
    call_command("seed", "--users", "3", "--days", "6", "--seed", "1", stdout=out)
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
    assert User.objects.count() == 6  # staff, demo, service account, 3 synthetic learners
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


@pytest.mark.django_db
def test_seed__experiments_and_history_show_real_numbers():
    from experiments.models import Assignment, BanditWeightSnapshot, Experiment, Strategy
    from outcomes.models import Effectiveness, Outcome

    report = _seed()
    assert Strategy.objects.count() == 16
    ab = Experiment.objects.get(experiment_type="AB_TEST", context="MISSION", status="ACTIVE")
    demo = User.objects.get(username="demo")
    assert Assignment.objects.filter(experiment=ab, user=demo).exists()
    assert ab.evaluated_at is not None
    assert ab.variant_metrics["variants"]
    bandit = Experiment.objects.get(experiment_type="MULTI_ARMED_BANDIT", status="ACTIVE")
    assert BanditWeightSnapshot.objects.filter(experiment=bandit).count() >= 2
    # 4 learners × 3 days (every other day of 6) × 2 contexts, and the demo's completed
    # recommendation
    history = Outcome.objects.exclude(outcome_type="CONTENT_ENGAGED")
    assert history.count() == 24
    assert Outcome.objects.filter(outcome_type="CONTENT_ENGAGED").count() == 1
    assert Outcome.objects.filter(user=demo).exists()
    assert Effectiveness.objects.filter(scope="GLOBAL").exists()
    assert "new outcomes" in report
    snapshots = BanditWeightSnapshot.objects.count()
    _seed()
    assert Outcome.objects.count() == 25
    assert BanditWeightSnapshot.objects.count() == snapshots


@pytest.mark.django_db
def test_seed__demo_recommendations_and_path():
    from recommendations.models import LearningPath, Recommendation

    _seed()
    demo = User.objects.get(username="demo")
    states = set(Recommendation.objects.filter(user=demo).values_list("status", flat=True))
    assert states == {"PENDING", "ACCEPTED", "DECLINED", "COMPLETED", "EXPIRED"}
    path = LearningPath.objects.get(user=demo, status="ACTIVE")
    assert path.stages.count() == 3
    assert 0 < path.progress < 1
