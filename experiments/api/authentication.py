"""The decide route's token lookup: one statement for the caller and the decision.

A decide call with a body of exactly `{"context": <known context>}` and no `X-On-Behalf-Of`
authenticates with the learner read of experiments/services/decisions.py joined to the token
lookup, so the request's database work is that statement and the decision's INSERT. Every
other request (another body, a service account acting for a learner, session cookies)
authenticates as everywhere else; the answers, errors included, are the same either way."""

import json
import weakref
from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.http.request import RawPostDataException
from rest_framework.request import Request

from config.api.authentication import (
    ON_BEHALF_OF_HEADER,
    token_lookup,
    token_params,
    token_row_user,
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

# Per connection object, as the token lookup it is made of.
_statements: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def decide_context(request: Request) -> str | None:
    """The context of a decide call that the joined read can serve, read from the raw body
    before the parser runs (it reads the same bytes again); None for anything else."""
    meta = request.META
    if request.method != "POST" or meta.get(ON_BEHALF_OF_HEADER):
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


def learner_by_token(key: str, context: str) -> tuple[Any, LearnerState] | None:
    """The user holding the token and their learner state in `context` (None: no such
    token), in one statement."""
    connection = connections[DEFAULT_DB_ALIAS]
    lookup = token_lookup(connection)
    sql = _statements.get(connection)
    if sql is None:
        sql = _statements[connection] = learner_read_sql(lookup.sql)
    params = learner_read_params(context, source_params=token_params(lookup, key))

    def read() -> Any:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    row = first_read(connection, read)
    if row is None:
        return None
    width = len(lookup.field_names) + 1  # the user's columns and whether they act for users
    return token_row_user(connection, lookup, row), learner_state_from_row(row[width:])


def token_reader(request: Request) -> Callable[[str], Any] | None:
    """For config.api.authentication.TokenAuthentication on the decide route: a lookup of
    the token's user that also reads their learner state and keeps it on the request
    (`attune_learner_state`: context, user id, state), or None when the request is not a
    decide call the joined read can serve."""
    context = decide_context(request)
    if context is None:
        return None

    def read(key: str) -> Any:
        found = learner_by_token(key, context)
        if found is None:
            return None
        user, state = found
        request._request.attune_learner_state = (context, user.pk, state)  # type: ignore[attr-defined]
        return user

    return read


def learner_state_read(request: Request, context: str) -> LearnerState | None:
    """The state DecideTokenAuthentication read for this request's user in `context`."""
    kept = getattr(request._request, "attune_learner_state", None)
    if kept is None or kept[0] != context or kept[1] != request.user.pk:
        return None
    state: LearnerState = kept[2]
    return state
