"""The decide call for a learner (DESIGN.md §4)."""

import pytest

from attune_client import Attune, Learner

DECISION_KEYS = {
    "id",
    "context",
    "strategy",
    "params",
    "source",
    "experiment",
    "variant",
    "propensity",
    "personalization_applied",
}
SOURCES = {"DISABLED", "HOLDOUT", "EXPERIMENT", "BANDIT", "ROLLOUT", "BASELINE"}


@pytest.mark.parametrize("context", ["MISSION", "CONTENT", "ASSESSMENT", "SESSION"])
def test_decide__new_learner__decision_in_the_design_shape(
    client: Attune, learner: Learner, context: str
) -> None:
    assert learner["external_id"] is not None

    decision = client.for_learner(learner["external_id"]).decide(context)

    assert set(decision) == DECISION_KEYS
    assert decision["context"] == context
    assert set(decision["strategy"]) == {"key", "name"}
    assert isinstance(decision["params"], dict)
    assert decision["source"] in SOURCES
    assert 0 < decision["propensity"] <= 1


def test_decide__learner__logged_as_that_learners_decision(
    client: Attune, learner: Learner
) -> None:
    assert learner["external_id"] is not None
    for_learner = client.for_learner(learner["external_id"])

    decision = for_learner.decide("CONTENT")

    logged = for_learner.request("GET", "decisions/")
    assert [row["id"] for row in logged["results"]] == [decision["id"]]


def test_decide__learner_named_by_attune_id__same_learner(client: Attune, learner: Learner) -> None:
    assert learner["external_id"] is not None
    by_id = client.for_learner(id=learner["id"])

    decision = by_id.decide("SESSION")

    by_external_id = client.for_learner(learner["external_id"])
    logged = by_external_id.request("GET", "decisions/")
    assert by_id.reference == f"id:{learner['id']}"
    assert [row["id"] for row in logged["results"]] == [decision["id"]]
