"""The one error shape (DESIGN.md §7) for responses built outside DRF views: middleware and
Django's error handlers."""

from django.http import HttpRequest, JsonResponse


def error_response(status: int, code: str, detail: str, attr: str | None = None) -> JsonResponse:
    error_type = "server_error" if status >= 500 else "client_error"
    return JsonResponse(
        {"type": error_type, "errors": [{"code": code, "detail": detail, "attr": attr}]},
        status=status,
    )


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")
