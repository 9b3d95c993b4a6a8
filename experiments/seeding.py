"""Seed steps of the experiments app (registered in ExperimentsConfig.ready)."""

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from experiments.models import Context, Experiment, Holdout, Strategy
from experiments.services.decisions import decision_make
from experiments.services.experiments import experiment_create, experiment_start
from experiments.services.holdouts import holdout_create
from experiments.services.strategies import strategy_catalog_load
from logs.models import AuditEvent
from logs.selectors import audit_system_target_ids
from personalization.models import User
from personalization.seeding import SeedContext

DEMO_EXPERIMENT = "Mission pacing: balanced vs conservative"
# The demo bandit of the outcomes app's seed step (its name lives here so that every step
# knows which experiments seed may own).
DEMO_BANDIT = "Session pacing bandit"
SEED_EXPERIMENTS = (DEMO_EXPERIMENT, DEMO_BANDIT)
DEMO_HOLDOUT = "Personalization holdout"


def seed_owned_experiments(names: Iterable[str] = SEED_EXPERIMENTS) -> list[Experiment]:
    """The experiments of these names that seed created. Seed creates its demo experiments
    without an actor, and that creation is audited; staff create theirs through the API or
    the admin, audited with their name. An experiment that merely has a demo name is not
    seed's: seed never changes it (DESIGN.md §9)."""
    candidates = list(Experiment.objects.filter(name__in=list(names)).order_by("pk"))
    created_by_seed = audit_system_target_ids(
        action=AuditEvent.Action.EXPERIMENT_CREATED,
        target_type=Experiment._meta.label_lower,
        target_ids=[experiment.pk for experiment in candidates],
    )
    return [experiment for experiment in candidates if str(experiment.pk) in created_by_seed]


def seed_experiment_get(name: str) -> tuple[Experiment | None, bool]:
    """(seed's experiment of this name or None, whether the name is free to create it)."""
    owned = seed_owned_experiments([name])
    if owned:
        return owned[0], False
    return None, not Experiment.objects.filter(name=name).exists()


def seed_strategy_catalog(context: SeedContext) -> str:
    created, updated = strategy_catalog_load(
        path=settings.BASE_DIR / "fixtures" / "strategies.json"
    )
    return f"strategy catalog: {created} created, {updated} up to date"


@transaction.atomic
def seed_demo_experiment(context: SeedContext) -> str:
    """An ACTIVE A/B test in MISSION with the demo user assigned."""
    experiment, name_free = seed_experiment_get(DEMO_EXPERIMENT)
    if experiment is None and not name_free:
        return f"demo experiment: {DEMO_EXPERIMENT!r} exists, not created by seed; left alone"
    if experiment is None:
        strategies = {s.key: s for s in Strategy.objects.filter(context=Context.MISSION)}
        experiment = experiment_create(
            actor=None,
            data={
                "name": DEMO_EXPERIMENT,
                "description": "Does a balanced mission plan beat the conservative baseline?",
                "experiment_type": Experiment.Type.AB_TEST,
                "context": Context.MISSION,
                "min_participants": 20,
                "min_duration_days": 14,
            },
            variants=[
                {
                    "key": "control",
                    "name": "Conservative",
                    "strategy": strategies["conservative"],
                    "weight": 1.0,
                    "is_control": True,
                },
                {
                    "key": "balanced",
                    "name": "Balanced",
                    "strategy": strategies["balanced"],
                    "weight": 1.0,
                },
            ],
        )
    busy = Experiment.objects.filter(context=Context.MISSION, status=Experiment.Status.ACTIVE)
    if experiment.status == Experiment.Status.DRAFT and not busy.exists():
        experiment = experiment_start(actor=None, experiment=experiment)
    demo = User.objects.get(username=settings.SEED_DEMO_USERNAME)
    if (
        experiment.status == Experiment.Status.ACTIVE
        and not experiment.assignments.filter(user=demo).exists()
    ):
        decision_make(user=demo, context=Context.MISSION)
    assigned = experiment.assignments.filter(user=demo).select_related("variant").first()
    where = f"demo user in {assigned.variant.key!r}" if assigned else "demo user not assigned"
    return f"demo experiment: {experiment.status}, {where}"


@transaction.atomic
def seed_demo_holdout(context: SeedContext) -> str:
    """A 5% holdout over every context, so the overview shows what personalization as a
    whole is worth. Created once; a holdout of that name that seed did not create is left
    alone, and seed never changes one."""
    existing = Holdout.objects.filter(name=DEMO_HOLDOUT).first()
    if existing is not None:
        return f"demo holdout: {DEMO_HOLDOUT!r} exists ({existing.percent:g}%); left alone"
    holdout = holdout_create(actor=None, data={"name": DEMO_HOLDOUT, "percent": 5.0})
    return f"demo holdout: {holdout.percent:g}% of learners in every context"
