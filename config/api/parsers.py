"""The JSON parser for every API request body."""

import json
import math
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _check_values(data: Any) -> None:
    """Reject what the database or the response could not hold: NUL characters (PostgreSQL
    text), lone UTF-16 surrogates (not encodable as UTF-8) and numbers too large for a
    float (JSON allows 1e999; json.loads makes it inf, which no JSON column stores).
    Iterative, so deep nesting cannot exhaust the stack. The float check rides on this walk,
    which visits every value anyway, rather than a parse_float hook, which would add a Python
    call per number of a 1,000-item batch."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ParseError("JSON strings may not contain NUL characters (\\u0000).")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ParseError(
                    "JSON strings may not contain lone surrogates (\\ud800–\\udfff)."
                ) from exc
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ParseError("JSON numbers must fit a 64-bit float (at most about 1.8e308).")


class JSONParser(parsers.JSONParser):
    """DRF's parser, stricter: NaN, Infinity and numbers beyond a float, NUL characters, lone
    surrogates and nesting too deep to parse are a 400 in the error shape instead of reaching
    a view."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
            data = json.loads(text, parse_constant=_reject_constant)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the document is nested too deeply.") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        _check_values(data)
        return data
