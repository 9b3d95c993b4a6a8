"""`me/prompt-context/` (DESIGN.md §7.1): the learner's adaptation in one call, consent
included, stored as a decision."""

import pytest

from experiments.models import Decision
from personalization.models import Preferences, SkillProfile
from tests.conftest import assert_error_shape, token_client

URL = "/api/v1/me/prompt-context/"
FIELDS = {
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


@pytest.fixture
def profiled(user):
    user.software_background = {"level": "BEGINNER", "languages": ["python"], "frameworks": []}
    user.hardware_background = {"level": "BASIC", "domains": ["robotics_kits"]}
    user.save()
    Preferences.objects.create(
        user=user,
        preferred_language="de",
        tone_preference="FORMAL",
        reading_length="SHORT",
        learning_style="VISUAL",
        goals=["build a line-following robot"],
    )
    SkillProfile.objects.create(
        user=user,
        skill_ratings={"debugging": 0.2, "sensors": 0.3, "wiring": 0.4, "math": 0.45},
        weaknesses=["debugging", "sensors", "wiring", "math"],
    )
    return user


def test_prompt_context__personalized__profile_decision_and_instruction(
    user_client, profiled, strategy_catalog
):
    response = user_client.get(URL, {"context": "CONTENT"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == FIELDS
    assert body["language"] == "de"
    assert body["tone"] == "FORMAL"
    assert body["reading_length"] == "SHORT"
    assert body["learning_style"] == "VISUAL"
    assert body["software_level"] == "BEGINNER"
    assert body["hardware_level"] == "BASIC"
    assert body["weaknesses"] == ["debugging", "sensors", "wiring"]
    assert body["goals"] == ["build a line-following robot"]
    decision = Decision.objects.get(pk=body["decision"])
    assert decision.user == profiled
    assert decision.context == "CONTENT"
    assert body["strategy"]["key"] == decision.strategy.key
    assert body["params"] == decision.params
    text = body["text"]
    assert text.startswith("Write in German (de).")
    for phrase in ("formal tone", "visual", "debugging, sensors, wiring", "line-following"):
        assert phrase in text, text
    assert decision.strategy.name in text


@pytest.mark.parametrize(
    "preferences",
    [
        {"personalization_level": "NONE"},
        {"content_personalization_enabled": False},
        {"disabled_features": ["content"]},
    ],
)
def test_prompt_context__consent_withheld__language_and_baseline_only(
    user_client, profiled, strategy_catalog, preferences
):
    Preferences.objects.filter(user=profiled).update(**preferences)
    body = user_client.get(URL, {"context": "CONTENT"}).json()
    assert body["language"] == "de"
    assert body["strategy"]["key"] == "conservative"
    assert Decision.objects.get(pk=body["decision"]).source == "DISABLED"
    for field in ("tone", "reading_length", "learning_style", "software_level", "hardware_level"):
        assert body[field] is None, field
    assert body["weaknesses"] == []
    assert body["goals"] == []
    assert "debugging" not in body["text"]
    assert "formal" not in body["text"]
    assert "do not adapt" in body["text"]


def test_prompt_context__without_learning_style_profiling__no_style(
    user_client, profiled, strategy_catalog
):
    profiled.learning_style_profiling_enabled = False
    profiled.save()
    body = user_client.get(URL, {"context": "CONTENT"}).json()
    assert body["learning_style"] is None
    assert "visual" not in body["text"].lower()
    assert body["tone"] == "FORMAL"


def test_prompt_context__defaults__content_context_and_english(user, user_client, strategy_catalog):
    body = user_client.get(URL).json()
    assert Decision.objects.get(pk=body["decision"]).context == "CONTENT"
    assert body["language"] == "en"
    assert body["text"].startswith("Write in English (en).")


def test_prompt_context__service_account_for_a_learner(service_account, user, strategy_catalog):
    user.external_id = "app-42"
    user.save()
    client = token_client(service_account)
    body = client.get(URL, {"context": "MISSION"}, HTTP_X_ON_BEHALF_OF="app-42").json()
    assert Decision.objects.get(pk=body["decision"]).user == user


def test_prompt_context__not_a_learner__403(service_client, staff_client, strategy_catalog):
    assert_error_shape(service_client.get(URL), 403, code="learner_required")
    assert_error_shape(staff_client.get(URL), 403, code="learner_required")
    assert not Decision.objects.exists()


def test_prompt_context__unknown_context__400(user_client, strategy_catalog):
    assert_error_shape(user_client.get(URL, {"context": "LUNCH"}), 400, attr="context")


def test_prompt_context__anonymous__401(api_client):
    assert_error_shape(api_client.get(URL), 401)
