"""Strategy parameters per context (DESIGN.md §3, Strategy.default_params). Pure.

Each context has its own parameters; a strategy's defaults name every one, a variant's or
a user's overrides name some. Values are checked against the schema below, and an error
names the parameter.
"""

from dataclasses import dataclass
from typing import Any

CONTENT_TYPES = ("VIDEO", "ARTICLE", "EXERCISE", "QUIZ", "SCENARIO")
LEARNING_STYLES = ("VISUAL", "AUDITORY", "READING", "KINESTHETIC", "MIXED")


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]

    def error(self, value: Any) -> str | None:
        if value not in self.options:
            return f"must be one of {', '.join(self.options)}"
        return None


@dataclass(frozen=True)
class Subset:
    options: tuple[str, ...]

    def error(self, value: Any) -> str | None:
        if (
            not isinstance(value, list)
            or not value
            or any(v not in self.options for v in value)
            or len(set(value)) != len(value)
        ):
            return f"must be a non-empty list of distinct values from {', '.join(self.options)}"
        return None


@dataclass(frozen=True)
class Integer:
    minimum: int
    maximum: int

    def error(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
        if not self.minimum <= value <= self.maximum:
            return f"must be between {self.minimum} and {self.maximum}"
        return None


DIFFICULTY = Choice(("easy", "medium", "hard", "adaptive"))

SCHEMAS: dict[str, dict[str, Choice | Subset | Integer]] = {
    "MISSION": {
        "timing": Choice(("fixed", "flexible", "adaptive")),
        "duration": Integer(5, 240),
        "objectives": Integer(1, 10),
        "difficulty": DIFFICULTY,
    },
    "CONTENT": {
        "content_types": Subset(CONTENT_TYPES),
        "learning_style": Choice(LEARNING_STYLES),
        "topic_selection": Choice(("weakness_first", "interest_first", "balanced", "sequential")),
    },
    "ASSESSMENT": {
        "frequency": Choice(("low", "medium", "high", "adaptive")),
        "difficulty": DIFFICULTY,
        "question_types": Subset(("multiple_choice", "short_answer", "practical", "scenario")),
    },
    "SESSION": {
        "break_timing": Integer(5, 120),
        "content_sequence": Choice(("linear", "spaced", "interleaved", "adaptive")),
        "intensity_modulation": Choice(("none", "gentle", "dynamic")),
    },
}


def params_errors(context: str, params: Any, *, complete: bool) -> dict[str, str]:
    """{parameter: message} for every problem; empty when valid. `complete` requires every
    parameter of the context (a strategy's defaults), else any subset (overrides)."""
    schema = SCHEMAS.get(context)
    if schema is None:
        return {"context": f"unknown context {context!r}"}
    if not isinstance(params, dict):
        return {"params": "must be an object"}
    errors = {
        name: f"unknown parameter for {context}; expected one of {', '.join(schema)}"
        for name in params
        if name not in schema
    }
    for name, rule in schema.items():
        if name in params:
            message = rule.error(params[name])
            if message:
                errors[name] = message
        elif complete:
            errors[name] = "is required"
    return errors


def overlay(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid by each later layer (variant, then the user's config)."""
    result: dict[str, Any] = {}
    for layer in layers:
        if layer:
            result.update(layer)
    return result
