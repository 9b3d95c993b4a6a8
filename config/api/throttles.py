"""Rate limits, counted in the shared cache (Redis in production) so that several gunicorn
workers enforce one limit between them (DESIGN.md §10)."""

from typing import TYPE_CHECKING

from rest_framework import throttling

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
