"""``GET /stream``: every stored read as one Server-Sent Event.

A stream subscribes to ``LiveReads`` first and then sends the reads the client missed
(``Last-Event-ID``), holding live reads back until that catch-up is written, so nothing
falls in between and nothing is sent twice. A comment line every 15 s keeps proxies from
closing an idle stream. When the client goes away the stream unsubscribes at once.

A client that stops reading (a phone gone to sleep) must not make us buffer without end:
the stream is the request's push producer, so the transport tells it when its write
buffer is full (``pauseProducing``). What is written while paused is counted, and past
``MAX_PENDING_BYTES`` the connection is cut and everything held for it let go. The other
streams carry on. Each delivery of new reads is encoded once and the same bytes are
written to every stream.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from zope.interface import implementer

from web.live import LiveReads, ReadBatch
from web.queries import DisplayRead

log = Logger()

KEEPALIVE_SECONDS = 15.0
RECONNECT_MILLISECONDS = 3000
CATCH_UP_LIMIT = 1000
# Written to a client while its transport's buffer (64 KiB in Twisted's TCP) is full; past
# it the client is dropped. At the product's busiest (a few hundred reads a second, about
# 300 bytes each) a client that stops reading for under a few seconds stays.
MAX_PENDING_BYTES = 256 * 1024


def format_event(read: DisplayRead) -> bytes:
    data = json.dumps(read.to_json(), separators=(",", ":"), ensure_ascii=False)
    return f"id: {read.id}\ndata: {data}\n\n".encode("utf-8")


def encode_reads(reads: list[DisplayRead]) -> bytes:
    """The events of ``reads``; a ``ReadBatch`` is encoded once however many streams send it."""
    encoded = getattr(reads, "encoded", None)
    if encoded is None:
        encoded = b"".join(format_event(read) for read in reads)
        if isinstance(reads, ReadBatch):
            reads.encoded = encoded
    return encoded


def format_comment(text: str) -> bytes:
    return f": {text}\n\n".encode("utf-8")


def set_stream_headers(request: IRequest) -> None:
    request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
    request.setHeader(b"Cache-Control", b"no-cache")
    request.setHeader(b"X-Accel-Buffering", b"no")  # nginx-style proxies: do not buffer


@implementer(IPushProducer)
class EventStream:
    """One client's stream. ``run()`` fires when the stream has ended, for whatever reason."""

    def __init__(self, request: IRequest, live: LiveReads, reactor: IReactorTime,
                 catch_up: Callable[[int], Awaitable[list[DisplayRead]]] | None,
                 last_event_id: int | None, keepalive_interval: float = KEEPALIVE_SECONDS,
                 max_pending: int = MAX_PENDING_BYTES) -> None:
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
        self._max_pending = max_pending
        self._paused = False
        self._producing = False
        self.written_while_paused = 0  # bytes handed to a full transport since it said "pause"
        self.dropped = False

    def run(self) -> Deferred[None]:
        set_stream_headers(self._request)
        self._request.notifyFinish().addBoth(lambda _: self.close())
        self._request.registerProducer(self, True)
        self._producing = True
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
            self._write(encode_reads(missed))
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
        if self._sent_in_catch_up and any(read.id in self._sent_in_catch_up for read in reads):
            reads = [read for read in reads if read.id not in self._sent_in_catch_up]
        if reads:
            self._write(encode_reads(reads))

    def _send_keepalive(self) -> None:
        self._write(format_comment("keepalive"))

    def _write(self, data: bytes) -> None:
        if not data or self.closed or self.dropped:
            return
        if self._paused:
            if self.written_while_paused + len(data) > self._max_pending:
                self._drop()
                return
            self.written_while_paused += len(data)
        self._request.write(data)

    # IPushProducer: the transport's word on whether the client keeps up

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self.written_while_paused = 0

    def stopProducing(self) -> None:
        self.close()

    def _drop(self) -> None:
        """Cut off a client that stopped reading: its buffers go with the connection."""
        self.dropped = True
        log.info("dropping a stream client that stopped reading ({pending} bytes waiting for it)",
                 pending=self.written_while_paused)
        self._stop_feeding()
        transport = getattr(self._request, "transport", None)
        if transport is not None:
            transport.abortConnection()  # connectionLost follows and ends the request
        else:
            self.close()

    def _stop_feeding(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        if self._keepalive.running:
            self._keepalive.stop()
        if self._producing:
            self._producing = False
            if getattr(self._request, "channel", None) is not None and not self._request.finished:
                self._request.unregisterProducer()

    def close(self, finish: bool = False) -> None:
        """Unsubscribe and stop the keepalive; with ``finish``, end the response too."""
        if self.closed:
            return
        self.closed = True
        self._stop_feeding()
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
