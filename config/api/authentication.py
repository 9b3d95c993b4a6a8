"""Token and session authentication, both honouring `X-On-Behalf-Of` (DESIGN.md §7, §10).

A caller holding `personalization.act_for_users` (a client application's service account)
may name one of its learners as `X-On-Behalf-Of: <external_id>` or `X-On-Behalf-Of: id:<attune
id>`; the request then runs as that learner, and the caller is kept on the request for the
audit trail. A bare value is always an external id. Staff and service accounts are never
targets (403); anyone without the permission who sends the header gets 403; an unknown or
inactive user is 404."""

import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from config.api.permissions import acts_for_users, is_learner
from config.db import first_read
from personalization.roles import acts_for_users_known, holds_act_for_users

ON_BEHALF_OF_HEADER = "HTTP_X_ON_BEHALF_OF"
TOKEN_KEY = re.compile(r"[0-9a-f]{40}")


class OnBehalfOfMixin:
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)  # type: ignore[misc]
        if result is None:
            return None
        caller, auth = result
        reference = request.META.get(ON_BEHALF_OF_HEADER, "").strip()
        if not reference:
            return result
        if not acts_for_users(caller):
            raise exceptions.PermissionDenied(
                "X-On-Behalf-Of needs the permission personalization.act_for_users; "
                "send the request without the header to act as yourself."
            )
        from personalization.selectors import user_get_by_reference

        target = user_get_by_reference(reference=reference)
        if target is None:
            raise exceptions.NotFound(
                f"No active user has the external_id {reference[:100]!r} (send id:<attune id> "
                "to name a user by Attune's id)."
            )
        if not is_learner(target):
            raise exceptions.PermissionDenied(
                "X-On-Behalf-Of may name learners only: staff and service accounts act for "
                "themselves.",
                code="target_not_learner",
            )
        request._request.attune_caller = caller  # type: ignore[attr-defined]
        return target, auth


# Stands for the token's key while the lookup is compiled; replaced by the real key per call.
_KEY_PLACEHOLDER = "0" * 40


@dataclass(frozen=True)
class _TokenLookup:
    """The token's user lookup as the ORM compiles it for one connection: the SQL and its
    parameters (the key's position among them), the user's fields in column order (the last
    column is whether the user holds act_for_users) and the converters of the columns that
    need one."""

    sql: str
    params: tuple[Any, ...]
    key_position: int
    field_names: tuple[str, ...]
    converters: tuple[tuple[int, tuple[Any, ...], Any], ...]


# Per connection object (each thread has its own): converters may be bound to its backend.
_token_lookups: "weakref.WeakKeyDictionary[Any, _TokenLookup]" = weakref.WeakKeyDictionary()


def token_lookup(connection: Any) -> _TokenLookup:
    """The token's user lookup for `connection`, compiled on its first use."""
    lookup = _token_lookups.get(connection)
    if lookup is None:
        from personalization.models import User

        queryset = User.objects.filter(auth_token__key=_KEY_PLACEHOLDER).annotate(
            holds_act_for_users=holds_act_for_users()
        )
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        columns = [expression for expression, _sql, _alias in compiler.select][:-1]
        lookup = _TokenLookup(
            sql=sql,
            params=tuple(params),
            key_position=list(params).index(_KEY_PLACEHOLDER),
            field_names=tuple(column.target.attname for column in columns),
            converters=tuple(
                (position, tuple(converters), column)
                for position, (converters, column) in compiler.get_converters(columns).items()
            ),
        )
        _token_lookups[connection] = lookup
    return lookup


def token_params(lookup: _TokenLookup, key: str) -> list[Any]:
    bound = list(lookup.params)
    bound[lookup.key_position] = key
    return bound


def token_row_user(connection: Any, lookup: _TokenLookup, row: Sequence[Any]) -> Any:
    """The User of a row of `lookup` (its user columns, then whether it holds act_for_users),
    built as the ORM builds it."""
    from personalization.models import User

    values = list(row[: len(lookup.field_names) + 1])
    holds = bool(values.pop())
    for position, converters, column in lookup.converters:
        value = values[position]
        for convert in converters:
            value = convert(value, column, connection)
        values[position] = value
    user = User.from_db(connection.alias, lookup.field_names, values)
    acts_for_users_known(user, holds=holds)
    return user


def token_user(key: str) -> Any:
    """The active or inactive user holding this token, or None: one query, compiled once per
    connection instead of on every request, the row turned into a User as the ORM does. The
    same query says whether the user is a service account (DESIGN.md §3), so the permission
    checks of the request read no cache, and a revoked permission takes effect at once. As
    the request's first statement it stands in for the connection's health check
    (config/db.py first_read)."""
    connection = connections[DEFAULT_DB_ALIAS]
    lookup = token_lookup(connection)

    def read() -> Any:
        with connection.cursor() as cursor:
            cursor.execute(lookup.sql, token_params(lookup, key))
            return cursor.fetchone()

    row = first_read(connection, read)
    return None if row is None else token_row_user(connection, lookup, row)


class TokenAuthentication(OnBehalfOfMixin, authentication.TokenAuthentication):
    """A view may read more with the token's user: its `token_user_reader(request)` returns a
    lookup (key → user or None) that replaces token_user for that request, or None."""

    request: Request | None = None

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        self.request = request
        return super().authenticate(request)

    def user_for_key(self, key: str) -> Any:
        """The user holding the token (None: no such token)."""
        request = self.request
        view = (request.parser_context or {}).get("view") if request is not None else None
        make_reader = getattr(view, "token_user_reader", None)
        reader = make_reader(request) if make_reader is not None else None
        return (reader or token_user)(key)

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        # Tokens are 40 hex characters; anything else (a NUL byte…) never reaches the database.
        if not TOKEN_KEY.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = self.user_for_key(key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        # The token as DRF's own lookup answers it, without reading its row again.
        token = Token(key=key, user=user)
        token._state.adding = False
        return user, token


class SessionAuthentication(OnBehalfOfMixin, authentication.SessionAuthentication):
    pass


# Registers the OpenAPI descriptions of the two classes above.
import config.api.schema  # noqa: E402, F401
