"""Targeting rules (DESIGN.md §4.1): validation naming the rule's index, evaluation with the
missing-value rule, and the summary staff read."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.targeting import targeting_errors, targeting_matches, targeting_summary

LEARNER = {
    "software_level": "BEGINNER",
    "hardware_level": "BASIC",
    "learning_style": "VISUAL",
    "preferred_language": "ur",
    "personalization_level": "MEDIUM",
    "profile_completed": True,
    "days_since_joined": 12,
    "attributes": {"plan": "pro", "cohort": 3, "beta": True},
}


@pytest.mark.parametrize(
    ("rule", "holds"),
    [
        ({"attr": "software_level", "op": "eq", "value": "BEGINNER"}, True),
        ({"attr": "software_level", "op": "neq", "value": "BEGINNER"}, False),
        ({"attr": "preferred_language", "op": "in", "value": ["en", "ur"]}, True),
        ({"attr": "preferred_language", "op": "nin", "value": ["en", "ur"]}, False),
        ({"attr": "days_since_joined", "op": "gte", "value": 12}, True),
        ({"attr": "days_since_joined", "op": "lte", "value": 11.5}, False),
        ({"attr": "profile_completed", "op": "eq", "value": True}, True),
        ({"attr": "attributes.plan", "op": "eq", "value": "pro"}, True),
        ({"attr": "attributes.cohort", "op": "gte", "value": 3}, True),
        ({"attr": "attributes.cohort", "op": "eq", "value": 3.0}, True),
        ({"attr": "attributes.beta", "op": "eq", "value": 1}, False),  # true is not 1
        ({"attr": "attributes.plan", "op": "gte", "value": 1}, False),  # text is no number
        ({"attr": "attributes.plan", "op": "exists", "value": True}, True),
        ({"attr": "attributes.missing", "op": "exists", "value": False}, True),
        ({"attr": "attributes.missing", "op": "exists", "value": True}, False),
        # A rule on a missing value is false, whatever the operator.
        ({"attr": "attributes.missing", "op": "neq", "value": "x"}, False),
        ({"attr": "attributes.missing", "op": "nin", "value": ["x"]}, False),
    ],
)
def test_rule__holds_as_designed(rule, holds):
    assert targeting_errors([rule]) == {}
    assert targeting_matches([rule], LEARNER) is holds


def test_rules__all_must_hold__empty_is_everyone():
    rules = [
        {"attr": "software_level", "op": "eq", "value": "BEGINNER"},
        {"attr": "preferred_language", "op": "in", "value": ["en"]},
    ]
    assert targeting_matches(rules, LEARNER) is False
    assert targeting_matches([], LEARNER) is True
    assert targeting_matches(rules[:1], {"software_level": None}) is False


@pytest.mark.parametrize(
    ("rules", "where"),
    [
        ("software_level", "targeting"),
        ([{"attr": "shoe_size", "op": "eq", "value": 3}], "targeting.0.attr"),
        ([{"attr": "attributes.Bad-Name", "op": "eq", "value": 3}], "targeting.0.attr"),
        ([{"attr": "software_level", "op": "like", "value": "B"}], "targeting.0.op"),
        ([{"attr": "software_level", "op": "eq", "value": "GURU"}], "targeting.0.value"),
        ([{"attr": "software_level", "op": "gte", "value": 2}], "targeting.0.value"),
        ([{"attr": "days_since_joined", "op": "gte", "value": "ten"}], "targeting.0.value"),
        ([{"attr": "profile_completed", "op": "eq", "value": "yes"}], "targeting.0.value"),
        ([{"attr": "preferred_language", "op": "in", "value": []}], "targeting.0.value"),
        ([{"attr": "attributes.plan", "op": "eq", "value": {"a": 1}}], "targeting.0.value"),
        ([{"attr": "attributes.plan", "op": "exists", "value": "yes"}], "targeting.0.value"),
        ([{"attr": "attributes.plan", "op": "eq"}], "targeting.0.value"),
        ([{"attr": "attributes.plan", "op": "eq", "value": 1, "x": 2}], "targeting.0"),
        ([{"attr": "software_level", "op": "eq", "value": "BEGINNER"}, 7], "targeting.1"),
        ([{"attr": "days_since_joined", "op": "gte", "value": float("nan")}], "targeting.0.value"),
    ],
)
def test_errors__name_the_rule_and_its_field(rules, where):
    errors = targeting_errors(rules)
    assert list(errors) == [where]
    assert errors[where][0]


def test_summary__reads_as_a_sentence():
    rules = [
        {"attr": "software_level", "op": "eq", "value": "BEGINNER"},
        {"attr": "preferred_language", "op": "in", "value": ["en", "ur"]},
        {"attr": "attributes.beta_tester", "op": "exists", "value": True},
        {"attr": "days_since_joined", "op": "gte", "value": 7.0},
    ]
    assert targeting_summary(rules) == (
        "software level is BEGINNER and language in [en, ur] and beta tester is set "
        "and days since joining ≥ 7"
    )
    assert targeting_summary([]) == "everyone"


scalars = st.one_of(st.text(max_size=5), st.integers(-5, 5), st.booleans(), st.none())


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(
        st.fixed_dictionaries(
            {
                "attr": st.one_of(
                    st.sampled_from(["software_level", "days_since_joined", "attributes.plan"]),
                    st.text(max_size=8),
                ),
                "op": st.one_of(
                    st.sampled_from(["eq", "in", "gte", "exists"]), st.text(max_size=3)
                ),
                "value": st.one_of(scalars, st.lists(scalars, max_size=3)),
            }
        ),
        max_size=3,
    )
)
def test_any_input__validation_never_raises__valid_rules_evaluate(rules):
    errors = targeting_errors(rules)
    if not errors:
        assert isinstance(targeting_matches(rules, LEARNER), bool)
        assert isinstance(targeting_summary(rules), str)
