"""Learners through users/: create, find, ensure (DESIGN.md §7)."""

from collections.abc import Callable

import pytest

from attune_client import Attune, AttuneError, Learner


def test_create_learner__new_external_id__created_and_found(
    client: Attune, new_external_id: Callable[[], str]
) -> None:
    external_id = new_external_id()

    created = client.create_learner(external_id, display_name="Ada", attributes={"plan": "pro"})

    assert created["external_id"] == external_id
    assert created["display_name"] == "Ada"
    assert created["attributes"] == {"plan": "pro"}
    assert client.find_learner(external_id) == created
    assert client.get_learner(created["id"]) == created


def test_create_learner__taken_external_id__conflict_409(client: Attune, learner: Learner) -> None:
    assert learner["external_id"] is not None

    with pytest.raises(AttuneError) as raised:
        client.create_learner(learner["external_id"])

    error = raised.value
    assert error.status == 409
    assert error.type == "client_error"
    assert error.code == "conflict"
    assert error.attr == "external_id"
    assert error.attempts == 1


def test_find_learner__unknown_external_id__none(
    client: Attune, new_external_id: Callable[[], str]
) -> None:
    assert client.find_learner(new_external_id()) is None


def test_ensure_learner__twice__one_learner(
    client: Attune, new_external_id: Callable[[], str]
) -> None:
    external_id = new_external_id()

    first = client.ensure_learner(external_id, display_name="Grace")
    second = client.ensure_learner(external_id, display_name="ignored")

    assert first["id"] == second["id"]
    assert second["display_name"] == "Grace"


def test_get_learner__unknown_id__404(client: Attune) -> None:
    with pytest.raises(AttuneError) as raised:
        client.get_learner(2**62)

    assert raised.value.status == 404
    assert raised.value.code == "not_found"
