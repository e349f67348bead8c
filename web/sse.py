"""``GET /stream``: every stored read as one Server-Sent Event.

A stream subscribes to ``LiveReads`` first and then sends the reads the client missed
(``Last-Event-ID``), holding live reads back until that catch-up is written, so nothing
falls in between and nothing is sent twice. A comment line every 15 s keeps proxies from
closing an idle stream. When the client goes away the stream unsubscribes at once.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from web.live import LiveReads
from web.queries import DisplayRead

log = Logger()

KEEPALIVE_SECONDS = 15.0
RECONNECT_MILLISECONDS = 3000
CATCH_UP_LIMIT = 1000


def format_event(read: DisplayRead) -> bytes:
    data = json.dumps(read.to_json(), separators=(",", ":"), ensure_ascii=False)
    return f"id: {read.id}\ndata: {data}\n\n".encode("utf-8")


def format_comment(text: str) -> bytes:
    return f": {text}\n\n".encode("utf-8")


def set_stream_headers(request: IRequest) -> None:
    request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
    request.setHeader(b"Cache-Control", b"no-cache")
    request.setHeader(b"X-Accel-Buffering", b"no")  # nginx-style proxies: do not buffer


class EventStream:
    """One client's stream. ``run()`` fires when the stream has ended, for whatever reason."""

    def __init__(self, request: IRequest, live: LiveReads, reactor: IReactorTime,
                 catch_up: Callable[[int], Awaitable[list[DisplayRead]]] | None,
                 last_event_id: int | None, keepalive_interval: float = KEEPALIVE_SECONDS) -> None:
        self._request = request
        self._live = live
        self._catch_up = catch_up
        self._last_event_id = last_event_id
        self._keepalive = LoopingCall(self._send_keepalive)
        self._keepalive.clock = reactor
        self._keepalive_interval = keepalive_interval
        self._unsubscribe: Callable[[], None] | None = None
        self._held: list[DisplayRead] | None = []  # live reads waiting for the catch-up
        self._sent_in_catch_up: set[int] = set()
        self._done: Deferred[None] = Deferred(lambda _: self.close())
        self.closed = False

    def run(self) -> Deferred[None]:
        set_stream_headers(self._request)
        self._request.notifyFinish().addBoth(lambda _: self.close())
        self._unsubscribe = self._live.subscribe(self._on_reads)
        self._write(f"retry: {RECONNECT_MILLISECONDS}\n".encode() + format_comment("connected"))
        self._keepalive.start(self._keepalive_interval, now=False)
        ensureDeferred(self._send_missed()).addErrback(self._catch_up_failed)
        return self._done

    async def _send_missed(self) -> None:
        if self._last_event_id is not None and self._catch_up is not None:
            missed = await self._catch_up(self._last_event_id)
            if self.closed:
                return
            self._sent_in_catch_up = {read.id for read in missed}
            self._write(b"".join(format_event(read) for read in missed))
        held, self._held = self._held or [], None
        self._on_reads([read for read in held if read.id not in self._sent_in_catch_up])

    def _catch_up_failed(self, failure) -> None:
        log.warn("stream catch-up failed ({error}); ending the stream so the client reconnects",
                 error=failure.getErrorMessage())
        self.close(finish=True)

    def _on_reads(self, reads: list[DisplayRead]) -> None:
        if self._held is not None:
            self._held.extend(reads)
            return
        fresh = [read for read in reads if read.id not in self._sent_in_catch_up]
        if fresh:
            self._write(b"".join(format_event(read) for read in fresh))

    def _send_keepalive(self) -> None:
        self._write(format_comment("keepalive"))

    def _write(self, data: bytes) -> None:
        if data and not self.closed:
            self._request.write(data)

    def close(self, finish: bool = False) -> None:
        """Unsubscribe and stop the keepalive; with ``finish``, end the response too."""
        if self.closed:
            return
        self.closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._keepalive.running:
            self._keepalive.stop()
        if finish and not self._done.called:
            self._done.callback(None)  # Klein finishes the response
        elif not self._done.called:
            self._done.errback(CancelledError("client went away"))


def parse_last_event_id(raw: Any) -> int | None:
    """``Last-Event-ID`` as an id, or None. Anything not an id means "no resume point"."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = text.strip()
    return int(text) if text.isdigit() and len(text) < 19 else None
