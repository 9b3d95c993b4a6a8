"""The client's own targeting attributes of a learner (DESIGN.md §3): set through `users/`
and `me/`, returned by both, validated with the limits of §3."""

import pytest

from tests.conftest import assert_error_shape


def test_me__patch_attributes__stored_and_returned(user_client, user):
    attributes = {"plan": "pro", "cohort": 3, "beta": True, "score": 0.5}
    response = user_client.patch("/api/v1/me/", {"attributes": attributes}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["attributes"] == attributes
    user.refresh_from_db()
    assert user.attributes == attributes
    assert user_client.get("/api/v1/me/").json()["attributes"] == attributes
    cleared = user_client.patch("/api/v1/me/", {"attributes": None}, format="json")
    assert cleared.json()["attributes"] == {}


@pytest.mark.parametrize(
    "attributes",
    [
        {"Plan": "pro"},  # upper case
        {"9lives": 1},
        {"a" * 41: 1},
        {"plan": {"nested": 1}},
        {"plan": [1, 2]},
        {"plan": None},
        {f"k{i}": i for i in range(51)},
        {"blob": "x" * 4100},
        ["plan"],
    ],
)
def test_me__invalid_attributes__400_naming_the_field(user_client, user, attributes):
    response = user_client.patch("/api/v1/me/", {"attributes": attributes}, format="json")
    assert_error_shape(response, 400, attr="attributes")
    user.refresh_from_db()
    assert user.attributes == {}


def test_users__service_account_creates_with_attributes(service_client):
    response = service_client.post(
        "/api/v1/users/",
        {"external_id": "crm-7", "attributes": {"plan": "free", "school": "north"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["attributes"] == {"plan": "free", "school": "north"}
    found = service_client.get("/api/v1/users/", {"external_id": "crm-7"}).json()
    assert found["results"][0]["attributes"] == {"plan": "free", "school": "north"}
    bad = service_client.post(
        "/api/v1/users/", {"external_id": "crm-8", "attributes": {"Bad": 1}}, format="json"
    )
    assert_error_shape(bad, 400, attr="attributes")


def test_service_account__patches_a_learners_attributes_on_their_behalf(service_client, user):
    response = service_client.patch(
        "/api/v1/me/",
        {"attributes": {"plan": "team"}},
        format="json",
        HTTP_X_ON_BEHALF_OF=user.external_id,
    )
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.attributes == {"plan": "team"}
