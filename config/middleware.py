from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from config.api.errors import error_response, is_api_request


class RequestBodyLimitMiddleware:
    """Answers an oversized API request body with a JSON 413 before anything reads it.

    DRF's parsers read the body as a stream, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE check
    (which guards `request.body`) never fires for JSON; the declared Content-Length is
    checked here instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and is_api_request(request):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return error_response(
                    400, "invalid_content_length", "The Content-Length header is not a number."
                )
            if length > limit:
                return error_response(
                    413,
                    "request_too_large",
                    f"The request body is {length} bytes; the limit is {limit} bytes. "
                    "Send the data in smaller batches.",
                )
        return self.get_response(request)
