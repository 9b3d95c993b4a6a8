"""`GET /api/v1/`: what the API offers, for a newcomer with curl.

The routes come from the same place as `/api/schema/`: drf-spectacular walks the URL resolver
(config/api/router.py), so a route added there appears here with its methods and the
leading sentences of its description, and nothing is listed by hand. Public: no authentication, so
that it answers before a token exists; throttled like any anonymous request.
"""

import functools
import re
from typing import TypedDict

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

API_PREFIX = "/api/v1/"
METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE")
DESCRIPTION_LIMIT = 160
# A sentence ends at ".", "!" or "?" followed by a space and a capital, a backtick or a
# parenthesis ("e.g. the" and "DESIGN.md §4" do not end one).
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`(])")


class Route(TypedDict):
    path: str
    methods: list[str]
    description: str


def summary_line(text: str) -> str:
    """The leading sentences of a docstring or schema description that fit on one line of
    DESCRIPTION_LIMIT characters ("Experiments with their variants nested. Staff only."); a
    first sentence longer than that is cut at a word, with an ellipsis."""
    sentences = SENTENCE_END.split(" ".join(text.split()))
    line = sentences[0]
    if len(line) > DESCRIPTION_LIMIT:
        return line[: DESCRIPTION_LIMIT - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    for sentence in sentences[1:]:
        if len(line) + 1 + len(sentence) > DESCRIPTION_LIMIT:
            break
        line = f"{line} {sentence}"
    return line


@functools.cache
def api_routes() -> tuple[Route, ...]:
    """Every documented route under /api/v1/, in path order. Built once per process: the
    routes change only with the code."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths: dict[str, dict[str, dict]] = {
        path: operations
        for path, operations in schema.get("paths", {}).items()
        if path.startswith(API_PREFIX)
    }
    routes: list[Route] = []
    for path in sorted(paths):
        operations = {method.upper(): op for method, op in paths[path].items()}
        methods = [method for method in METHOD_ORDER if method in operations]
        # GET's description is the view's own (a viewset's docstring); a route without GET is
        # an action, whose extend_schema or docstring describes it.
        texts = [operations[method].get("description") or "" for method in methods]
        routes.append(
            {
                "path": path,
                "methods": methods,
                "description": summary_line(next((text for text in texts if text), "")),
            }
        )
    return tuple(routes)


class ApiIndexView(APIView):
    """The routes of /api/v1/, their methods and what each is for, with links to the
    documentation and the OpenAPI schema."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    # Not an operation of the API it describes; the schema is linked from the answer.
    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response(
            {
                "name": "Attune API",
                "version": "v1",
                "docs": reverse("api-docs", request=request),
                "schema": reverse("api-schema", request=request),
                "authentication": (
                    "POST /api/v1/auth/token/ {username, password} answers {token}; then send "
                    "'Authorization: Token <token>'."
                ),
                "routes": list(api_routes()),
            }
        )
