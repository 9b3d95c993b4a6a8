"""A real HTTP server in a thread that misbehaves as scripted, then forwards to Attune.

Each incoming request takes the next fault of the script; once the script is used up, requests
are forwarded to the upstream server unchanged. Every request is recorded, so a test can check
how often the client sent it and with which body."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import httpx

FORWARDED_HEADERS = ("Authorization", "X-On-Behalf-Of", "Content-Type", "Accept", "User-Agent")
ANSWERED_HEADERS = ("Content-Type", "Retry-After", "Allow")


@dataclass(frozen=True)
class Answer:
    """Answer this instead of forwarding."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering."""


@dataclass(frozen=True)
class ForwardThenAnswer:
    """Forward (the server does the work), then lose its answer and answer this instead."""

    status: int


Fault = Answer | Drop | ForwardThenAnswer


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def error_body(status: int, code: str, detail: str, attr: str | None = None) -> dict[str, Any]:
    """The server's error shape (DESIGN.md §7)."""
    error_type = "server_error" if status >= 500 else "client_error"
    return {"type": error_type, "errors": [{"code": code, "detail": detail, "attr": attr}]}


class FaultyProxy:
    def __init__(self, upstream: str, script: Iterable[Fault] = ()) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[SeenRequest] = []
        self._script = list(script)
        self._lock = threading.Lock()
        self._forwarder = httpx.Client(timeout=30)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *faults: Fault) -> None:
        """Appends faults for the next requests."""
        with self._lock:
            self._script.extend(faults)

    def seen(self, method: str, path: str) -> list[SeenRequest]:
        """The recorded requests of this method to this path (without the query)."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._forwarder.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _next(self, seen: SeenRequest) -> Fault | None:
        with self._lock:
            self.requests.append(seen)
            return self._script.pop(0) if self._script else None

    def _forward(self, seen: SeenRequest, target: str) -> httpx.Response:
        headers = {name: seen.headers[name] for name in FORWARDED_HEADERS if name in seen.headers}
        return self._forwarder.request(
            seen.method, self.upstream + target, headers=headers, content=seen.body
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def do_PATCH(self) -> None:
                self._handle()

            def do_PUT(self) -> None:
                self._handle()

            def do_DELETE(self) -> None:
                self._handle()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = SeenRequest(
                    method=self.command,
                    path=self.path.split("?", 1)[0],
                    headers=httpx.Headers(list(self.headers.items())),
                    body=body,
                )
                fault = proxy._next(seen)
                if isinstance(fault, Drop):
                    self.close_connection = True
                    return
                if isinstance(fault, Answer):
                    payload = b"" if fault.body is None else json.dumps(fault.body).encode()
                    headers = {"Content-Type": "application/json", **fault.headers}
                    self._answer(fault.status, headers, payload)
                    return
                upstream = proxy._forward(seen, self.path)
                if isinstance(fault, ForwardThenAnswer):
                    payload = json.dumps(
                        error_body(fault.status, "bad_gateway", "The answer was lost.")
                    ).encode()
                    self._answer(fault.status, {"Content-Type": "application/json"}, payload)
                    return
                headers = {
                    name: upstream.headers[name]
                    for name in ANSWERED_HEADERS
                    if name in upstream.headers
                }
                self._answer(upstream.status_code, headers, upstream.content)

            def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
