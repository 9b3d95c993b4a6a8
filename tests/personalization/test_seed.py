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


def _state(experiment) -> dict:
    """Everything seed could change about an experiment: its row, variants, assignments
    (with their times), weight snapshots and the outcomes attributed to it."""
    from experiments.models import Assignment, BanditWeightSnapshot, Experiment, Variant
    from outcomes.models import Outcome

    return {
        "experiment": list(Experiment.objects.filter(pk=experiment.pk).values()),
        "variants": list(Variant.objects.filter(experiment=experiment).order_by("pk").values()),
        "assignments": list(
            Assignment.objects.filter(experiment=experiment).order_by("pk").values()
        ),
        "snapshots": BanditWeightSnapshot.objects.filter(experiment=experiment).count(),
        "outcomes": Outcome.objects.filter(experiment=experiment).count(),
    }


@pytest.mark.django_db
def test_seed__active_experiments_it_did_not_create__unchanged(staff_user):
    """Staff's own ACTIVE experiments — one in MISSION, where seed writes history, and a
    bandit in ASSESSMENT — keep their start, assignments, weights and results through two
    seed runs."""
    from experiments.models import Experiment, Strategy
    from experiments.services.decisions import decision_make
    from experiments.services.experiments import experiment_create, experiment_start
    from tests.experiments.factories import load_catalog
    from tests.personalization.factories import UserFactory

    load_catalog()
    strategies = {(s.context, s.key): s for s in Strategy.objects.all()}

    def staff_experiment(name: str, context: str, experiment_type: str, keys: list[str]):
        experiment = experiment_create(
            actor=staff_user,
            data={"name": name, "experiment_type": experiment_type, "context": context},
            variants=[
                {
                    "key": key,
                    "name": key,
                    "strategy": strategies[(context, key)],
                    "is_control": index == 0,
                }
                for index, key in enumerate(keys)
            ],
        )
        return experiment_start(actor=staff_user, experiment=experiment)

    mission = staff_experiment(
        "Staff mission test", "MISSION", Experiment.Type.AB_TEST, ["conservative", "balanced"]
    )
    bandit = staff_experiment(
        "Staff assessment bandit",
        "ASSESSMENT",
        Experiment.Type.MULTI_ARMED_BANDIT,
        ["conservative", "balanced", "pattern_heavy"],
    )
    real_learner = UserFactory()
    decision_make(user=real_learner, context="MISSION")
    decision_make(user=real_learner, context="ASSESSMENT")
    before = {"mission": _state(mission), "bandit": _state(bandit)}
    assert before["mission"]["assignments"]
    assert before["bandit"]["assignments"]

    _seed()
    _seed()

    after = {"mission": _state(mission), "bandit": _state(bandit)}
    for name in before:
        assert (
            after[name]["experiment"][0]["start_date"]
            == (before[name]["experiment"][0]["start_date"])
        ), f"seed moved the {name} experiment's start_date"
        assert [a["assigned_at"] for a in after[name]["assignments"]] == [
            a["assigned_at"] for a in before[name]["assignments"]
        ], f"seed moved or added assignments of the {name} experiment"
    for name, parts in before.items():
        for part, value in parts.items():
            assert after[name][part] == value, f"seed changed the {name} experiment's {part}"


@pytest.mark.django_db
def test_seed__experiment_named_like_its_demo_but_not_its_own__left_alone(staff_client):
    from experiments.models import Experiment, Strategy
    from experiments.seeding import DEMO_EXPERIMENT
    from tests.experiments.factories import load_catalog

    load_catalog()
    strategies = {s.key: s.pk for s in Strategy.objects.filter(context="MISSION")}
    response = staff_client.post(
        "/api/v1/experiments/",
        {
            "name": DEMO_EXPERIMENT,
            "experiment_type": "AB_TEST",
            "context": "MISSION",
            "variants": [
                {
                    "key": "a",
                    "name": "A",
                    "strategy": strategies["conservative"],
                    "is_control": True,
                },
                {"key": "b", "name": "B", "strategy": strategies["pattern_heavy"]},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    staffs = Experiment.objects.get(name=DEMO_EXPERIMENT)
    before = _state(staffs)

    report = _seed()
    _seed()

    after = _state(staffs)
    for part, value in before.items():
        assert after[part] == value, f"seed changed the experiment's {part}"
    assert before["experiment"][0]["status"] == "DRAFT"
    assert "not created by seed" in report


@pytest.mark.django_db
@override_settings(BANDIT_BURN_IN=6)
def test_seed__bandit_passes_burn_in_and_later_cohorts_follow_the_moved_weights():
    """Learners join in cohorts of 20; before each cohort the bandit is reweighted from what
    had happened by then: the first reweighting is still in burn-in (equal weights), later
    ones move, and each learner who joined afterwards was drawn with the weights in force when
    they joined (a chi-square test of the later assignments against those weights; user ids,
    and so the buckets, differ from run to run)."""
    from scipy import stats as scipy_stats

    from experiments.models import Assignment, BanditWeightSnapshot, Experiment

    call_command("seed", "--users", "119", "--days", "30", "--seed", "3", stdout=StringIO())
    bandit = Experiment.objects.get(experiment_type="MULTI_ARMED_BANDIT", status="ACTIVE")
    snapshots = list(BanditWeightSnapshot.objects.filter(experiment=bandit).order_by("computed_at"))
    assert len(snapshots) == 8  # before cohorts 2-6, then three more up to now
    assert set(snapshots[0].weights.values()) == {0.25}
    moved = next(s for s in snapshots if len(set(s.weights.values())) > 1)
    assert moved is not snapshots[-1]
    later = list(
        Assignment.objects.filter(experiment=bandit, assigned_at__gte=moved.computed_at)
        .select_related("variant")
        .order_by("assigned_at")
    )
    assert len(later) >= 20
    keys = sorted(moved.weights)
    observed = dict.fromkeys(keys, 0)
    expected = dict.fromkeys(keys, 0.0)
    for assignment in later:
        weights = [s for s in snapshots if s.computed_at <= assignment.assigned_at][-1].weights
        observed[assignment.variant.key] += 1
        for key in keys:
            expected[key] += weights[key]
    # Pool arms expected to get fewer than 5, as a chi-square test needs.
    big = [k for k in keys if expected[k] >= 5]
    small = [k for k in keys if expected[k] < 5]
    obs = [observed[k] for k in big] + ([sum(observed[k] for k in small)] if small else [])
    exp = [expected[k] for k in big] + ([sum(expected[k] for k in small)] if small else [])
    if len(obs) >= 2:
        assert scipy_stats.chisquare(obs, exp).pvalue > 0.001, (observed, expected)
    final = snapshots[-1].weights
    assert max(final.values()) > 0.25


@pytest.mark.django_db
def test_seed__a_holdout_exists_and_is_evaluated():
    from experiments.models import Holdout

    _seed()
    holdout = Holdout.objects.get(name="Personalization holdout")
    assert (holdout.percent, holdout.contexts, holdout.is_active) == (5.0, [], True)
    assert holdout.evaluated_at is not None
    assert "everyone_else" in holdout.results
    _seed()
    assert Holdout.objects.count() == 1


@pytest.mark.django_db
def test_seed__the_platform_shows_with_real_data():
    """Two experiments share ASSESSMENT on halves of its namespace (one targeted at
    beginners), CONTENT has a shipped rollout, a webhook endpoint points at nothing."""
    from experiments.models import Experiment, Rollout, WebhookEndpoint

    _seed()
    shared = list(
        Experiment.objects.filter(context="ASSESSMENT", status="ACTIVE").order_by("namespace_start")
    )
    assert [(e.namespace_start, e.namespace_end) for e in shared] == [(0.0, 0.5), (0.5, 1.0)]
    assert shared[0].targeting == [{"attr": "software_level", "op": "eq", "value": "BEGINNER"}]
    rollout = Rollout.objects.get(is_active=True)
    assert (rollout.context, rollout.strategy.key) == ("CONTENT", "balanced")
    assert WebhookEndpoint.objects.filter(url__contains="127.0.0.1:9").exists()
    _seed()
    assert Rollout.objects.count() == 1
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.django_db
def test_seed__demo_webhooks_failed_deliveries_are_visible():
    """The demo endpoint points at a closed port: seed attempts its deliveries once, so the
    admin shows the attempts, the error and the next retry without waiting for a worker."""
    from experiments.models import WebhookDelivery
    from experiments.seeding import DEMO_WEBHOOK

    report = _seed()
    deliveries = WebhookDelivery.objects.filter(endpoint__name=DEMO_WEBHOOK)
    assert deliveries.exists()
    for delivery in deliveries:
        assert delivery.attempts == 1, delivery.event
        assert delivery.status == "PENDING"
        assert delivery.last_error
        assert delivery.next_attempt_at is not None
        assert delivery.response_code is None
    assert "attempted" in report
    tried = {d.pk: (d.attempts, d.next_attempt_at) for d in deliveries}
    _seed()
    # Tried once: a second seed leaves the attempts made, and tries only what is new.
    again = WebhookDelivery.objects.filter(endpoint__name=DEMO_WEBHOOK)
    assert {d.pk: (d.attempts, d.next_attempt_at) for d in again if d.pk in tried} == tried
    assert set(again.values_list("attempts", flat=True)) == {1}
