"""What a content generator needs to adapt a text to one learner (DESIGN.md §7.1): the
learner's preferences and profile, a fresh decision in the context, and `text`, a short
plain-language instruction an LLM prompt or a translation step can include.

Consent holds as in the decide call: with level NONE, the context switched off or named in
`disabled_features`, only the language and the baseline strategy are given; without
`learning_style_profiling_enabled` no learning style."""

from typing import Any

from django.utils.translation import get_language_info

from experiments.services.decisions import DecisionResult, consent_denied, decision_make
from personalization.selectors import preferences_get, skill_profile_get

# The weaknesses a generator is told about: the weakest first, a prompt stays short.
WEAKNESSES_SHOWN = 3
READING_LENGTH_WORDS = {"SHORT": "short (a few paragraphs)", "MEDIUM": "medium", "LONG": "long"}


def language_name(code: str) -> str:
    """English name of a BCP 47 tag Django knows ("pt-br" → "Brazilian Portuguese"), else the
    tag itself."""
    for candidate in (code, code.split("-")[0]):
        try:
            return str(get_language_info(candidate.lower())["name"])
        except KeyError:
            continue
    return code


def _params_phrase(params: dict[str, Any]) -> str:
    parts = []
    for key, value in sorted(params.items()):
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{key.replace('_', ' ')}: {shown}")
    return "; ".join(parts)


def _instruction(answer: dict[str, Any], strategy_name: str, personalized: bool) -> str:
    language = answer["language"]
    lines = [f"Write in {language_name(language)} ({language})."]
    if not personalized:
        lines.append("Use the standard presentation; do not adapt it to this learner.")
        return " ".join(lines)
    tone = (answer["tone"] or "").lower()
    length = READING_LENGTH_WORDS.get(answer["reading_length"] or "", "medium")
    lines.append(f"Use a {tone} tone and a {length} length.")
    if answer["learning_style"] and answer["learning_style"] != "MIXED":
        lines.append(f"The learner prefers {answer['learning_style'].lower()} material.")
    levels = []
    if answer["software_level"]:
        levels.append(f"software {answer['software_level'].lower()}")
    if answer["hardware_level"]:
        levels.append(f"hardware {answer['hardware_level'].lower()}")
    if levels:
        lines.append(f"Background: {', '.join(levels)}.")
    if answer["weaknesses"]:
        lines.append(f"Give extra support on: {', '.join(answer['weaknesses'])}.")
    if answer["goals"]:
        lines.append(f"Their goals: {'; '.join(answer['goals'])}.")
    if answer["params"]:
        lines.append(f"Strategy {strategy_name} ({_params_phrase(answer['params'])}).")
    else:
        lines.append(f"Strategy {strategy_name}.")
    return " ".join(lines)


def prompt_context_get(*, user: Any, context: str) -> dict[str, Any]:
    """The §7.1 answer for `user` in `context`. The call is a decision (§4), stored as one:
    staff and service accounts acting for themselves get 403 `learner_required`."""
    result: DecisionResult = decision_make(user=user, context=context)
    preferences = preferences_get(user=user)
    personalized = not consent_denied(preferences, context)
    answer: dict[str, Any] = {
        "language": preferences.preferred_language or "en",
        "tone": None,
        "reading_length": None,
        "learning_style": None,
        "software_level": None,
        "hardware_level": None,
        "weaknesses": [],
        "goals": [],
        "strategy": {"key": result.strategy.key, "name": result.strategy.name},
        "params": result.decision.params,
        "decision": result.decision.pk,
    }
    if personalized:
        weaknesses = list(skill_profile_get(user=user).weaknesses or [])
        answer |= {
            "tone": preferences.tone_preference,
            "reading_length": preferences.reading_length,
            "learning_style": preferences.learning_style
            if user.learning_style_profiling_enabled
            else None,
            "software_level": (user.software_background or {}).get("level"),
            "hardware_level": (user.hardware_background or {}).get("level"),
            "weaknesses": weaknesses[:WEAKNESSES_SHOWN],
            "goals": list(preferences.goals or []),
        }
    answer["text"] = _instruction(answer, result.strategy.name, personalized)
    return answer
