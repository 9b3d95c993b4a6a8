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
        "Act for one of your learners: `<external_id>` (a bare value, digits too, is always "
        "an external id) or `id:<attune id>`. Only for callers holding "
        "personalization.act_for_users (service accounts): anyone else gets 403. The target "
        "must be an active learner: staff or service accounts as targets are 403 "
        "(`target_not_learner`), an unknown or inactive one 404."
    ),
}


ON_BEHALF_OF_ERRORS = {
    "403": (
        "X-On-Behalf-Of given by a caller without personalization.act_for_users, or naming "
        "staff or a service account; or a write that needs a learner (`learner_required`)."
    ),
    "404": "X-On-Behalf-Of names no active user.",
}
# Operation extension set with extend_schema(extensions={BATCH_LIMIT: n}): the body is one
# object or a list of at most n of them.
BATCH_LIMIT = "x-batch-limit"


def add_on_behalf_of_header(result: dict, generator: object, **kwargs: object) -> dict:
    """Postprocessing hook: every authenticated operation accepts X-On-Behalf-Of and documents
    its 403 and 404; operations marked with BATCH_LIMIT take one object or a list."""
    components = result.get("components", {}).get("schemas", {})
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/") or path == "/api/v1/auth/token/":
            continue
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            operation.setdefault("parameters", []).append(dict(ON_BEHALF_OF_PARAMETER))
            for code, description in ON_BEHALF_OF_ERRORS.items():
                if code not in operation["responses"] and f"ErrorResponse{code}" in components:
                    operation["responses"][code] = {
                        "description": description,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/ErrorResponse{code}"}
                            }
                        },
                    }
            if BATCH_LIMIT in operation:
                _one_or_many(operation, int(operation[BATCH_LIMIT]))
    return result


def _one_or_many(operation: dict, limit: int) -> None:
    for media in operation.get("requestBody", {}).get("content", {}).values():
        schema = media.get("schema", {})
        if schema.get("type") == "array":
            item = schema["items"]
            media["schema"] = {"oneOf": [item, {"type": "array", "items": item, "maxItems": limit}]}
