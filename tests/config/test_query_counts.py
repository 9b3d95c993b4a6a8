"""Every list route of config/api/router.py answers in a number of queries that does not grow
with the rows it lists (no N+1), and stays under a stated maximum.

Each case creates N rows the caller may see, counts the queries of one GET, adds 2N more
and counts again: the two counts must be equal and at most the case's maximum. The maxima
include authentication (token and user), pagination's COUNT and any prefetch."""

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from experiments.models import Decision, Experiment, Strategy, StrategyConfig
from logs.models import AuditEvent
from logs.services import audit_event_record
from outcomes.models import Effectiveness
from personalization.models import Interaction
from personalization.services.skills import skill_assessment_record
from recommendations.models import ContentItem, Recommendation
from recommendations.services.paths import learning_path_create
from tests.experiments.factories import make_experiment
from tests.logs.factories import PersonalizationLogFactory, TranslationLogFactory
from tests.outcomes.factories import outcome_item, record
from tests.personalization.factories import UserFactory

N = 3
PAGE = {"page_size": 200}
pytestmark = pytest.mark.django_db


@dataclass
class World:
    user: Any
    staff: Any
    strategies: dict[tuple[str, str], Strategy]
    content: list[ContentItem]


Builder = Callable[[World, int, int], None]


def _users(world: World, start: int, count: int) -> None:
    UserFactory.create_batch(count)


def _interactions(world: World, start: int, count: int) -> None:
    now = timezone.now()
    Interaction.objects.bulk_create(
        Interaction(
            user=world.user,
            type=Interaction.Type.READING,
            service=f"service-{i % 4}",
            theme=f"theme-{i % 3}",
            rating=1 + i % 5,
            occurred_at=now - datetime.timedelta(hours=i),
        )
        for i in range(start, start + count)
    )


def _strategies(world: World, start: int, count: int) -> None:
    defaults = world.strategies[("CONTENT", "balanced")].default_params
    Strategy.objects.bulk_create(
        Strategy(
            context="CONTENT",
            key=f"extra-{i}",
            name=f"Extra {i}",
            default_params=defaults,
            is_active=False,
        )
        for i in range(start, start + count)
    )


def _configs(world: World, start: int, count: int) -> None:
    # The catalog has 16 strategies: enough for 3N configs of one user, none active.
    strategies = sorted(world.strategies.values(), key=lambda s: s.pk)[start : start + count]
    StrategyConfig.objects.bulk_create(
        StrategyConfig(user=world.user, context=s.context, strategy=s) for s in strategies
    )


def _experiments(world: World, start: int, count: int) -> None:
    for i in range(start, start + count):
        experiment = make_experiment(
            name=f"Experiment {i}",
            start=False,
            variants=[
                ("control", "conservative", 1.0),
                ("treatment", "balanced", 1.0),
                ("third", "pattern_heavy", 1.0),
            ],
            experiment_type=Experiment.Type.MULTIVARIATE,
        )
        # Half of them have a winner, which the list names by its key.
        if i % 2 == 0:
            Experiment.objects.filter(pk=experiment.pk).update(
                winning_variant=experiment.variants.get(key="treatment")
            )


def _decisions(world: World, start: int, count: int) -> None:
    experiment = Experiment.objects.filter(name="Decisions").first() or make_experiment(
        name="Decisions", start=False
    )
    variants = list(experiment.variants.order_by("pk"))
    strategy = world.strategies[("MISSION", "balanced")]
    Decision.objects.bulk_create(
        Decision(
            user=world.user,
            context="MISSION",
            strategy=strategy,
            experiment=experiment,
            variant=variants[i % len(variants)],
            source=Decision.Source.EXPERIMENT,
            propensity=0.5,
            personalization_applied=True,
            latency_ms=1.0,
        )
        for i in range(start, start + count)
    )


def _outcomes(world: World, start: int, count: int) -> None:
    record(
        world.user,
        *(outcome_item(f"event-{i}", context="MISSION") for i in range(start, start + count)),
    )


def _effectiveness(world: World, start: int, count: int) -> None:
    now = timezone.now()
    strategy = world.strategies[("MISSION", "balanced")]
    Effectiveness.objects.bulk_create(
        Effectiveness(
            scope=Effectiveness.Scope.GLOBAL,
            context="MISSION",
            strategy=strategy,
            window_start=now - datetime.timedelta(days=14 * (i + 1)),
            window_end=now - datetime.timedelta(days=14 * i),
            n_personalized=10,
            n_baseline=10,
            sample_size=20,
            calculated_at=now,
        )
        for i in range(start, start + count)
    )


def _content_items(world: World, start: int, count: int) -> None:
    ContentItem.objects.bulk_create(
        ContentItem(
            key=f"extra-{i}",
            title=f"Extra {i}",
            skill="testing",
            content_type=ContentItem.Type.VIDEO,
            difficulty=1 + i % 5,
            duration_minutes=10,
        )
        for i in range(start, start + count)
    )


def _recommendations(world: World, start: int, count: int) -> None:
    Recommendation.objects.bulk_create(
        Recommendation(user=world.user, item=item, priority_score=0.5, reason="r")
        for item in world.content[start : start + count]
    )


def _learning_paths(world: World, start: int, count: int) -> None:
    for i in range(start, start + count):
        learning_path_create(user=world.user, goal=f"Goal {i}", skills=["testing", "debugging"])


def _personalization_logs(world: World, start: int, count: int) -> None:
    PersonalizationLogFactory.create_batch(count, user=world.user)


def _translation_logs(world: World, start: int, count: int) -> None:
    TranslationLogFactory.create_batch(count, user=world.user)


def _audit(world: World, start: int, count: int) -> None:
    with transaction.atomic():
        for i in range(start, start + count):
            audit_event_record(
                actor=world.staff if i % 2 else None,
                action=AuditEvent.Action.EXPERIMENT_UPDATED,
                target_type="experiments.experiment",
                target_id=i,
                changes={"name": {"old": "a", "new": "b"}},
            )


def _log_stats(world: World, start: int, count: int) -> None:
    for i in range(start, start + count):
        PersonalizationLogFactory(user=world.user, chapter_id=f"chapter-{i}")
        TranslationLogFactory(user=world.user, chapter_id=f"chapter-{i}")


def _skills(world: World, start: int, count: int) -> None:
    for i in range(start, start + count):
        skill_assessment_record(user=world.user, skill=f"skill_{i}", score=0.1 * (i % 10))


# (route, caller, builder, maximum number of queries)
CASES: list[tuple[str, str, Builder, int]] = [
    # Authentication (the token with its user) and the page's COUNT are 2 of every count.
    ("/api/v1/users/", "staff", _users, 3),
    ("/api/v1/interactions/", "user", _interactions, 3),
    ("/api/v1/interactions/summary/", "user", _interactions, 5),  # one per figure
    ("/api/v1/strategies/", "user", _strategies, 3),
    ("/api/v1/configs/", "user", _configs, 3),  # strategies joined
    ("/api/v1/experiments/", "staff", _experiments, 4),  # winner joined, variants prefetched
    ("/api/v1/decisions/", "user", _decisions, 3),  # strategy and variant joined
    ("/api/v1/outcomes/", "user", _outcomes, 3),
    ("/api/v1/effectiveness/", "user", _effectiveness, 3),  # strategy joined
    ("/api/v1/content-items/", "user", _content_items, 3),
    ("/api/v1/recommendations/", "user", _recommendations, 3),  # item joined
    ("/api/v1/learning-paths/", "user", _learning_paths, 5),  # stages, items prefetched
    ("/api/v1/logs/personalization/", "user", _personalization_logs, 3),
    ("/api/v1/logs/translation/", "user", _translation_logs, 3),
    ("/api/v1/audit/", "staff", _audit, 3),
    ("/api/v1/logs/stats/", "staff", _log_stats, 3),  # one GROUP BY per kind, no COUNT
    ("/api/v1/me/skills/", "user", _skills, 3),  # profile and recent assessments
]


def _rows(body: Any) -> int:
    """How many rows the answer lists, so a case cannot pass by listing nothing."""
    if isinstance(body, dict) and "results" in body:
        return len(body["results"])
    if isinstance(body, dict) and "recent_assessments" in body:
        return len(body["recent_assessments"])
    if isinstance(body, dict) and "personalization" in body:
        return len(body["personalization"])
    if isinstance(body, dict) and "engagement_per_day" in body:
        return sum(day["count"] for day in body["engagement_per_day"])
    raise AssertionError(f"unexpected answer: {body!r}")


@pytest.mark.parametrize(
    ("route", "caller", "build", "maximum"),
    CASES,
    ids=[case[0].removeprefix("/api/v1/").rstrip("/") for case in CASES],
)
def test_list__queries_constant_in_rows(
    route,
    caller,
    build,
    maximum,
    user,
    staff_user,
    user_client,
    staff_client,
    strategy_catalog,
    content_catalog,
    django_assert_max_num_queries,
):
    world = World(user=user, staff=staff_user, strategies=strategy_catalog, content=content_catalog)
    client = {"user": user_client, "staff": staff_client}[caller]
    counts, sizes = [], []
    for start, count in ((0, N), (N, 2 * N)):
        build(world, start, count)
        client.get(route, PAGE)  # warm caches (catalogs, throttles) as a running server would be
        with django_assert_max_num_queries(maximum) as captured:
            response = client.get(route, PAGE)
        assert response.status_code == 200, response.content
        counts.append(len(captured.captured_queries))
        sizes.append(_rows(response.json()))
    assert sizes[1] > sizes[0], sizes
    assert counts[0] == counts[1], f"{route}: {counts[0]} queries for N rows, {counts[1]} for 3N"
