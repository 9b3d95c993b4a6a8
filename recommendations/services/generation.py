"""Generating recommendations through the decide call (DESIGN.md §4) in the context the
client asks for: the decision, its consent checks, experiments and bandit are that
context's, and the chosen strategy's parameters steer the ranking."""

import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from experiments.models import Context, Decision
from experiments.services.decisions import decision_make
from personalization.selectors import preferences_get, skill_profile_get
from recommendations import ranking
from recommendations.models import ContentItem, Recommendation

NOVELTY_DAYS = 14
MAX_LIMIT = 20
Status = Recommendation.Status

# How each context's strategy parameters (experiments/params.py) steer the ranking, which
# speaks CONTENT's terms: preferred formats, a learning style and a topic selection.
FORMATS_BY_QUESTION_TYPE = {
    "multiple_choice": "QUIZ",
    "short_answer": "QUIZ",
    "practical": "EXERCISE",
    "scenario": "SCENARIO",
}
MISSION_FORMATS = ["EXERCISE", "SCENARIO"]  # a mission is something to do
TOPICS_BY_DIFFICULTY = {
    "easy": "sequential",
    "medium": "balanced",
    "hard": "weakness_first",
    "adaptive": "balanced",
}
TOPICS_BY_SEQUENCE = {
    "linear": "sequential",
    "spaced": "weakness_first",  # come back to what is weak
    "interleaved": "balanced",
    "adaptive": "balanced",
}


def ranking_params(context: str, params: dict[str, Any]) -> ranking.StrategyParams:
    """The ranking's parameters from the decision's parameters in `context`. Outside
    CONTENT the learning style is the learner's own (MIXED): missions favour exercises and
    scenarios, assessments the formats of their question types, and a session's pacing
    names no format; difficulty or sequencing chooses the topic selection."""
    if context == Context.CONTENT:
        return ranking.StrategyParams(
            content_types=params.get("content_types", []),
            learning_style=params.get("learning_style", "MIXED"),
            topic_selection=params.get("topic_selection", "balanced"),
        )
    if context == Context.MISSION:
        formats = MISSION_FORMATS
        topics = TOPICS_BY_DIFFICULTY.get(params.get("difficulty", ""), "balanced")
    elif context == Context.ASSESSMENT:
        question_types = params.get("question_types", [])
        formats = sorted(
            {FORMATS_BY_QUESTION_TYPE[t] for t in question_types if t in FORMATS_BY_QUESTION_TYPE}
        )
        topics = TOPICS_BY_DIFFICULTY.get(params.get("difficulty", ""), "balanced")
    else:
        formats = []
        topics = TOPICS_BY_SEQUENCE.get(params.get("content_sequence", ""), "balanced")
    return ranking.StrategyParams(
        content_types=formats, learning_style="MIXED", topic_selection=topics
    )


def _candidates(*, user: Any, now: datetime.datetime) -> list[ranking.Candidate]:
    """Active items, minus those pending for the user or completed or declined by them in
    the last 14 days. Two queries whatever the catalog's size."""
    cutoff = now - datetime.timedelta(days=NOVELTY_DAYS)
    recent = Recommendation.objects.filter(user=user).filter(
        Q(status=Status.PENDING)
        | Q(status=Status.COMPLETED, completed_at__gte=cutoff)
        | Q(status=Status.DECLINED, responded_at__gte=cutoff)
    )
    rows = (
        ContentItem.objects.filter(is_active=True)
        .exclude(pk__in=recent.values("item_id"))
        .values_list("id", "title", "skill", "content_type", "difficulty", "duration_minutes")
    )
    return [ranking.Candidate(*row) for row in rows]


def _popularity() -> dict[int, int]:
    return dict(
        Recommendation.objects.filter(status__in=[Status.ACCEPTED, Status.COMPLETED])
        .values("item_id")
        .annotate(n=Count("id"))
        .values_list("item_id", "n")
        .order_by()
    )


@transaction.atomic
def recommendations_generate(
    *, user: Any, context: str = Context.CONTENT, limit: int = 5
) -> tuple[Decision, list[Recommendation]]:
    """Ask the decide call which strategy to use in `context`, rank the candidates with its
    parameters (or by popularity when personalization is off for the user in that context)
    and store the best `limit` as PENDING recommendations with their reasons."""
    if context not in Context.values:
        raise ValidationError({"context": f"Unknown context {context!r}."})
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError({"limit": f"Ask for 1 to {MAX_LIMIT} recommendations."})
    now = timezone.now()
    result = decision_make(user=user, context=context)
    decision = result.decision
    candidates = _candidates(user=user, now=now)
    if decision.source == Decision.Source.DISABLED:
        ranked = ranking.rank_by_popularity(candidates, _popularity(), limit=limit)
    else:
        preferences = preferences_get(user=user)
        learner = ranking.Learner(
            ratings=skill_profile_get(user=user).skill_ratings,
            daily_minutes=preferences.daily_minutes,
            learning_style=(
                preferences.learning_style if user.learning_style_profiling_enabled else None
            ),
        )
        ranked = ranking.rank(
            candidates, learner, ranking_params(context, decision.params), limit=limit
        )
    strategy_key = result.strategy.key
    Recommendation.objects.bulk_create(
        [
            Recommendation(
                user=user,
                item_id=entry.candidate.id,
                context=context,
                decision=decision,
                strategy_variant=strategy_key,
                priority_score=entry.score,
                reason=entry.reason,
            )
            for entry in ranked
        ],
        ignore_conflicts=True,  # a concurrent request may have made the same item pending
    )
    created = list(
        Recommendation.objects.filter(decision=decision)
        .select_related("item")
        .order_by("-priority_score", "id")
    )
    return decision, created
