"""Domain exceptions raised by services. The API's exception handler maps each to its status
code and the error shape of DESIGN.md §7; services never import DRF."""


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    status_code = 400
    default_code = "invalid"

    def __init__(self, detail: str, *, code: str | None = None, attr: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.attr = attr


class ConflictError(DomainError):
    """The request is valid but the target's state does not allow it (409)."""

    status_code = 409
    default_code = "conflict"


class NotFoundError(DomainError):
    status_code = 404
    default_code = "not_found"


class PermissionDeniedError(DomainError):
    status_code = 403
    default_code = "permission_denied"


class PayloadTooLargeError(DomainError):
    status_code = 413
    default_code = "request_too_large"


class UnprocessableError(DomainError):
    """Well-formed but contradicts what is stored, e.g. a repeated idempotency key (422)."""

    status_code = 422
    default_code = "unprocessable"
