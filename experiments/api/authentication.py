"""The decide route's token lookup: one statement for the caller and the decision.

A decide call with a body of exactly `{"context": <known context>}` authenticates with the
learner read of experiments/services/decisions.py joined to the token lookup (and, for a
service account acting for a learner, to the lookup of the learner it names), so the
request's database work is that statement and the decision's INSERT. Every other request
(another body, session cookies) authenticates as everywhere else; the answers, errors
included, are the same either way: the checks of config/api/authentication.py run on what
the joined read found."""

import json
import time
import weakref
from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.http.request import RawPostDataException
from rest_framework.request import Request

from config.api.authentication import (
    ON_BEHALF_OF_HEADER,
    lookup_params,
    reference_lookup,
    row_user,
    token_lookup,
    token_user,
)
from config.db import first_read
from experiments.models import Context
from experiments.services.decisions import (
    LearnerState,
    learner_read_params,
    learner_read_sql,
    learner_state_from_row,
)

CONTEXTS = frozenset(Context.values)
# A larger body is no `{"context": ...}` and is left to the parser.
BODY_LIMIT = 256

# Per connection object and kind of read, as the lookups they are made of.
_statements: "weakref.WeakKeyDictionary[Any, dict[str, str]]" = weakref.WeakKeyDictionary()


def decide_context(request: Request) -> str | None:
    """The context of a decide call that the joined read can serve, read from the raw body
    before the parser runs (it reads the same bytes again); None for anything else."""
    meta = request.META
    if request.method != "POST":
        return None
    if request.content_type.split(";")[0].strip() != "application/json":
        return None
    try:
        if not 0 < int(meta.get("CONTENT_LENGTH") or 0) <= BODY_LIMIT:
            return None
        body = json.loads(request._request.body)
    except (ValueError, RawPostDataException):
        return None
    if not (isinstance(body, dict) and len(body) == 1):
        return None
    context = body.get("context")
    return context if isinstance(context, str) and context in CONTEXTS else None


def _statement(connection: Any, kind: str, make: Callable[[], str]) -> str:
    statements = _statements.setdefault(connection, {})
    sql = statements.get(kind)
    if sql is None:
        sql = statements[kind] = make()
    return sql


def learner_by_token(key: str, context: str) -> tuple[Any, LearnerState] | None:
    """The user holding the token and their learner state in `context` (None: no such
    token), in one statement."""
    connection = connections[DEFAULT_DB_ALIAS]
    lookup = token_lookup(connection)
    sql = _statement(connection, "token", lambda: learner_read_sql(lookup.sql))
    params = learner_read_params(context, source_params=lookup_params(lookup, key))

    def read() -> Any:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    row = first_read(connection, read)
    if row is None:
        return None
    width = len(lookup.field_names) + 1  # the user's columns and whether they act for users
    return row_user(connection, lookup, row), learner_state_from_row(row[width:])


def caller_and_learner(
    key: str, reference: str, context: str
) -> tuple[Any, Any, LearnerState | None] | None:
    """For a service account acting for a learner: the user holding the token, the user
    `reference` names (None: nobody, or a reference it cannot name) and that user's learner
    state in `context`, in one statement; None: no such token. Whether the caller may act
    for them is for the authentication to decide, as on every route."""
    connection = connections[DEFAULT_DB_ALIAS]
    caller_lookup = token_lookup(connection)
    named = reference_lookup(connection, reference)
    if named is None:
        found = token_user(key)
        return None if found is None else (found, None, None)
    target_lookup, value = named
    caller_width = len(caller_lookup.field_names) + 1

    def make() -> str:
        learner = learner_read_sql(target_lookup.sql)
        return (
            f"SELECT c.*, x.* FROM ({caller_lookup.sql}) c"  # noqa: S608 (compiled lookups)
            f" LEFT JOIN ({learner}) x ON 1 = 1"
        )

    sql = _statement(connection, f"for:{target_lookup.sql}", make)
    params = [
        *lookup_params(caller_lookup, key),
        *learner_read_params(context, source_params=lookup_params(target_lookup, value)),
    ]

    def read() -> Any:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    row = first_read(connection, read)
    if row is None:
        return None
    caller, rest = row_user(connection, caller_lookup, row), row[caller_width:]
    if rest[0] is None:  # the user's id: nobody has the reference
        return caller, None, None
    width = len(target_lookup.field_names) + 1
    return caller, row_user(connection, target_lookup, rest), learner_state_from_row(rest[width:])


def token_reader(request: Request) -> Callable[[str], Any] | None:
    """For config.api.authentication.TokenAuthentication on the decide route: a lookup of
    the token's user that also reads the learner state of the user decided for and keeps it
    on the request (`attune_learner_state`: context, user id, state, when the read began;
    with X-On-Behalf-Of also `attune_target`: the reference and the user it names), or None
    when the request is not a decide call the joined read can serve. The read runs before
    throttling and the permission checks: a refused request costs this one statement."""
    context = decide_context(request)
    if context is None:
        return None
    reference = request.META.get(ON_BEHALF_OF_HEADER, "").strip()

    def read(key: str) -> Any:
        started = time.perf_counter()
        if not reference:
            found = learner_by_token(key, context)
            if found is None:
                return None
            user, state = found
            request._request.attune_learner_state = (context, user.pk, state, started)  # type: ignore[attr-defined]
            return user
        both = caller_and_learner(key, reference, context)
        if both is None:
            return None
        caller, target, target_state = both
        request._request.attune_target = (reference, target)  # type: ignore[attr-defined]
        if target is not None and target_state is not None:
            request._request.attune_learner_state = (context, target.pk, target_state, started)  # type: ignore[attr-defined]
        return caller

    return read


def learner_state_read(request: Request, context: str) -> tuple[LearnerState | None, float | None]:
    """The state token_reader read for this request's user in `context` and when the read
    began; (None, None) when it read none."""
    kept = getattr(request._request, "attune_learner_state", None)
    if kept is None or kept[0] != context or kept[1] != request.user.pk:
        return None, None
    return kept[2], kept[3]
