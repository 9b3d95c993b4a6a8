"""Rate limits, counted in the shared cache (Redis in production) so that several gunicorn
workers enforce one limit between them (DESIGN.md §10)."""

import hashlib
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from rest_framework import throttling
from rest_framework.settings import api_settings

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

from config.api.permissions import acts_for_users, caller_of


class AnonymousRateThrottle(throttling.AnonRateThrottle):
    scope = "anon"


class CallerRateThrottle(throttling.SimpleRateThrottle):
    """Counts per authenticated caller. Service accounts (act_for_users) speak for many users
    and get the `service` rate; everyone else the `user` rate. A service account acting on
    behalf of users is still one caller."""

    scope = "user"

    def allow_request(self, request: "Request", view: "APIView") -> bool:
        caller = caller_of(request)
        if not (caller and caller.is_authenticated):
            return True
        self.scope = "service" if acts_for_users(caller) else "user"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: "Request", view: "APIView") -> str | None:
        caller = caller_of(request)
        return self.cache_format % {"scope": self.scope, "ident": caller.pk}


class LoginRateThrottle(throttling.SimpleRateThrottle):
    """Password guessing on `auth/token/`. The rate is read when the view runs, from
    DEFAULT_THROTTLE_RATES, not frozen when the module is imported."""

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES
        if self.scope not in rates:
            raise ImproperlyConfigured(f"No throttle rate set for the {self.scope!r} scope.")
        rate = rates[self.scope]
        return None if rate is None else str(rate)


class LoginAddressThrottle(LoginRateThrottle):
    """Attempts from one client address (NUM_PROXIES says which address that is)."""

    scope = "login_ip"

    def get_cache_key(self, request: "Request", view: "APIView") -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUsernameThrottle(LoginRateThrottle):
    """Attempts at one username from any number of addresses. Usernames that differ only in
    case or Unicode form count together; the key holds a digest, not the name."""

    scope = "login_user"

    def get_cache_key(self, request: "Request", view: "APIView") -> str | None:
        data = request.data
        username = data.get("username") if isinstance(data, Mapping) else None
        if not isinstance(username, str) or not username:
            return None  # nothing to guess at: the view answers 400
        normalized = unicodedata.normalize("NFKC", username).casefold()
        ident = hashlib.sha256(normalized.encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}
