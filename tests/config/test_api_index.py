import re
from pathlib import Path

import pytest
from django.urls import Resolver404, URLPattern, URLResolver, resolve

from config.api import router
from config.api.index import DESCRIPTION_LIMIT, api_routes, summary_line

# DESIGN.md §7's table, one route a row (the rows that name several routes split up).
DESIGN_ROUTES = [
    "auth/token/",
    "me/",
    "me/export/",
    "me/preferences/",
    "me/skills/",
    "me/prompt-context/",
    "users/",
    "users/{id}/merge/",
    "interactions/",
    "interactions/summary/",
    "strategies/",
    "configs/",
    "experiments/",
    "experiments/{id}/start/",
    "experiments/{id}/complete/",
    "experiments/{id}/cancel/",
    "experiments/{id}/results/",
    "experiments/{id}/ship/",
    "experiments/plan/",
    "decisions/",
    "holdouts/",
    "rollouts/",
    "rollouts/{id}/deactivate/",
    "effectiveness/offline/",
    "webhooks/",
    "webhooks/{id}/deliveries/",
    "webhooks/{id}/test/",
    "outcomes/",
    "effectiveness/",
    "recommendations/",
    "recommendations/generate/",
    "recommendations/{id}/accept/",
    "recommendations/{id}/decline/",
    "recommendations/{id}/complete/",
    "learning-paths/",
    "learning-paths/{id}/",
    "learning-paths/{id}/items/{item_id}/complete/",
    "logs/personalization/",
    "logs/translation/",
    "logs/stats/",
    "audit/",
]


def _router_routes() -> dict[str, set[str]]:
    """Each route of config/api/router.py in the schema's spelling (`{id}` for the primary
    key), with the methods its view answers: read from the resolver, not from the index."""

    def spell(pattern: str) -> str:
        pattern = pattern.removeprefix("^").removesuffix("$")
        pattern = re.sub(r"\(\?P<pk>[^)]*\)|<(?:\w+:)?pk>", "{id}", pattern)
        pattern = re.sub(r"\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>", r"{\1\2}", pattern)
        return pattern.replace("\\", "")

    def walk(patterns: list, prefix: str = ""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern), entry.callback

    routes: dict[str, set[str]] = {}
    for pattern, callback in walk(router.urlpatterns):
        if "format" in pattern:  # the router's `.json` suffix variants
            continue
        actions = getattr(callback, "actions", None)
        if actions:
            methods = {method.upper() for method in actions} - {"OPTIONS", "HEAD"}
        else:
            view = callback.view_class()
            methods = set(view.allowed_methods) - {"OPTIONS", "HEAD"}
        routes.setdefault("/api/v1/" + spell(pattern), set()).update(methods)
    return routes


def _index(client) -> dict:
    response = client.get("/api/v1/")
    assert response.status_code == 200, response.content
    return response.json()


def test_api_index__anonymous__lists_every_router_route_with_its_methods(client):
    listed = {route["path"]: set(route["methods"]) for route in _index(client)["routes"]}
    expected = _router_routes()
    assert len(expected) > 40
    assert listed == expected


def test_api_index__design_table__every_route_in_the_router_is_listed(client):
    listed = {route["path"] for route in _index(client)["routes"]}
    in_router = []
    for route in DESIGN_ROUTES:
        try:
            match = resolve("/api/v1/" + route.replace("{id}", "1").replace("{item_id}", "1"))
        except Resolver404:
            continue
        if match.url_name is None:  # the catch-all that answers 404 under /api/
            continue
        in_router.append(route)
        assert "/api/v1/" + route in listed, route
    # The table's routes are the router's: only a route still to be built may be missing.
    assert len(in_router) >= len(DESIGN_ROUTES) - 1


def test_api_index__every_route__methods_and_one_line_description(client):
    for route in _index(client)["routes"]:
        assert route["methods"], route
        assert set(route["methods"]) <= {"GET", "POST", "PUT", "PATCH", "DELETE"}, route
        description = route["description"]
        assert description, route
        assert "\n" not in description
        assert len(description) <= DESCRIPTION_LIMIT, route


def test_api_index__links__docs_and_schema_answer(client):
    body = _index(client)
    assert body["docs"] == "http://testserver/api/docs/"
    assert body["schema"] == "http://testserver/api/schema/"
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/api/schema/").status_code == 200


def test_api_index__invalid_token__still_public(client):
    response = client.get("/api/v1/", HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 200


def test_api_index__post__405_in_error_shape(client):
    response = client.post("/api/v1/", {}, content_type="application/json")
    assert response.status_code == 405
    assert response.json() == {
        "type": "client_error",
        "errors": [
            {"code": "method_not_allowed", "detail": 'Method "POST" not allowed.', "attr": None}
        ],
    }


def test_api_index__unknown_route_below__404_in_error_shape(client):
    response = client.get("/api/v1/no-such-route/")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "The audit trail, newest first.\nStaff only.",
            "The audit trail, newest first. Staff only.",
        ),
        # Neither "e.g. the" nor "DESIGN.md §4" ends a sentence.
        ("Merge one (e.g. the anonymous one).", "Merge one (e.g. the anonymous one)."),
        ("Per DESIGN.md §4, decide. Then", "Per DESIGN.md §4, decide. Then"),
        ("", ""),
    ],
)
def test_summary_line__short_sentences__joined_on_one_line(text, line):
    assert summary_line(text) == line


def test_summary_line__first_sentence_too_long__cut_at_a_word():
    text = "word " * 100 + "end. Next."
    line = summary_line(text)
    assert len(line) <= DESCRIPTION_LIMIT
    assert line.endswith("word…")


def test_summary_line__second_sentence_too_long__left_out():
    text = "Short. Long" + " long" * 50 + " sentence."
    assert summary_line(text) == "Short."


def test_api_routes__built_once():
    assert api_routes() is api_routes()


def test_readme__routes_table__names_every_route_of_the_index(client):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("The routes (all under `/api/v1/`") :]
    table = table[: table.index("\n\n", table.index("| route |"))]
    named = set(re.findall(r"`([a-z{][^`]*/)`", table))
    listed = {route["path"].removeprefix("/api/v1/") for route in _index(client)["routes"]}
    assert listed - named == set()
    assert named - listed == set()
