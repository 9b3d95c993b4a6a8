"""Seed steps of the outcomes app: a demo bandit experiment, and weeks of decisions and
outcomes by synthetic users with known true strategy effects, so that windows, bandits and
experiment results show real numbers after `make run`."""

import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from experiments.models import Assignment, Context, Decision, Experiment, Holdout, Strategy
from experiments.seeding import (
    DEMO_BANDIT,
    seed_experiment_get,
    seed_owned_experiments,
    seed_owned_holdout,
)
from experiments.services.decisions import decision_make
from experiments.services.experiments import experiment_create, experiment_start
from outcomes.models import Outcome
from outcomes.services.effectiveness import effectiveness_windows_compute
from outcomes.services.evaluation import bandit_reweight, experiment_evaluate
from outcomes.services.holdouts import holdout_evaluate
from outcomes.services.ingest import outcome_record_many
from outcomes.services.rewards import bandit_rewards_recompute
from outcomes.windows import WindowIndex
from personalization.models import Preferences, User
from personalization.seeding import SeedContext

# The true effect of each strategy on every score, over a baseline of 0.45 (DESIGN.md §9).
TRUE_EFFECTS = {
    "conservative": 0.0,
    "balanced": 0.06,
    "pattern_heavy": 0.10,
    "prediction_heavy": 0.03,
}
BASE_SCORE = 0.45
NOISE = 0.12
CONTEXTS = (Context.MISSION, Context.SESSION)
SOFTWARE_LEVELS = ("BEGINNER", "INTERMEDIATE", "ADVANCED")
# Learners join in cohorts of this size over the first JOIN_SPAN of the history, and seed's
# bandits are reweighted before each cohort from what had happened by then: the first
# cohorts carry the bandit past its burn-in, the later ones are allocated by the moved
# weights, as they would have been live.
COHORT_SIZE = 20
JOIN_SPAN = 0.6
OUTCOME_TYPES = {Context.MISSION: "MISSION_COMPLETED", Context.SESSION: "SESSION_COMPLETED"}


@transaction.atomic
def seed_demo_bandit(context: SeedContext) -> str:
    """An ACTIVE Thompson-sampling bandit over the four SESSION strategies."""
    experiment, name_free = seed_experiment_get(DEMO_BANDIT)
    if experiment is None and not name_free:
        return f"demo bandit: {DEMO_BANDIT!r} exists, not created by seed; left alone"
    if experiment is None:
        strategies = {s.key: s for s in Strategy.objects.filter(context=Context.SESSION)}
        experiment = experiment_create(
            actor=None,
            data={
                "name": DEMO_BANDIT,
                "description": "Which session pacing works best? Traffic follows the evidence.",
                "experiment_type": Experiment.Type.MULTI_ARMED_BANDIT,
                "context": Context.SESSION,
                "algorithm": Experiment.Algorithm.THOMPSON,
            },
            variants=[
                {
                    "key": key,
                    "name": strategies[key].name,
                    "strategy": strategies[key],
                    "is_control": key == "conservative",
                }
                for key in ("conservative", "balanced", "pattern_heavy", "prediction_heavy")
            ],
        )
    busy = Experiment.objects.filter(context=Context.SESSION, status=Experiment.Status.ACTIVE)
    if experiment.status == Experiment.Status.DRAFT and not busy.exists():
        experiment = experiment_start(actor=None, experiment=experiment)
    return f"demo bandit: {experiment.status}"


def _history(
    user: User,
    *,
    prefix: str,
    days: int,
    joined: int,
    rng: np.random.Generator,
    now: datetime.datetime,
    strategy_keys: dict[int, str],
    contexts: tuple[Context, ...],
    experiments: list[Experiment],
    enrolled: tuple[Context, ...] = (),
) -> tuple[int, int]:
    """From the day the learner joined, every other day a decision per context and the
    outcome it led to; the learner's assignments to `experiments` date from that day."""
    if not contexts or Outcome.objects.filter(user=user, event_id__startswith=prefix).exists():
        return 0, 0
    offset = float(rng.normal(0.0, 0.05))  # this learner is a little better or worse
    items: list[dict[str, Any]] = []
    backdated: list[Decision] = []
    if Context.ASSESSMENT in enrolled:
        # One assessment decision on joining: the two experiments sharing ASSESSMENT show
        # who went where (their outcomes are not simulated).
        first = decision_make(user=user, context=Context.ASSESSMENT, rng=rng).decision
        first.created_at = now - datetime.timedelta(days=days - joined)
        backdated.append(first)
    for day in range(joined, days, 2):
        for context in contexts:
            decision = decision_make(user=user, context=context, rng=rng).decision
            effect = TRUE_EFFECTS.get(strategy_keys.get(decision.strategy_id, ""), 0.0)
            occurred = now - datetime.timedelta(days=days - day, hours=float(rng.uniform(1, 20)))
            decision.created_at = occurred - datetime.timedelta(minutes=5)
            backdated.append(decision)

            def score() -> float:
                value = BASE_SCORE + effect + offset + rng.normal(0.0, NOISE)  # noqa: B023
                return round(float(np.clip(value, 0.0, 1.0)), 4)

            items.append(
                {
                    "event_id": f"{prefix}{context.lower()}-{day}",
                    "decision": decision.pk,
                    "outcome_type": OUTCOME_TYPES[context],
                    "occurred_at": occurred,
                    "retention_score": score(),
                    "completion_rate": score(),
                    "engagement_score": score(),
                    "session_duration_minutes": round(float(rng.uniform(10, 60)), 1),
                }
            )
    Decision.objects.bulk_update(backdated, ["created_at"])
    Assignment.objects.filter(user=user, experiment__in=experiments).update(
        assigned_at=now - datetime.timedelta(days=days - joined)
    )
    outcome_record_many(user=user, items=items)
    return len(backdated), len(items)


def _join_days(learners: int, days: int) -> list[int]:
    """The (even) day of the history each learner joins on, cohort by cohort."""
    cohorts = max(1, -(-learners // COHORT_SIZE))
    step = JOIN_SPAN * days / max(cohorts - 1, 1)
    return [2 * round(index // COHORT_SIZE * step / 2) for index in range(learners)]


def seed_outcome_history(context: SeedContext) -> str:
    """`--users N --days D --seed S`: synthetic learners (and the demo user) with D days of
    decisions and outcomes, then one run of every recomputation."""
    users_wanted = context.option("users", 160)
    days = context.option("days", 42)
    seed = context.option("seed", 7)
    rng = np.random.default_rng(seed)
    now = timezone.now()
    levels = ["LOW", "MEDIUM", "MEDIUM", "HIGH"]
    learners = [User.objects.get(username=settings.SEED_DEMO_USERNAME)]
    for index in range(users_wanted):
        username = f"learner-{seed}-{index:03d}"
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "external_id": username,
                "display_name": f"Learner {index + 1}",
                # Targeting has something to read: the beginners' experiment enrols a third.
                "software_background": {"level": SOFTWARE_LEVELS[index % len(SOFTWARE_LEVELS)]},
            },
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            Preferences.objects.get_or_create(
                user=user, defaults={"personalization_level": levels[index % len(levels)]}
            )
        learners.append(user)
    # Seed changes only its own experiments (DESIGN.md §9): synthetic learners make no
    # decisions in a context where someone else's experiment is running, so they are never
    # enrolled in it and add nothing to its results.
    own = [e for e in seed_owned_experiments() if e.status == Experiment.Status.ACTIVE]
    others = set(
        Experiment.objects.filter(status=Experiment.Status.ACTIVE, context__in=CONTEXTS)
        .exclude(pk__in=[e.pk for e in own])
        .values_list("context", flat=True)
    )
    contexts = tuple(c for c in CONTEXTS if c not in others)
    foreign_assessment = (
        Experiment.objects.filter(status=Experiment.Status.ACTIVE, context=Context.ASSESSMENT)
        .exclude(pk__in=[e.pk for e in own])
        .exists()
    )
    enrolled = () if foreign_assessment else (Context.ASSESSMENT,)
    skipped = f"; no history in {', '.join(sorted(others))} (others' experiments)" if others else ""
    decisions = outcomes = 0
    strategy_keys = dict(Strategy.objects.values_list("id", "key"))
    # Seed's experiments have been running as long as the history; no other row is moved.
    started = now - datetime.timedelta(days=days)
    for experiment in own:
        if experiment.start_date is None or experiment.start_date > started:
            Experiment.objects.filter(pk=experiment.pk).update(start_date=started)
    holdout = seed_owned_holdout()
    if holdout is not None and (holdout.started_at is None or holdout.started_at > started):
        Holdout.objects.filter(pk=holdout.pk).update(started_at=started)
    bandits = [e for e in own if e.experiment_type == Experiment.Type.MULTI_ARMED_BANDIT]
    joins = _join_days(len(learners), days)
    reweighed: set[int] = set()
    for number, (user, joined) in enumerate(zip(learners, joins, strict=True), start=1):
        if joined and joined not in reweighed:
            reweighed.add(joined)
            at = started + datetime.timedelta(days=joined)
            for bandit in bandits:
                bandit_reweight(bandit, now=at, as_of=at, seed=seed + joined)
        with transaction.atomic():
            made, stored = _history(
                user,
                prefix=f"seed-{seed}-",
                days=days,
                joined=joined,
                rng=rng,
                now=now,
                strategy_keys=strategy_keys,
                contexts=contexts,
                experiments=own,
                enrolled=enrolled,
            )
        decisions, outcomes = decisions + made, outcomes + stored
        if number % 10 == 0 or number == len(learners):
            context.progress(f"learner {number}/{len(learners)}: {outcomes} outcomes so far")
    if not outcomes:
        return f"history: {len(learners)} learners, already seeded{skipped}"
    context.progress("recomputing rewards, windows, bandit weights and results")
    bandit_rewards_recompute()
    windows = set(
        Outcome.objects.annotate(
            window=WindowIndex("occurred_at", days=settings.EFFECTIVENESS_WINDOW_DAYS)
        )
        .values_list("window", flat=True)
        .distinct()
        .order_by()
    )
    effect = effectiveness_windows_compute(windows=windows)
    # After the last cohort, a few more reweightings up to now, so the allocation chart goes
    # on to today; others' bandits are reweighted by the periodic task, never back-dated here.
    last = started + datetime.timedelta(days=joins[-1])
    for step in range(1, 4):
        at = last + (now - last) * step / 3
        for bandit in bandits:
            bandit_reweight(bandit, now=at, as_of=at, seed=seed + days + step)
    for experiment in own:
        experiment_evaluate(experiment=experiment, now=now)
    holdout = seed_owned_holdout()
    if holdout is not None and holdout.is_active:
        holdout_evaluate(holdout=holdout, now=now)
    return (
        f"history: {len(learners)} learners, {decisions} new decisions, {outcomes} new outcomes; "
        f"{effect['global']} GLOBAL and {effect['user']} USER effectiveness rows; "
        f"{len(own)} experiment(s) evaluated{skipped}"
    )
