"""Ranking content for one learner (issue: recommendations). Pure: numpy, no Django.

Each candidate gets five factors in [0, 1]:

* weakness      1 − rating of the item's skill (a skill never rated counts 0.5);
* difficulty    1 − |difficulty − target| / 4, target = 1 + round(4 × rating);
* format        1 when the strategy's preferred content types include the item's type, else 0;
* style         how well the item's type suits the learning style (the strategy's, or the
                learner's own when the strategy says MIXED and profiling is allowed);
* duration      1 − min(|minutes − daily_minutes| / daily_minutes, 1).

priority = Σ wₖ·factorₖ / Σ wₖ, with weights set by the strategy's `topic_selection`; the
reason names the two strongest weighted factors in plain words. Items completed or declined
in the last 14 days, or already pending, are never candidates (novelty).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

UNRATED = 0.5
FACTORS = ("weakness", "difficulty", "format", "style", "duration")
WEIGHTS_BY_TOPIC_SELECTION = {
    "weakness_first": {
        "weakness": 3.0,
        "difficulty": 2.0,
        "format": 1.0,
        "style": 1.0,
        "duration": 1.0,
    },
    "balanced": {"weakness": 2.0, "difficulty": 2.0, "format": 1.0, "style": 1.0, "duration": 1.0},
    "interest_first": {
        "weakness": 1.0,
        "difficulty": 1.5,
        "format": 2.0,
        "style": 2.0,
        "duration": 1.0,
    },
    "sequential": {
        "weakness": 1.0,
        "difficulty": 3.0,
        "format": 1.0,
        "style": 0.5,
        "duration": 1.0,
    },
}
# How well each content type suits a learning style.
STYLE_AFFINITY = {
    "VISUAL": {"VIDEO": 1.0, "SCENARIO": 0.7, "QUIZ": 0.4, "EXERCISE": 0.4, "ARTICLE": 0.3},
    "AUDITORY": {"VIDEO": 0.9, "SCENARIO": 0.5, "ARTICLE": 0.3, "QUIZ": 0.3, "EXERCISE": 0.3},
    "READING": {"ARTICLE": 1.0, "QUIZ": 0.6, "SCENARIO": 0.5, "EXERCISE": 0.4, "VIDEO": 0.3},
    "KINESTHETIC": {"EXERCISE": 1.0, "SCENARIO": 0.9, "QUIZ": 0.5, "VIDEO": 0.3, "ARTICLE": 0.2},
}


@dataclass(frozen=True)
class Candidate:
    id: int
    title: str
    skill: str
    content_type: str
    difficulty: int
    duration_minutes: int


@dataclass(frozen=True)
class Learner:
    ratings: Mapping[str, float]
    daily_minutes: int
    learning_style: str | None  # None: style is not used (profiling switched off)


@dataclass(frozen=True)
class StrategyParams:
    content_types: Sequence[str]
    learning_style: str
    topic_selection: str


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    score: float
    factors: dict[str, float]
    reason: str


def _style(params: StrategyParams, learner: Learner) -> str | None:
    if learner.learning_style is None:
        return None
    if params.learning_style != "MIXED":
        return params.learning_style
    return learner.learning_style if learner.learning_style != "MIXED" else None


def factor_matrix(
    candidates: Sequence[Candidate], learner: Learner, params: StrategyParams
) -> np.ndarray:
    """One row per candidate, one column per factor (in FACTORS order)."""
    ratings = np.array([learner.ratings.get(c.skill, UNRATED) for c in candidates], dtype=float)
    difficulty = np.array([c.difficulty for c in candidates], dtype=float)
    minutes = np.array([c.duration_minutes for c in candidates], dtype=float)
    target = 1 + np.round(4 * ratings)
    style = _style(params, learner)
    affinity = STYLE_AFFINITY.get(style or "", {})
    daily = max(float(learner.daily_minutes), 1.0)
    return np.column_stack(
        [
            1.0 - ratings,
            1.0 - np.abs(difficulty - target) / 4.0,
            np.array([float(c.content_type in params.content_types) for c in candidates]),
            np.array([affinity.get(c.content_type, 0.5) for c in candidates]),
            1.0 - np.minimum(np.abs(minutes - daily) / daily, 1.0),
        ]
    )


def _describe(factor: str, candidate: Candidate, learner: Learner, params: StrategyParams) -> str:
    rating = learner.ratings.get(candidate.skill)
    skill = candidate.skill.replace("_", " ")
    if factor == "weakness":
        if rating is None:
            return f"practises {skill}, a skill you have not been assessed on yet"
        return f"works on {skill}, one of your weaker skills (rated {rating:.2f})"
    if factor == "difficulty":
        return f"matches your level in {skill} (difficulty {candidate.difficulty} of 5)"
    if factor == "format":
        return f"is a {candidate.content_type.lower()}, a format your current plan favours"
    if factor == "style":
        style = (_style(params, learner) or "mixed").lower()
        return f"suits a {style} learning style"
    return f"fits your {learner.daily_minutes} daily minutes ({candidate.duration_minutes} min)"


def rank(
    candidates: Sequence[Candidate],
    learner: Learner,
    params: StrategyParams,
    *,
    limit: int,
) -> list[Ranked]:
    """The `limit` best candidates, best first (ties by title, then id)."""
    if not candidates or limit <= 0:
        return []
    weights_by_name = WEIGHTS_BY_TOPIC_SELECTION.get(
        params.topic_selection, WEIGHTS_BY_TOPIC_SELECTION["balanced"]
    )
    weights = np.array([weights_by_name[f] for f in FACTORS])
    if _style(params, learner) is None:
        weights[FACTORS.index("style")] = 0.0
    factors = factor_matrix(candidates, learner, params)
    contributions = factors * weights
    scores = contributions.sum(axis=1) / weights.sum()
    order = sorted(
        range(len(candidates)), key=lambda i: (-scores[i], candidates[i].title, candidates[i].id)
    )
    ranked = []
    for i in order[:limit]:
        top = [FACTORS[k] for k in np.argsort(-contributions[i], kind="stable")[:2]]
        phrases = [_describe(f, candidates[i], learner, params) for f in top]
        ranked.append(
            Ranked(
                candidate=candidates[i],
                score=round(float(scores[i]), 6),
                factors={f: round(float(v), 6) for f, v in zip(FACTORS, factors[i], strict=True)},
                reason=f"Recommended because it {phrases[0]} and {phrases[1]}.",
            )
        )
    return ranked


def rank_by_popularity(
    candidates: Sequence[Candidate], popularity: Mapping[int, int], *, limit: int
) -> list[Ranked]:
    """Without personalization: the items most often accepted or completed by everyone."""
    top = max(popularity.values(), default=0) or 1
    order = sorted(candidates, key=lambda c: (-popularity.get(c.id, 0), c.title, c.id))
    return [
        Ranked(
            candidate=c,
            score=round(popularity.get(c.id, 0) / top, 6),
            factors={"popularity": round(popularity.get(c.id, 0) / top, 6)},
            reason=(
                f"Popular with other learners ({popularity.get(c.id, 0)} took it up); "
                "personalization is off for you, so nothing about you was used."
            ),
        )
        for c in order[:limit]
    ]
