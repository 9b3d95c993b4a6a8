"""Skill ratings from assessment history (DESIGN.md §3, SkillProfile). Pure: numpy only.

* rating of a skill = exponentially weighted average of its scores in time order, the newest
  with weight 0.5: r₁ = x₁, rₖ = 0.5·xₖ + 0.5·rₖ₋₁. In closed form, for n scores,
  r = 0.5ⁿ⁻¹·x₁ + Σₖ₌₂..ₙ 0.5ⁿ⁻ᵏ⁺¹·xₖ.
* weaknesses = skills rated below 0.5, weakest first (ties by name).
* learning velocity = mean, over the skills assessed in the last 8 weeks, of the change of the
  rating per week: (rating now − rating at the start) / weeks elapsed, where the start is the
  rating just before the window (at the window's start) or, for a skill first assessed inside
  the window, its first score (at that assessment); weeks elapsed are at least one.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NEWEST_WEIGHT = 0.5
WEAKNESS_THRESHOLD = 0.5
VELOCITY_WINDOW_WEEKS = 8
SECONDS_PER_WEEK = 7 * 24 * 3600.0


@dataclass(frozen=True)
class SkillHistory:
    """One skill's scores in time order, with their times as POSIX seconds."""

    skill: str
    scores: Sequence[float] | np.ndarray
    times: Sequence[float] | np.ndarray


@dataclass(frozen=True)
class SkillSummary:
    ratings: dict[str, float]
    weaknesses: list[str]
    learning_velocity: float | None


def ewma_rating(scores: Sequence[float] | np.ndarray) -> float:
    """The exponentially weighted rating of scores in time order (newest last)."""
    values = np.asarray(scores, dtype=float)
    n = values.size
    if n == 0:
        raise ValueError("a rating needs at least one score")
    weights = NEWEST_WEIGHT ** np.arange(n, 0, -1, dtype=float)  # 0.5ⁿ … 0.5¹
    weights[0] *= 2  # the oldest score carries the remaining mass 0.5ⁿ⁻¹
    return float(np.dot(weights, values))


def weaknesses(ratings: dict[str, float]) -> list[str]:
    weak = [(rating, skill) for skill, rating in ratings.items() if rating < WEAKNESS_THRESHOLD]
    return [skill for _rating, skill in sorted(weak)]


def skill_velocity(history: SkillHistory, *, now: float) -> float | None:
    """Change of one skill's rating per week over the window; None when it was not assessed
    inside the window."""
    scores = np.asarray(history.scores, dtype=float)
    times = np.asarray(history.times, dtype=float)
    window_start = now - VELOCITY_WINDOW_WEEKS * SECONDS_PER_WEEK
    inside = times >= window_start
    if not inside.any():
        return None
    before = ~inside
    if before.any():
        start_rating, start_time = ewma_rating(scores[before]), window_start
    else:
        start_rating, start_time = float(scores[0]), float(times[0])
    weeks = max((float(times[-1]) - start_time) / SECONDS_PER_WEEK, 1.0)
    return (ewma_rating(scores) - start_rating) / weeks


def histories_from_arrays(
    skills: Sequence[str], scores: Sequence[float], times: Sequence[float]
) -> list[SkillHistory]:
    """Split parallel arrays sorted by (skill, time) into one history per skill."""
    if len(skills) == 0:
        return []
    names, starts = np.unique(np.asarray(skills, dtype=object), return_index=True)
    order = np.argsort(starts)
    names, starts = names[order], starts[order]
    score_groups = np.split(np.asarray(scores, dtype=float), starts[1:])
    time_groups = np.split(np.asarray(times, dtype=float), starts[1:])
    return [
        SkillHistory(skill=str(name), scores=group_scores, times=group_times)
        for name, group_scores, group_times in zip(names, score_groups, time_groups, strict=True)
    ]


def summarize(histories: Sequence[SkillHistory], *, now: float) -> SkillSummary:
    ratings = {h.skill: ewma_rating(h.scores) for h in histories if len(h.scores)}
    velocities = [
        v for v in (skill_velocity(h, now=now) for h in histories if len(h.scores)) if v is not None
    ]
    return SkillSummary(
        ratings=ratings,
        weaknesses=weaknesses(ratings),
        learning_velocity=float(np.mean(velocities)) if velocities else None,
    )
