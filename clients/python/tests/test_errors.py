"""Errors: the server's error shape, parsed (DESIGN.md §7), and references refused before
anything is sent."""

from collections.abc import Callable

import httpx
import pytest

from attune_client import Attune, AttuneError, ErrorItem, Learner
from attune_client.errors import error_from_response


def test_decide__unknown_learner__404_in_the_error_shape(
    client: Attune, new_external_id: Callable[[], str]
) -> None:
    unknown = new_external_id()

    with pytest.raises(AttuneError) as raised:
        client.for_learner(unknown).decide("CONTENT")

    error = raised.value
    assert error.status == 404
    assert error.type == "client_error"
    assert len(error.errors) == 1
    assert error.errors[0].code == "not_found"
    assert error.errors[0].attr is None
    assert unknown in error.errors[0].detail
    assert error.attempts == 1
    assert str(error).startswith("404 not_found: ")
    assert error.method == "POST"
    assert error.url is not None
    assert error.url.endswith("/api/v1/decisions/")


def test_decide__unknown_context__400_naming_the_field(client: Attune, learner: Learner) -> None:
    with pytest.raises(AttuneError) as raised:
        client.for_learner(id=learner["id"]).decide("NOT_A_CONTEXT")

    assert raised.value.status == 400
    assert raised.value.type == "validation_error"
    assert raised.value.attr == "context"


def test_decide__service_account_for_itself__403_learner_required(client: Attune) -> None:
    with pytest.raises(AttuneError) as raised:
        client.decide("CONTENT")

    assert raised.value.status == 403
    assert raised.value.code == "learner_required"


def test_request__invalid_token__401(attune_url: str) -> None:
    with Attune(attune_url, "0" * 40) as invalid, pytest.raises(AttuneError) as raised:
        invalid.find_learner("anyone")

    assert raised.value.status == 401
    assert raised.value.code == "authentication_failed"


def test_for_learner__external_id_with_the_id_prefix__refused(client: Attune) -> None:
    with pytest.raises(ValueError, match="id="):
        client.for_learner("id:12")


def test_for_learner__external_id_outside_ascii__refused(client: Attune) -> None:
    with pytest.raises(ValueError, match="header"):
        client.for_learner("jürgen")


@pytest.mark.parametrize(
    ("external_id", "attune_id"), [(None, None), ("learner-1", 1)], ids=["neither", "both"]
)
def test_for_learner__not_exactly_one_name__type_error(
    client: Attune, external_id: str | None, attune_id: int | None
) -> None:
    with pytest.raises(TypeError):
        client.for_learner(external_id, id=attune_id)


def test_error_from_response__error_shape__every_error_parsed() -> None:
    body = {
        "type": "validation_error",
        "errors": [
            {"code": "required", "detail": "This field is required.", "attr": "0.outcome_type"},
            {"code": "invalid", "detail": "A finite number is required.", "attr": "1.reward"},
        ],
    }
    response = httpx.Response(
        400, json=body, request=httpx.Request("POST", "http://attune.test/api/v1/outcomes/")
    )

    error = error_from_response(response, attempts=1)

    assert error.errors == (
        ErrorItem("required", "This field is required.", "0.outcome_type"),
        ErrorItem("invalid", "A finite number is required.", "1.reward"),
    )
    assert error.message == "required: This field is required. [0.outcome_type] (and 1 more)"


def test_error_from_response__body_not_in_the_error_shape__status_and_text_kept() -> None:
    response = httpx.Response(
        502,
        text="<html>Bad Gateway</html>",
        request=httpx.Request("GET", "http://attune.test/api/v1/users/"),
    )

    error = error_from_response(response, attempts=3)

    assert (error.status, error.type, error.errors, error.attempts) == (502, None, (), 3)
    assert error.message == "<html>Bad Gateway</html>"
