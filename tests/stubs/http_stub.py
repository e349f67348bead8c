"""A tiny twisted.web server on 127.0.0.1 whose answers a test sets per path.

Each route is a function of the request returning (code, headers, body) or None to hang
(a server that never answers: the timeout tests). Requests are recorded so a test can
check what the client sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

Answer = tuple[int, dict[str, str], bytes] | None
Handler = Callable[[object], Answer]


@dataclass
class Recorded:
    method: str
    path: str
    args: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class _Root(Resource):
    isLeaf = True

    def __init__(self, stub: "StubServer") -> None:
        super().__init__()
        self.stub = stub

    def render(self, request):
        path = request.path.decode("utf-8")
        self.stub.requests.append(Recorded(
            request.method.decode("ascii"), path,
            {key.decode(): [value.decode() for value in values] for key, values in request.args.items()},
            {key.decode().lower(): value.decode() for key, value in request.requestHeaders.getAllRawHeaders()
             for value in value[:1]},
            request.content.read() if request.content else b""))
        handler = self.stub.routes.get(path) or self.stub.routes.get("*")
        if handler is None:
            request.setResponseCode(404)
            return b"not found"
        answer = handler(request)
        if answer is None:
            self.stub.hanging.append(request)
            return NOT_DONE_YET
        code, headers, body = answer
        request.setResponseCode(code)
        for name, value in headers.items():
            request.setHeader(name.encode(), value.encode())
        return body


class _QuietSite(Site):
    """The platform's own access log is not the hub's log: keep it out of what tests search."""

    def log(self, request) -> None:
        pass


@dataclass
class StubServer:
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    hanging: list = field(default_factory=list)
    port: object = None

    def start(self) -> "StubServer":
        self.port = reactor.listenTCP(0, _QuietSite(_Root(self)), interface="127.0.0.1")
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port.getHost().port}"

    def url(self, path: str) -> str:
        return self.base + path

    async def stop(self) -> None:
        for request in self.hanging:
            channel = getattr(request, "channel", None)
            if channel is not None and channel.transport is not None:
                channel.transport.abortConnection()
        await self.port.stopListening()


def json_answer(payload, code: int = 200, headers: dict[str, str] | None = None) -> Callable:
    import json

    body = json.dumps(payload).encode()
    return lambda request: (code, {"Content-Type": "application/json", **(headers or {})}, body)


def fixed(code: int, body: bytes, content_type: str = "text/html; charset=utf-8", **headers: str) -> Callable:
    return lambda request: (code, {"Content-Type": content_type, **headers}, body)
