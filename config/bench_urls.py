"""URLs under the benchmark settings only: the project's, plus two yardsticks for the decide
call: the baseline it is measured against (a bare Django view that runs one SQL query) and
the floor of its own database work (decide's two statements in a bare view)."""

import json
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config import urls as project_urls


@csrf_exempt
def one_query(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM experiments_strategy WHERE id = %s", [1])
        row = cursor.fetchone()
    return HttpResponse(f'{{"id": {row[0] if row else "null"}}}', content_type="application/json")


_floor: dict[str, Any] = {}


def _floor_statements() -> dict[str, Any]:
    """The decide call's two statements, as the decide route runs them: the learner read
    joined to the token lookup, and the decision INSERT (of the context's baseline). Made
    once per process: the bench's workers are single-threaded."""
    from config.api.authentication import token_lookup
    from experiments.catalog import context_catalog
    from experiments.models import Decision
    from experiments.services import decisions

    if not _floor:
        baseline = context_catalog("MISSION").baseline
        if baseline is None:
            raise RuntimeError("the bench loads the strategy catalog first")
        lookup = token_lookup(connections[DEFAULT_DB_ALIAS])
        params_field = Decision._meta.get_field("params")
        _floor.update(
            lookup=lookup,
            read=decisions.learner_read_sql(lookup.sql),
            insert=decisions.decision_insert_sql(),
            answer=json.dumps(
                {
                    "context": "MISSION",
                    "strategy": {"key": baseline.key, "name": baseline.name},
                    "params": baseline.default_params,
                    "source": "BASELINE",
                    "experiment": None,
                    "variant": None,
                    "propensity": 1.0,
                    "personalization_applied": False,
                }
            )[1:],
            values=[
                "MISSION",
                baseline.id,
                None,
                None,
                None,
                "BASELINE",
                params_field.get_db_prep_save(baseline.default_params, connection),
                1.0,
                False,
                0.0,
            ],
        )
    return _floor


@csrf_exempt
def decide_floor(request: HttpRequest) -> HttpResponse:
    """The database work of a decide call and nothing else: no DRF, no decision rules, a
    fixed answer. What decide could reach if its Python cost nothing but the statements."""
    from config.api.authentication import lookup_params
    from config.db import first_read
    from experiments.services.decisions import learner_read_params

    statements = _floor_statements()
    key = request.headers.get("Authorization", "").removeprefix("Token ")
    context = json.loads(request.body)["context"]
    params = learner_read_params(context, source_params=lookup_params(statements["lookup"], key))

    def read() -> Any:
        with connection.cursor() as cursor:
            cursor.execute(statements["read"], params)
            return cursor.fetchone()

    row = first_read(connections[DEFAULT_DB_ALIAS], read)
    if row is None:
        return HttpResponse(status=401)
    with connection.cursor() as cursor:
        cursor.execute(statements["insert"], [row[0], *statements["values"]])
        (decision_id, _created_at) = cursor.fetchone()
    return HttpResponse(
        f'{{"id": {decision_id}, {statements["answer"]}',
        status=201,
        content_type="application/json",
    )


urlpatterns = [
    path("bench/one-query/", one_query),
    path("bench/decide-floor/", decide_floor),
    *project_urls.urlpatterns,
]
handler400 = project_urls.handler400
handler403 = project_urls.handler403
handler404 = project_urls.handler404
handler500 = project_urls.handler500
