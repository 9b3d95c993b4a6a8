"""Seed steps of the experiments app (registered in ExperimentsConfig.ready)."""

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from experiments.models import (
    Context,
    Experiment,
    Holdout,
    Rollout,
    Strategy,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from experiments.services.decisions import decision_make
from experiments.services.experiments import (
    experiment_complete,
    experiment_create,
    experiment_start,
    namespace_overlap,
)
from experiments.services.holdouts import holdout_create
from experiments.services.rollouts import experiment_ship
from experiments.services.strategies import strategy_catalog_load
from experiments.services.webhooks import webhook_delivery_attempt, webhook_endpoint_create
from logs.models import AuditEvent
from logs.selectors import audit_system_target_ids
from personalization.models import User
from personalization.seeding import SeedContext

DEMO_EXPERIMENT = "Mission pacing: balanced vs conservative"
# The demo bandit of the outcomes app's seed step (its name lives here so that every step
# knows which experiments seed may own).
DEMO_BANDIT = "Session pacing bandit"
# Two experiments sharing the ASSESSMENT context on halves of its namespace, one targeted at
# beginners, and a CONTENT experiment whose variant was shipped as the context's rollout.
DEMO_TARGETED = "Assessment: question mix for beginners"
DEMO_NEIGHBOUR = "Assessment: difficulty ramp"
DEMO_SHIPPED = "Content mix: balanced vs conservative"
SEED_EXPERIMENTS = (DEMO_EXPERIMENT, DEMO_BANDIT, DEMO_TARGETED, DEMO_NEIGHBOUR, DEMO_SHIPPED)
DEMO_HOLDOUT = "Personalization holdout"
DEMO_WEBHOOK = "Demo receiver (nothing listens here)"
DEMO_WEBHOOK_URL = "http://127.0.0.1:9/attune-demo"
# Deliveries of the demo endpoint seed tries itself per run (each fails at once).
DEMO_WEBHOOK_ATTEMPTS = 50


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


def _two_variant_experiment(
    name: str, context: str, treatment: str, **fields: Any
) -> tuple[Experiment | None, str]:
    experiment, name_free = seed_experiment_get(name)
    if experiment is None and not name_free:
        return None, f"{name!r} exists, not created by seed; left alone"
    if experiment is None:
        strategies = {s.key: s for s in Strategy.objects.filter(context=context)}
        experiment = experiment_create(
            actor=None,
            data={"name": name, "experiment_type": Experiment.Type.AB_TEST, "context": context}
            | fields,
            variants=[
                {
                    "key": "control",
                    "name": strategies["conservative"].name,
                    "strategy": strategies["conservative"],
                    "is_control": True,
                },
                {
                    "key": treatment,
                    "name": strategies[treatment].name,
                    "strategy": strategies[treatment],
                },
            ],
        )
    return experiment, ""


@transaction.atomic
def seed_demo_platform(context: SeedContext) -> str:
    """What an experimentation platform shows: two experiments sharing ASSESSMENT on halves of
    its namespace (one targeted at beginners), a CONTENT experiment shipped as the context's
    rollout, and a webhook endpoint where nothing listens, so failed deliveries are visible
    (created first, so the events of this step's experiments are delivered to it)."""
    notes = []
    if not WebhookEndpoint.objects.filter(name=DEMO_WEBHOOK).exists():
        try:
            webhook_endpoint_create(
                actor=None,
                data={
                    "name": DEMO_WEBHOOK,
                    "url": DEMO_WEBHOOK_URL,
                    "events": [e for e in WebhookEvent.values if e != WebhookEvent.PING],
                },
            )
            notes.append("webhook endpoint at a closed port")
        except ValidationError:
            notes.append("no demo webhook (private addresses refused here)")
    for name, treatment, start, end, targeting in (
        (
            DEMO_TARGETED,
            "pattern_heavy",
            0.0,
            0.5,
            [{"attr": "software_level", "op": "eq", "value": "BEGINNER"}],
        ),
        (DEMO_NEIGHBOUR, "prediction_heavy", 0.5, 1.0, []),
    ):
        experiment, note = _two_variant_experiment(
            name,
            Context.ASSESSMENT,
            treatment,
            namespace_start=start,
            namespace_end=end,
            targeting=targeting,
            description="Two experiments share the assessment context on disjoint halves.",
        )
        if experiment is None:
            notes.append(note)
            continue
        if experiment.status == Experiment.Status.DRAFT and namespace_overlap(experiment) is None:
            experiment = experiment_start(actor=None, experiment=experiment)
        notes.append(f"{experiment.name}: {experiment.status}")
    shipped, note = _two_variant_experiment(
        DEMO_SHIPPED, Context.CONTENT, "balanced", description="Shipped: balanced won."
    )
    if shipped is not None and shipped.shipped_at is None:
        if shipped.status == Experiment.Status.DRAFT and namespace_overlap(shipped) is None:
            shipped = experiment_start(actor=None, experiment=shipped)
        if shipped.status == Experiment.Status.ACTIVE:
            shipped = experiment_complete(actor=None, experiment=shipped, force=True)
        if not Rollout.objects.filter(context=Context.CONTENT, is_active=True).exists():
            experiment_ship(actor=None, experiment=shipped, variant="balanced")
    rollout = Rollout.objects.filter(context=Context.CONTENT, is_active=True).first()
    notes.append(f"CONTENT rollout: {rollout.strategy.name if rollout else 'none'}")
    return "demo platform: " + "; ".join(notes)


def seed_owned_holdout() -> Holdout | None:
    """The demo holdout if seed created it (created without an actor, audited)."""
    holdout = Holdout.objects.filter(name=DEMO_HOLDOUT).first()
    if holdout is None:
        return None
    created_by_seed = audit_system_target_ids(
        action=AuditEvent.Action.HOLDOUT_CREATED,
        target_type=Holdout._meta.label_lower,
        target_ids=[holdout.pk],
    )
    return holdout if str(holdout.pk) in created_by_seed else None


def seed_owned_webhook() -> WebhookEndpoint | None:
    """The demo endpoint if seed created it (created without an actor, audited)."""
    endpoint = WebhookEndpoint.objects.filter(name=DEMO_WEBHOOK).first()
    if endpoint is None:
        return None
    created_by_seed = audit_system_target_ids(
        action=AuditEvent.Action.WEBHOOK_CHANGED,
        target_type=WebhookEndpoint._meta.label_lower,
        target_ids=[endpoint.pk],
    )
    return endpoint if str(endpoint.pk) in created_by_seed else None


def seed_demo_webhook_deliveries(context: SeedContext) -> str:
    """Attempt once, now, the demo endpoint's deliveries nobody has tried yet, as a worker
    would: the POST to the closed port fails at once, so the admin shows each delivery's
    attempt, its error and its next retry without waiting for a worker. Deliveries already
    tried are left to the retry schedule (a repeated seed does not add attempts), and an
    endpoint of that name that seed did not create is never called. Runs outside a
    transaction: each attempt is its own unit (claim, POST, record)."""
    endpoint = seed_owned_webhook()
    if endpoint is None:
        return "demo webhook deliveries: no demo endpoint"
    untried = list(
        WebhookDelivery.objects.filter(
            endpoint=endpoint, status=WebhookDelivery.Status.PENDING, attempts=0
        )
        .order_by("id")
        .values_list("id", flat=True)[:DEMO_WEBHOOK_ATTEMPTS]
    )
    statuses = [webhook_delivery_attempt(delivery_id=delivery_id) for delivery_id in untried]
    attempted = [status for status in statuses if status is not None]
    if not attempted:
        return "demo webhook deliveries: none new to attempt"
    retrying = sum(status == WebhookDelivery.Status.PENDING for status in attempted)
    return (
        f"demo webhook deliveries: {len(attempted)} attempted once, {retrying} failed and "
        "waiting for a retry"
    )
