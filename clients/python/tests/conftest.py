"""The client's tests run against a live Attune server: `ATTUNE_URL` (e.g.
http://127.0.0.1:8000) and `ATTUNE_TOKEN`, the API token of a service account (one holding
personalization.act_for_users, as `manage.py seed` creates). Without them the session stops
with an error; it never skips."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from faulty_proxy import FaultyProxy

from attune_client import Attune, Learner

REQUIRED = ("ATTUNE_URL", "ATTUNE_TOKEN")


def pytest_configure(config: pytest.Config) -> None:
    missing = [name for name in REQUIRED if not os.environ.get(name, "").strip()]
    if missing:
        raise pytest.UsageError(
            f"{' and '.join(missing)} not set. The client's tests need a live Attune server: "
            "set ATTUNE_URL to its address (e.g. http://127.0.0.1:8000) and ATTUNE_TOKEN to a "
            "service account's API token (manage.py seed prints one)."
        )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stops at once, saying why, when the server cannot be reached or the token is not a
    service account's, instead of failing every test with the same cause."""
    url, token = _env_url(), _env_token()
    try:
        answer = httpx.get(
            f"{url}/api/v1/users/",
            params={"external_id": "pyclient-probe"},
            headers={"Authorization": f"Token {token}"},
            timeout=10,
        )
    except httpx.TransportError as exc:
        pytest.exit(f"ATTUNE_URL={url} cannot be reached: {exc}", returncode=4)
    if answer.status_code in (401, 403):
        pytest.exit(
            f"ATTUNE_TOKEN is refused by {url} ({answer.status_code}): the tests need the "
            "token of a service account holding personalization.act_for_users.",
            returncode=4,
        )
    if answer.status_code != 200:
        pytest.exit(
            f"{url}/api/v1/users/ answered {answer.status_code}: {answer.text[:200]}",
            returncode=4,
        )


def _env_url() -> str:
    return os.environ["ATTUNE_URL"].strip().rstrip("/")


def _env_token() -> str:
    return os.environ["ATTUNE_TOKEN"].strip()


@pytest.fixture(scope="session")
def attune_url() -> str:
    return _env_url()


@pytest.fixture(scope="session")
def attune_token() -> str:
    return _env_token()


@pytest.fixture
def make_client(attune_url: str, attune_token: str) -> Iterator[Callable[..., Attune]]:
    """Builds clients of the live server (or of `base_url`) with short backoffs; closes them
    after the test."""
    made: list[Attune] = []

    def make(base_url: str | None = None, **options: Any) -> Attune:
        options.setdefault("backoff", 0.01)
        attune = Attune(base_url or attune_url, attune_token, **options)
        made.append(attune)
        return attune

    yield make
    for attune in made:
        attune.close()


@pytest.fixture
def client(make_client: Callable[..., Attune]) -> Attune:
    return make_client()


@pytest.fixture
def new_external_id() -> Callable[[], str]:
    """Unique external ids, so the tests can run again against the same server."""
    return lambda: f"pyclient-test-{uuid.uuid4().hex}"


@pytest.fixture
def learner(client: Attune, new_external_id: Callable[[], str]) -> Learner:
    """A fresh learner created through users/."""
    return client.create_learner(new_external_id(), display_name="Client test learner")


@pytest.fixture
def proxy(attune_url: str) -> Iterator[FaultyProxy]:
    """A local HTTP server between the client and Attune; script its faults."""
    with FaultyProxy(attune_url) as faulty:
        yield faulty


@pytest.fixture
def count_outcomes(client: Attune) -> Callable[[Learner], int]:
    """How many outcomes the server holds for a learner."""

    def count(learner: Learner) -> int:
        page = client.for_learner(id=learner["id"]).request("GET", "outcomes/")
        return int(page["count"])

    return count
