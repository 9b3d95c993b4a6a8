from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.renderers import JSONRenderer

from config.api.errors import error_response, is_api_request
from config.api.parsers import JSONParser
from config.api.throttles import LoginAddressThrottle, LoginUsernameThrottle


class ObtainTokenView(ObtainAuthToken):
    """`POST /api/v1/auth/token/ {username, password}` → `{"token"}`. Throttled per client
    address and per username (ObtainAuthToken itself sets no throttles): 429 past the rate."""

    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    throttle_classes = [LoginAddressThrottle, LoginUsernameThrottle]

    @extend_schema(
        request=inline_serializer(
            "TokenRequest",
            {"username": serializers.CharField(), "password": serializers.CharField()},
        ),
        responses=inline_serializer("TokenResponse", {"token": serializers.CharField()}),
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


@csrf_exempt  # an unknown route answers 404 whatever the method, never a CSRF page
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    return error_response(
        404, "not_found", f"No API route matches {request.path}. The routes are at /api/docs/."
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: JSON in the error shape under /api/, Django's page elsewhere."""
    if is_api_request(request):
        return error_response(403, "csrf_failed", f"CSRF verification failed: {reason}")
    return csrf.csrf_failure(request, reason)
