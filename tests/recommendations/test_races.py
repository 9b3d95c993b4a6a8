"""Deleting a learning path while it is patched or one of its items is completed: every writer
locks the path first, and a path gone by then answers 404 (STYLE.md rule 5; PostgreSQL only)."""

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection
from rest_framework.test import APIClient

from personalization.services.skills import skill_assessment_record
from recommendations.models import LearningPath, LearningPathItem, LearningPathStage
from recommendations.services.paths import learning_path_create
from tests.conftest import assert_error_shape, token_client

TRIALS = 40
URL = "/api/v1/learning-paths/"


@pytest.fixture
def learner(user, strategy_catalog, content_catalog):
    skill_assessment_record(user=user, skill="debugging", score=0.2)
    return user


def _race(
    learner, other: Callable[[APIClient, LearningPath, int], object]
) -> list[tuple[int, object, object]]:
    """TRIALS pairs of requests started by one barrier on a new path each: DELETE against
    `other` (given the path and its first item's id). Returns (trial, DELETE's answer, the
    other's answer), an answer being the response or the exception the request raised."""
    answers: list[tuple[int, object, object]] = []
    for trial in range(TRIALS):
        path = learning_path_create(user=learner, goal=f"Goal {trial}")
        first = LearningPathItem.objects.filter(stage__path=path).order_by("pk")[0].pk
        clients = [token_client(learner), token_client(learner)]
        for client in clients:
            # A server error answers 500 instead of raising: the test client's exception
            # signal is process-wide and would re-raise one thread's error in the other too.
            client.raise_request_exception = False
        barrier = threading.Barrier(2)
        got: dict[str, object] = {}

        def send(name: str, request: Callable[[], object], barrier=barrier, got=got) -> None:
            try:
                barrier.wait(timeout=10)
                got[name] = request()
            except BaseException as exc:  # reported by the test
                got[name] = exc
            finally:
                connection.close()

        threads = [
            threading.Thread(
                target=send,
                args=("delete", lambda c=clients[0], p=path: c.delete(f"{URL}{p.pk}/")),
            ),
            threading.Thread(
                target=send,
                args=("other", lambda c=clients[1], p=path, i=first: other(c, p, i)),
            ),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        answers.append((trial, got.get("delete"), got.get("other")))
    return answers


def _assert_answers(answers: list[tuple[int, object, object]], ok: int) -> None:
    """DELETE always succeeds; the other request succeeds or finds the path gone (404 in the
    error shape); never a 500 or an exception; nothing of the paths is left."""

    def status(answer: object) -> object:
        return getattr(answer, "status_code", None) or type(answer).__name__

    wrong = Counter(
        (status(deleted), status(other))
        for _, deleted, other in answers
        if status(deleted) != 204 or status(other) not in {ok, 404}
    )
    assert not wrong, (
        f"{wrong.total()} of {TRIALS} pairs answered wrongly, (DELETE, other): {dict(wrong)}; "
        f"e.g. {next(a for a in answers if (status(a[1]), status(a[2])) in wrong)}"
    )
    for _, _, other in answers:
        if status(other) == 404:
            assert_error_shape(other, 404)
    assert not LearningPath.objects.exists()
    assert not LearningPathStage.objects.exists()
    assert not LearningPathItem.objects.exists()


def _skip_unless_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks and deadlocks are exercised on PostgreSQL")


@pytest.mark.django_db(transaction=True)
def test_path_delete__concurrent_patch__2xx_or_404_and_nothing_left(learner):
    """40 pairs: DELETE against PATCH {"status": "PAUSED"} of the same new path."""
    _skip_unless_postgresql()
    answers = _race(
        learner,
        lambda client, path, _item: client.patch(
            f"{URL}{path.pk}/", {"status": "PAUSED"}, format="json"
        ),
    )
    _assert_answers(answers, ok=200)


@pytest.mark.django_db(transaction=True)
def test_path_delete__concurrent_item_complete__2xx_or_404_and_nothing_left(learner):
    """40 pairs: DELETE against completing the first item of the same new path."""
    _skip_unless_postgresql()

    answers = _race(
        learner,
        lambda client, path, item: client.post(
            f"{URL}{path.pk}/items/{item}/complete/", {}, format="json"
        ),
    )
    _assert_answers(answers, ok=200)
