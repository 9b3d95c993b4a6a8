"""The yardsticks of `make bench` (config/bench_urls.py): the floor of the decide call runs
decide's own two statements and nothing else, so the ceiling it reports is decide's."""

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from config import bench_urls
from experiments.models import Decision, Strategy
from tests.conftest import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def bench_urlconf():
    if connection.vendor != "postgresql":
        pytest.skip("make bench runs on PostgreSQL (the floor's INSERT is stamped by it)")
    bench_urls._floor.clear()  # made once per process: the catalog ids of this test's data
    with override_settings(ROOT_URLCONF="config.bench_urls"):
        yield
    bench_urls._floor.clear()


def _floor(client):
    return client.post("/bench/decide-floor/", {"context": "MISSION"}, format="json")


def test_decide_floor__the_learner_read_and_the_insert__nothing_else(
    bench_urlconf, strategy_catalog, user
):
    client = token_client(user)
    assert _floor(client).status_code == 201  # the first call makes the statements
    with CaptureQueriesContext(connection) as queries:
        response = _floor(client)
    assert response.status_code == 201, response.content
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 2, statements
    assert statements[0].startswith("SELECT u.*")
    assert "authtoken_token" in statements[0]
    assert statements[1].startswith('INSERT INTO "experiments_decision"')
    decision = Decision.objects.get(pk=response.json()["id"])
    baseline = Strategy.objects.get(context="MISSION", is_baseline=True, is_active=True)
    assert (decision.user_id, decision.strategy_id) == (user.pk, baseline.pk)
    assert response.json()["strategy"]["key"] == baseline.key


def test_decide_floor__unknown_token__401(bench_urlconf, strategy_catalog):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert _floor(client).status_code == 401
    assert not Decision.objects.exists()
