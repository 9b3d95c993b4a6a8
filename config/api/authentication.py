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

        target = _target_read(request, reference)
        if target is None:
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


def _target_read(request: Request, reference: str) -> Any:
    """The learner `reference` names as a view's joined read found it with the caller
    (`attune_target`), when it is what user_get_by_reference answers: active and not merged;
    None otherwise (user_get_by_reference reads it, following merges)."""
    kept = getattr(request._request, "attune_target", None)
    if kept is None or kept[0] != reference:
        return None
    target = kept[1]
    if target is None or not target.is_active or target.merged_into is not None:
        return None
    return target


# Stand for the looked-up value while a lookup is compiled; replaced by the real one per call.
_KEY_PLACEHOLDER = "0" * 40
_PLACEHOLDERS: dict[str, Any] = {"pk": -7_391_004_211, "external_id": "\x01reference\x01"}


@dataclass(frozen=True)
class UserLookup:
    """A lookup of one user row as the ORM compiles it for one connection: the SQL and its
    parameters (the looked-up value's position among them), the user's fields in column
    order (the last column is whether the user holds act_for_users) and the converters of
    the columns that need one."""

    sql: str
    params: tuple[Any, ...]
    value_position: int
    field_names: tuple[str, ...]
    converters: tuple[tuple[int, tuple[Any, ...], Any], ...]


# Per connection object (each thread has its own): converters may be bound to its backend.
_lookups: "weakref.WeakKeyDictionary[Any, dict[str, UserLookup]]" = weakref.WeakKeyDictionary()


def _compiled(connection: Any, queryset: Any, placeholder: Any) -> UserLookup:
    compiler = queryset.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    columns = [expression for expression, _sql, _alias in compiler.select][:-1]
    return UserLookup(
        sql=sql,
        params=tuple(params),
        value_position=list(params).index(placeholder),
        field_names=tuple(column.target.attname for column in columns),
        converters=tuple(
            (position, tuple(converters), column)
            for position, (converters, column) in compiler.get_converters(columns).items()
        ),
    )


def _lookup(connection: Any, kind: str) -> UserLookup:
    compiled = _lookups.setdefault(connection, {})
    lookup = compiled.get(kind)
    if lookup is None:
        from personalization.models import User
        from personalization.selectors import users_by_reference

        queryset: Any
        if kind == "token":
            queryset = User.objects.filter(auth_token__key=_KEY_PLACEHOLDER).annotate(
                holds_act_for_users=holds_act_for_users()
            )
            lookup = _compiled(connection, queryset, _KEY_PLACEHOLDER)
        else:
            placeholder = _PLACEHOLDERS[kind]
            queryset = users_by_reference().filter(**{kind: placeholder})
            lookup = _compiled(connection, queryset, placeholder)
        compiled[kind] = lookup
    return lookup


def token_lookup(connection: Any) -> UserLookup:
    """The token's user lookup for `connection`, compiled on its first use."""
    return _lookup(connection, "token")


def reference_lookup(connection: Any, reference: str) -> tuple[UserLookup, Any] | None:
    """The lookup of the user an X-On-Behalf-Of reference names (as
    personalization.selectors.user_get_by_reference reads it, merged users included) and the
    value to bind; None when the reference can name nobody."""
    from personalization.selectors import reference_filter

    named = reference_filter(reference)
    if named is None:
        return None
    ((kind, value),) = named.items()
    return _lookup(connection, kind), value


def lookup_params(lookup: UserLookup, value: Any) -> list[Any]:
    bound = list(lookup.params)
    bound[lookup.value_position] = value
    return bound


def row_user(connection: Any, lookup: UserLookup, row: Sequence[Any]) -> Any:
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
            cursor.execute(lookup.sql, lookup_params(lookup, key))
            return cursor.fetchone()

    row = first_read(connection, read)
    return None if row is None else row_user(connection, lookup, row)


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
