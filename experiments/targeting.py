"""Experiment targeting (DESIGN.md §4.1): rules `{"attr", "op", "value"}`, all of which must
hold, validated when saved and evaluated once, at assignment. Pure: no Django.

A rule on a missing value is false, except `{"op": "exists", "value": false}`, which holds
exactly when the value is missing."""

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

OPERATORS = ("eq", "neq", "in", "nin", "gte", "lte", "exists")
MAX_RULES = 20
MAX_LIST = 100
ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")

# The learner's own attributes, with the values they take (None: any of the type).
CHOICES: dict[str, tuple[str, ...] | None] = {
    "software_level": ("BEGINNER", "INTERMEDIATE", "ADVANCED"),
    "hardware_level": ("NONE", "BASIC", "INTERMEDIATE", "ADVANCED"),
    "learning_style": ("VISUAL", "AUDITORY", "READING", "KINESTHETIC", "MIXED"),
    "preferred_language": None,
    "personalization_level": ("NONE", "LOW", "MEDIUM", "HIGH"),
}
BOOLEANS = ("profile_completed",)
NUMBERS = ("days_since_joined",)
KNOWN = (*CHOICES, *BOOLEANS, *NUMBERS)
LABELS = {
    "software_level": "software level",
    "hardware_level": "hardware level",
    "learning_style": "learning style",
    "preferred_language": "language",
    "personalization_level": "personalization level",
    "profile_completed": "profile completed",
    "days_since_joined": "days since joining",
}
PHRASES = {
    "eq": "is",
    "neq": "is not",
    "in": "in",
    "nin": "not in",
    "gte": "≥",
    "lte": "≤",
}


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool) or _is_number(value)


def _attribute_error(attr: Any) -> str | None:
    if not isinstance(attr, str):
        return "Give the attribute as a string."
    if attr in KNOWN:
        return None
    if attr.startswith("attributes."):
        name = attr.removeprefix("attributes.")
        if ATTRIBUTE_NAME.fullmatch(name):
            return None
        return (
            f"{name!r} is not an attribute name: lower-case letters, digits and _, starting "
            "with a letter, at most 40 characters."
        )
    return f"Unknown attribute {attr!r}; use one of {', '.join(KNOWN)} or attributes.<name>."


def _value_error(attr: str, op: str, value: Any) -> str | None:
    if op == "exists":
        return None if isinstance(value, bool) else "exists takes true or false."
    if op in ("gte", "lte"):
        if attr in NUMBERS or attr.startswith("attributes."):
            return None if _is_number(value) else f"{op} takes a number."
        return f"{op} compares numbers; {attr} is not one."
    values = value if op in ("in", "nin") else [value]
    if op in ("in", "nin"):
        if not isinstance(value, list) or not value:
            return f"{op} takes a non-empty list."
        if len(value) > MAX_LIST:
            return f"{op} takes at most {MAX_LIST} values."
    for item in values:
        if attr in CHOICES:
            allowed = CHOICES[attr]
            if not isinstance(item, str):
                return f"{attr} is text; {item!r} is not."
            if allowed is not None and item not in allowed:
                return f"{item!r} is not a {LABELS[attr]}; use one of {', '.join(allowed)}."
        elif attr in BOOLEANS:
            if not isinstance(item, bool):
                return f"{attr} is true or false."
        elif attr in NUMBERS:
            if not _is_number(item):
                return f"{attr} is a number."
        elif not _is_scalar(item):
            return "Attribute values are text, numbers or true/false."
    return None


def targeting_errors(rules: Any) -> dict[str, list[str]]:
    """Errors keyed by where they are (`targeting`, `targeting.<i>`,
    `targeting.<i>.attr|op|value`); empty when the rules are valid."""
    if not isinstance(rules, list):
        return {"targeting": ["Give the targeting rules as a list (empty: everyone)."]}
    if len(rules) > MAX_RULES:
        return {"targeting": [f"At most {MAX_RULES} rules."]}
    errors: dict[str, list[str]] = {}
    for index, rule in enumerate(rules):
        where = f"targeting.{index}"
        if not isinstance(rule, Mapping):
            errors[where] = ['Give each rule as {"attr", "op", "value"}.']
            continue
        unknown = sorted(set(rule) - {"attr", "op", "value"})
        if unknown:
            errors[where] = [f"Unknown keys {unknown}; a rule has attr, op and value."]
            continue
        attr_error = _attribute_error(rule.get("attr"))
        if attr_error:
            errors[f"{where}.attr"] = [attr_error]
            continue
        op = rule.get("op")
        if op not in OPERATORS:
            errors[f"{where}.op"] = [f"Unknown operator {op!r}; use one of {', '.join(OPERATORS)}."]
            continue
        if "value" not in rule:
            errors[f"{where}.value"] = ["Give the value to compare with."]
            continue
        value_error = _value_error(rule["attr"], op, rule["value"])
        if value_error:
            errors[f"{where}.value"] = [value_error]
    return errors


def _lookup(facts: Mapping[str, Any], attr: str) -> tuple[bool, Any]:
    if attr.startswith("attributes."):
        own = facts.get("attributes") or {}
        name = attr.removeprefix("attributes.")
        return (name in own and own[name] is not None), own.get(name)
    value = facts.get(attr)
    return value is not None and value != "", value


def _same(a: Any, b: Any) -> bool:
    """Equal as targeting means it: true is not 1, and 2 equals 2.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def rule_holds(rule: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    present, value = _lookup(facts, rule["attr"])
    op, target = rule["op"], rule["value"]
    if op == "exists":
        return present is bool(target)
    if not present:
        return False
    if op == "eq":
        return _same(value, target)
    if op == "neq":
        return not _same(value, target)
    if op == "in":
        return any(_same(value, t) for t in target)
    if op == "nin":
        return not any(_same(value, t) for t in target)
    if not _is_number(value):
        return False
    return float(value) >= float(target) if op == "gte" else float(value) <= float(target)


def targeting_matches(rules: Sequence[Mapping[str, Any]], facts: Mapping[str, Any]) -> bool:
    """Whether every rule holds for the learner described by `facts` (the attribute names of
    KNOWN, and `attributes`: the client's own)."""
    return all(rule_holds(rule, facts) for rule in rules)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def targeting_summary(rules: Sequence[Mapping[str, Any]]) -> str:
    """A sentence staff read at a glance, e.g. "software level is BEGINNER and language in
    [en, ur]"; "everyone" without rules."""
    if not rules:
        return "everyone"
    parts = []
    for rule in rules:
        attr = str(rule.get("attr", ""))
        label = LABELS.get(attr) or attr.removeprefix("attributes.").replace("_", " ")
        if rule.get("op") == "exists":
            parts.append(f"{label} {'is set' if rule.get('value') else 'is not set'}")
        else:
            phrase = PHRASES.get(str(rule.get("op")), str(rule.get("op")))
            parts.append(f"{label} {phrase} {_shown(rule.get('value'))}")
    return " and ".join(parts)
