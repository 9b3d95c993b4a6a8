import json
from pathlib import Path

import pytest

from experiments.params import SCHEMAS, overlay, params_errors

CATALOG = json.loads((Path(__file__).parents[2] / "fixtures" / "strategies.json").read_text())


def test_catalog__16_strategies_valid_with_one_conservative_baseline_per_context():
    assert len(CATALOG) == 16
    for context in SCHEMAS:
        entries = [e["fields"] for e in CATALOG if e["fields"]["context"] == context]
        assert sorted(e["key"] for e in entries) == [
            "balanced",
            "conservative",
            "pattern_heavy",
            "prediction_heavy",
        ]
        assert [e["key"] for e in entries if e["is_baseline"]] == ["conservative"]
        for entry in entries:
            assert params_errors(context, entry["default_params"], complete=True) == {}


@pytest.mark.parametrize(
    ("context", "params", "field"),
    [
        ("MISSION", {"duration": 3}, "duration"),
        ("MISSION", {"duration": True}, "duration"),
        ("MISSION", {"difficulty": "brutal"}, "difficulty"),
        ("MISSION", {"colour": "red"}, "colour"),
        ("CONTENT", {"content_types": []}, "content_types"),
        ("CONTENT", {"content_types": ["VIDEO", "VIDEO"]}, "content_types"),
        ("CONTENT", {"learning_style": "ODD"}, "learning_style"),
        ("ASSESSMENT", {"question_types": ["essay"]}, "question_types"),
        ("SESSION", {"break_timing": 500}, "break_timing"),
    ],
)
def test_params_errors__name_the_parameter(context, params, field):
    assert field in params_errors(context, params, complete=False)


def test_params_errors__complete_requires_every_parameter():
    errors = params_errors("SESSION", {"break_timing": 30}, complete=True)
    assert errors == {"content_sequence": "is required", "intensity_modulation": "is required"}


def test_params_errors__not_an_object():
    assert params_errors("MISSION", [1], complete=False) == {"params": "must be an object"}


def test_overlay__later_layers_win():
    assert overlay({"a": 1, "b": 2}, None, {"b": 3}, {"c": 4}) == {"a": 1, "b": 3, "c": 4}
