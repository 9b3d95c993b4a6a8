"""The JSON the API exchanges, as typed dictionaries (DESIGN.md §3, §4, §7).

Answers are plain dicts at run time, so a field the server adds later is kept, not refused;
the types say which keys a caller can rely on."""

from __future__ import annotations

import datetime
from typing import Any, Literal, NotRequired, TypedDict

Context = Literal["MISSION", "CONTENT", "ASSESSMENT", "SESSION"]
OutcomeType = Literal[
    "MISSION_COMPLETED", "SESSION_COMPLETED", "ASSESSMENT_COMPLETED", "CONTENT_ENGAGED"
]
DecisionSource = Literal["DISABLED", "HOLDOUT", "EXPERIMENT", "BANDIT", "ROLLOUT", "BASELINE"]


class StrategyRef(TypedDict):
    key: str
    name: str


class Decision(TypedDict):
    """The answer of `POST decisions/` (DESIGN.md §4)."""

    id: int
    context: str
    strategy: StrategyRef
    params: dict[str, Any]
    source: str
    experiment: int | None
    variant: str | None
    propensity: float
    personalization_applied: bool


class Learner(TypedDict):
    """A user as `users/` shows it to a service account."""

    id: int
    username: str
    external_id: str | None
    email: str
    display_name: str
    profile_completed: bool
    attributes: dict[str, Any]
    is_active: bool
    date_joined: str


class LearnerFields(TypedDict, total=False):
    """What `users/` accepts besides `external_id` when creating a learner."""

    username: str
    email: str
    display_name: str
    attributes: dict[str, str | int | float | bool]


class OutcomeFields(TypedDict, total=False):
    """One outcome (DESIGN.md §3). `outcome_type` and at least one score are required, and
    either `decision` (its id, or the Decision itself) or `context`. `occurred_at` defaults to
    the moment the outcome was tracked; pass None to let the server stamp its arrival."""

    event_id: str
    decision: int | Decision | None
    context: str
    strategy: str
    personalization_applied: bool | None
    outcome_type: str
    occurred_at: datetime.datetime | str | None
    retention_score: float | None
    performance_score: float | None
    completion_rate: float | None
    engagement_score: float | None
    session_duration_minutes: float | None
    content_type: str
    difficulty_level: int | None


class PromptContext(TypedDict):
    """The answer of `GET me/prompt-context/` (DESIGN.md §7.1). With personalization off
    for the context only `language` and the baseline are given, and without learning-style
    profiling no `learning_style`: every key but `language` may be absent."""

    language: str
    tone: NotRequired[str]
    reading_length: NotRequired[str]
    learning_style: NotRequired[str | None]
    software_level: NotRequired[str | None]
    hardware_level: NotRequired[str | None]
    weaknesses: NotRequired[list[str]]
    goals: NotRequired[list[str]]
    strategy: NotRequired[StrategyRef | str]
    params: NotRequired[dict[str, Any]]
    decision: NotRequired[Decision | int | None]
    text: NotRequired[str]
