"""Maps every exception raised under /api/ to the error shape of DESIGN.md §7.

drf-standardized-errors formats the response and documents it in the OpenAPI schema; this
class teaches it the project's domain exceptions (config.errors), Django's ValidationError
and Django's oversized-body error. Wired through DRF_STANDARDIZED_ERRORS in settings."""

from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_standardized_errors.handler import ExceptionHandler as BaseExceptionHandler
from rest_framework import exceptions, status
from rest_framework.settings import api_settings

from config.errors import DomainError


class ConflictAPIError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object's current state does not allow this."
    default_code = "conflict"


class PayloadTooLargeAPIError(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large."
    default_code = "request_too_large"


class UnprocessableAPIError(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request contradicts what is stored."
    default_code = "unprocessable"


_API_ERROR_BY_STATUS: dict[int, type[exceptions.APIException]] = {
    403: exceptions.PermissionDenied,
    404: exceptions.NotFound,
    409: ConflictAPIError,
    413: PayloadTooLargeAPIError,
    422: UnprocessableAPIError,
}


def django_validation_error_detail(exc: DjangoValidationError) -> Any:
    """Django's ValidationError as DRF's detail: field errors keep their field as `attr`,
    errors without a field go under `non_field_errors`."""
    if hasattr(exc, "error_dict"):
        return {
            (api_settings.NON_FIELD_ERRORS_KEY if field == "__all__" else field): messages
            for field, messages in exc.message_dict.items()
        }
    return {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}


class ExceptionHandler(BaseExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, DomainError):
            if exc.status_code == 400:
                return exceptions.ValidationError(
                    {exc.attr or api_settings.NON_FIELD_ERRORS_KEY: [exc.detail]}, code=exc.code
                )
            api_error = _API_ERROR_BY_STATUS.get(exc.status_code, exceptions.APIException)
            # A detail keyed by the attribute becomes the error's `attr`.
            detail: Any = {exc.attr: [exc.detail]} if exc.attr else exc.detail
            converted = api_error(detail=detail, code=exc.code)
            converted.status_code = exc.status_code
            return converted
        if isinstance(exc, DjangoValidationError):
            return exceptions.ValidationError(django_validation_error_detail(exc))
        if isinstance(exc, RequestDataTooBig):
            return PayloadTooLargeAPIError()
        if isinstance(exc, SuspiciousOperation):  # e.g. TooManyFieldsSent
            return exceptions.ParseError(f"The request was refused: {exc}")
        return super().convert_known_exceptions(exc)
