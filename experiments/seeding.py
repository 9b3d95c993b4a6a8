"""Seed steps of the experiments app (registered in ExperimentsConfig.ready)."""

from django.conf import settings
from django.db import transaction

from experiments.models import Context, Experiment, Strategy
from experiments.services.decisions import decision_make
from experiments.services.experiments import experiment_create, experiment_start
from experiments.services.strategies import strategy_catalog_load
from personalization.models import User
from personalization.seeding import SeedContext

DEMO_EXPERIMENT = "Mission pacing: balanced vs conservative"


def seed_strategy_catalog(context: SeedContext) -> str:
    created, updated = strategy_catalog_load(
        path=settings.BASE_DIR / "fixtures" / "strategies.json"
    )
    return f"strategy catalog: {created} created, {updated} up to date"


@transaction.atomic
def seed_demo_experiment(context: SeedContext) -> str:
    """An ACTIVE A/B test in MISSION with the demo user assigned."""
    experiment = Experiment.objects.filter(name=DEMO_EXPERIMENT).first()
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
