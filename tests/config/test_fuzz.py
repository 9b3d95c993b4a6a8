"""Property-based fuzzing of every operation in the API's own OpenAPI schema (DESIGN.md §7: no
input, however malformed, produces a 500).

Schemathesis generates each operation's requests from the schema drf-spectacular builds in
process, valid (positive) and schema-violating (negative) alike. Three callers send them with
their DRF tokens: a learner, a service account (sometimes acting for the learner through
X-On-Behalf-Of) and staff. Path parameters sometimes name rows seeded for the learner, so
that requests get past the 404. On top of the schema's shapes, the wire form is made hostile
where a schema cannot say it: a date-time may name a day that does not exist (2026-02-30),
and one number of a JSON body may be written as a literal that overflows or loses precision
(1e999, a 400-digit integer).

Every response must be below 500 with a JSON body, and every 4xx must be in the error shape.
Each example runs in a savepoint that is rolled back, against a cache of its own that is
cleared after it, so examples do not see one another's writes. Each operation and caller has
a fixed seed of its own (the same requests every run, different ones for each caller), and no
Hypothesis database is written. About 4,000 requests, two minutes on PostgreSQL.
"""

import copy
import datetime
import json
import zlib
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import schemathesis
from django.conf import settings
from django.core.cache import cache as django_cache
from django.db import transaction
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, given, note, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis import GenerationMode

from experiments.models import StrategyConfig
from logs.models import AuditEvent
from outcomes.models import Effectiveness
from personalization.services.skills import skill_assessment_record
from recommendations.models import ContentItem, LearningPathItem
from recommendations.services.catalog import content_catalog_load
from tests.conftest import assert_error_shape, token_client
from tests.experiments.factories import load_catalog, make_experiment
from tests.logs.factories import PersonalizationLogFactory, TranslationLogFactory
from tests.personalization.factories import ServiceAccountFactory, StaffFactory, UserFactory

# Examples per operation and caller: more where there is a body to get wrong.
EXAMPLES_WITH_BODY = 30
EXAMPLES_WITHOUT_BODY = 12
CALLERS = ("learner", "service", "staff")
API_PREFIX = "/api/v1/"

# Number literals a JSON document may contain but a Python float or a 64-bit column cannot
# hold as written: overflow to ±inf, underflow to 0, more digits than any float or bigint.
HOSTILE_NUMBERS = ("1e999", "-1e999", "1e-999", "1" + "0" * 400, str(2**63))
_NUMBER_SLOT = "__fuzz_number_literal__"


def _date_times() -> st.SearchStrategy[str]:
    """ISO 8601 date-times: recent ones (which pass validation, so the rest of the body is
    looked at), any from year 1 to 9999, and some naming a day or an hour that does not exist
    (2026-02-30T24:00:00Z), as a client's string formatting can produce."""
    offsets = st.sampled_from(["Z", "+00:00", "-05:00", "+05:45", "+14:00", "+23:59", ""])

    def written(day: datetime.date, time: datetime.time, offset: str) -> str:
        return f"{day.isoformat()}T{time.isoformat()}{offset}"

    recent = st.dates(datetime.date(2020, 1, 1), datetime.date(2025, 12, 31))
    real = st.builds(written, recent, st.times(), offsets)
    anywhere = st.builds(written, st.dates(), st.times(), offsets)
    impossible = st.builds(
        "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}".format,
        st.integers(1, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 24),
        st.integers(0, 60),
        st.integers(0, 60),
        offsets,
    )
    return real | anywhere | impossible


schemathesis.openapi.format("date-time", _date_times())


@cache
def _openapi() -> dict[str, Any]:
    """The schema /api/schema/ serves, as JSON."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


@cache
def _schema() -> Any:
    """The schema for generation. Input serializers refuse unknown fields (StrictSerializer),
    which the schema does not say: without `additionalProperties: false` nearly every valid
    example would carry an extra key and stop at that 400. Negative examples still add them."""
    document = copy.deepcopy(_openapi())
    for name, component in document["components"]["schemas"].items():
        if name.endswith("Request") and "properties" in component:
            component.setdefault("additionalProperties", False)
    # NUL characters in strings are refused by the parser before anything else looks at the
    # body (test_hostile_input covers them); generated everywhere, they would hide the rest.
    config = schemathesis.Config.from_dict({"generation": {"allow-x00": False}})
    return schemathesis.openapi.from_dict(document, config=config)


def _operation_labels() -> list[str]:
    return [
        f"{method.upper()} {path}"
        for path, item in _openapi()["paths"].items()
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    ]


OPERATIONS = _operation_labels()


@dataclass(frozen=True)
class World:
    tokens: dict[str, str]
    learner_id: int
    learner_external_id: str
    # Known primary keys by route ("experiments", "logs/personalization") and path parameter.
    known: dict[str, dict[str, int]]


def _seed() -> World:
    learner = UserFactory(external_id="fuzz-learner")
    service = ServiceAccountFactory()
    staff = StaffFactory()
    load_catalog()
    content_catalog_load(path=settings.BASE_DIR / "fixtures" / "content.json")
    skill_assessment_record(user=learner, skill="debugging", score=0.2)
    skill_assessment_record(user=learner, skill="python_basics", score=0.9)
    experiment = make_experiment(start=False)
    client = token_client(learner)

    def created(path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = client.post(f"{API_PREFIX}{path}", payload, format="json")
        assert response.status_code in {200, 201}, (path, response.content)
        return response.json()

    decision = created("decisions/", {"context": "MISSION"})
    outcome = created(
        "outcomes/",
        {
            "event_id": "fuzz-1",
            "context": "MISSION",
            "outcome_type": "MISSION_COMPLETED",
            "retention_score": 0.8,
            "decision": decision["id"],
        },
    )
    recommendation = created("recommendations/generate/", {"context": "CONTENT", "limit": 3})
    path = created("learning-paths/", {"goal": "Get unstuck"})
    interaction = created("interactions/", {"type": "READING", "service": "library"})
    known = {
        "users": learner.pk,
        "strategies": experiment.variants.first().strategy_id,
        "experiments": experiment.pk,
        "decisions": decision["id"],
        "outcomes": outcome["id"],
        "recommendations": recommendation["results"][0]["id"],
        "learning-paths": path["id"],
        "interactions": interaction["id"],
        "content-items": ContentItem.objects.values_list("pk", flat=True).first(),
        "configs": StrategyConfig.objects.filter(user=learner).values_list("pk", flat=True).first(),
        "logs/personalization": PersonalizationLogFactory(user=learner).pk,
        "logs/translation": TranslationLogFactory(user=learner).pk,
        "audit": AuditEvent.objects.values_list("pk", flat=True).first(),
        "effectiveness": Effectiveness.objects.values_list("pk", flat=True).first(),
    }
    item_id = (
        LearningPathItem.objects.filter(stage__path_id=path["id"])
        .values_list("pk", flat=True)
        .first()
    )
    return World(
        tokens={
            name: Token.objects.get_or_create(user=user)[0].key
            for name, user in (("learner", learner), ("service", service), ("staff", staff))
        },
        learner_id=learner.pk,
        learner_external_id=learner.external_id,
        known={
            route: {"id": pk, "item_id": item_id} if route == "learning-paths" else {"id": pk}
            for route, pk in known.items()
            if pk is not None
        },
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """One seed for the module, rolled back at its end; each test runs in a savepoint of it.
    A local-memory cache of its own, cleared after every example, so that no example reads
    a catalog cached from another one's rolled-back writes."""
    with (
        django_db_blocker.unblock(),
        override_settings(
            CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        ),
        transaction.atomic(),
    ):
        django_cache.clear()
        yield _seed()
        transaction.set_rollback(True)


def _route(path_template: str) -> str:
    """ "/api/v1/learning-paths/{id}/items/{item_id}/complete/" -> "learning-paths"."""
    return path_template.removeprefix(API_PREFIX).split("/{", 1)[0].strip("/")


def _number_slots(value: Any, at: tuple = (), nested: bool = False) -> list[tuple]:
    """Where a hostile number can go: in place of any number, or under a new key of any
    object nested in the body (free-form JSON such as an interaction's metadata)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [at]
    if isinstance(value, dict):
        slots = [(*at, "n")] if nested else []
        for key, item in value.items():
            slots += _number_slots(item, (*at, key), nested=True)
        return slots
    if isinstance(value, list):
        return [s for i, item in enumerate(value) for s in _number_slots(item, (*at, i), nested)]
    return []


def _replaced(value: Any, at: tuple, new: Any) -> Any:
    if not at:
        return new
    head, rest = at[0], at[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value.get(head), rest, new)}
    return [_replaced(item, rest, new) if i == head else item for i, item in enumerate(value)]


def _json_body(body: Any, data: st.DataObject) -> str:
    """The body as JSON, sometimes with one hostile number literal in it."""
    slots = _number_slots(body)
    if slots and data.draw(st.booleans(), label="hostile number"):
        at = data.draw(st.sampled_from(slots), label="number at")
        literal = data.draw(st.sampled_from(HOSTILE_NUMBERS), label="literal")
        return json.dumps(_replaced(body, at, _NUMBER_SLOT)).replace(f'"{_NUMBER_SLOT}"', literal)
    return json.dumps(body)


def _send(client: APIClient, case: Any, world: World, caller: str, data: st.DataObject) -> Any:
    known = world.known.get(_route(case.operation.path), {})
    for name in list(case.path_parameters):
        if name in known and data.draw(st.booleans(), label=f"known {name}"):
            case.path_parameters[name] = known[name]
    request = case.as_transport_kwargs(base_url="http://testserver")
    # The case's own headers, not the transport's defaults (User-Agent and the like).
    headers = {
        name: value
        for name, value in case.headers.items()
        if name.lower() not in {"authorization", "content-type", "x-on-behalf-of"}
    }
    headers["Authorization"] = f"Token {world.tokens[caller]}"
    on_behalf_of = [case.headers.get("X-On-Behalf-Of"), None]
    if caller == "service":
        on_behalf_of += [world.learner_external_id, f"id:{world.learner_id}"]
    acting_for = data.draw(st.sampled_from(on_behalf_of), label="X-On-Behalf-Of")
    if acting_for is not None:
        headers["X-On-Behalf-Of"] = acting_for
    url = urlsplit(request["url"])
    query = urlencode(request.get("params") or {}, doseq=True)
    path = f"{url.path}?{query}" if query else url.path
    content_type = request["headers"].get("Content-Type", "application/json")
    if "json" in request:
        body: str | bytes = _json_body(request["json"], data)
    else:
        body = request.get("data") or b""
    shown = {name: value for name, value in headers.items() if name != "Authorization"}
    note(f"{caller}: {case.method} {path}\nheaders: {shown}\nbody: {body!r}"[:4000])
    return client.generic(case.method, path, body, content_type=content_type, headers=headers)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz__any_request__no_5xx_and_errors_in_shape(world, db, label, caller):
    method, path = label.split(" ", 1)
    operation = _schema()[path][method]
    cases = operation.as_strategy(generation_mode=GenerationMode.POSITIVE) | (
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    )
    has_body = "requestBody" in _openapi()["paths"][path][method.lower()]
    client = APIClient()

    @hypothesis_settings(
        max_examples=EXAMPLES_WITH_BODY if has_body else EXAMPLES_WITHOUT_BODY,
        database=None,
        deadline=None,
        # No explain phase: it reruns a failure many times to list the lines it ran.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )
    @seed(zlib.crc32(f"{label} {caller}".encode()))
    @given(case=cases, data=st.data())
    def request_answers_without_server_error(case, data):
        try:
            with transaction.atomic():
                response = _send(client, case, world, caller, data)
                transaction.set_rollback(True)
        finally:
            django_cache.clear()
        status = response.status_code
        assert status < 500, response.content[:2000]
        if response.content:
            assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
            response.json()
        if status >= 400:
            assert_error_shape(response, status)

    request_answers_without_server_error()
