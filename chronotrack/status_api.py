"""The collector's status API: ``/health``, ``/status`` and ``/metrics`` for monitoring (127.0.0.1:61612)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from klein import Klein
from twisted.internet.interfaces import IReactorTime

from chronotrack.metrics import CONTENT_TYPE


def iso_now(clock: IReactorTime) -> str:
    return datetime.fromtimestamp(clock.seconds(), timezone.utc).isoformat()


async def collector_report(clock: IReactorTime, collector) -> dict[str, Any]:
    """The collector's ``/status`` body: what the status API answers and, in one process, what
    the status page reads directly (so both always say the same thing)."""
    figures = await collector.status_figures()
    return {"service": "timing-collector", "status": "running", **figures, "timestamp": iso_now(clock)}


class StatusApp:
    """``collector`` is the running CollectorService (figures, database check, metrics).

    ``/health`` and ``/status`` answer JSON; ``/metrics`` the Prometheus text format.
    """

    app = Klein()

    def __init__(self, clock: IReactorTime, collector) -> None:
        self.clock = clock
        self.collector = collector

    def _json(self, request, body: dict[str, Any], code: int = 200) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return json.dumps(body).encode("utf-8")

    @app.route("/health", methods=["GET"])
    def health(self, request):
        return self._json(request, {"status": "healthy", "timestamp": iso_now(self.clock)})

    @app.route("/status", methods=["GET"])
    async def status(self, request):
        return self._json(request, await collector_report(self.clock, self.collector))

    @app.route("/metrics", methods=["GET"])
    async def metrics(self, request):
        body = await self.collector.metrics.render(self.clock)
        request.setHeader(b"Content-Type", CONTENT_TYPE.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-store")
        return body

    @app.handle_errors
    def failed(self, request, failure):
        code = 404 if "NotFound" in type(failure.value).__name__ else 500
        return self._json(request, {"error": "not found" if code == 404 else "internal error"}, code)
