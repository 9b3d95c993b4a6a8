"""GET me/prompt-context/ for a learner (DESIGN.md §7.1)."""

from typing import Any

from attune_client import Attune, Learner

PROMPT_CONTEXT_KEYS = {
    "language",
    "tone",
    "reading_length",
    "learning_style",
    "software_level",
    "hardware_level",
    "weaknesses",
    "goals",
    "strategy",
    "params",
    "decision",
    "text",
}
# What consent withholds when personalization is off for the context.
PERSONAL_KEYS = {
    "tone",
    "reading_length",
    "learning_style",
    "software_level",
    "hardware_level",
    "weaknesses",
    "goals",
}


def strategy_key(answer: dict[str, Any]) -> str:
    strategy = answer["strategy"]
    return str(strategy["key"] if isinstance(strategy, dict) else strategy)


def decision_count(client: Attune, learner: Learner) -> int:
    return int(client.for_learner(id=learner["id"]).request("GET", "decisions/")["count"])


def test_prompt_context__learner_with_defaults__design_shape_and_logged_as_a_decision(
    client: Attune, learner: Learner
) -> None:
    assert learner["external_id"] is not None

    answer = client.for_learner(learner["external_id"]).prompt_context("CONTENT")

    assert set(answer) >= PROMPT_CONTEXT_KEYS
    assert answer["language"] == "en"
    assert isinstance(answer.get("text"), str)
    assert answer.get("text", "").strip()
    assert isinstance(answer.get("params"), dict)
    assert decision_count(client, learner) == 1


def test_prompt_context__personalization_off__language_and_baseline_only(
    client: Attune, learner: Learner
) -> None:
    for_learner = client.for_learner(id=learner["id"])
    for_learner.request("PATCH", "me/preferences/", json={"personalization_level": "NONE"})

    answer = for_learner.prompt_context("CONTENT")

    assert answer["language"] == "en"
    assert strategy_key(dict(answer)) == "conservative"
    assert {key for key in PERSONAL_KEYS if dict(answer).get(key)} == set()
