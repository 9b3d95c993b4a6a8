"""OpenAPI extensions for the project's own authentication classes."""

from drf_spectacular.authentication import SessionScheme, TokenScheme


class AttuneTokenScheme(TokenScheme):
    target_class = "config.api.authentication.TokenAuthentication"


class AttuneSessionScheme(SessionScheme):
    target_class = "config.api.authentication.SessionAuthentication"


ON_BEHALF_OF_PARAMETER = {
    "name": "X-On-Behalf-Of",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": (
        "Act as this user (id or external_id). Only for callers holding "
        "personalization.act_for_users: anyone else gets 403, an unknown user 404."
    ),
}


def add_on_behalf_of_header(result: dict, generator: object, **kwargs: object) -> dict:
    """Postprocessing hook: every authenticated operation accepts X-On-Behalf-Of."""
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/") or path == "/api/v1/auth/token/":
            continue
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation.setdefault("parameters", []).append(dict(ON_BEHALF_OF_PARAMETER))
    return result
