"""The HTTP face of the web layer: what every request gets before and around the Klein app.

- ``HubRequest`` puts the security headers (web/headers.py) on every response just before
  its headers go out, and refuses a body over its limit (web/limits.py) with 413 as soon as
  the headers are in, or as soon as a chunked body passes the limit: nothing more of it
  is kept.
- ``StreamGate`` counts open live streams and answers 503 with ``Retry-After`` past the
  most allowed, and 429 past the most allowed from one address, before the app subscribes
  anything.
- ``HubSite`` is a Site made of the two.
"""

from __future__ import annotations

import io
from typing import Any

from twisted.logger import Logger
from twisted.web import server
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from web.access import client_address
from web.headers import HeaderPolicy, apply_security_headers
from web.limits import (DEFAULT_LIMIT, DEFAULT_MAX_STREAM_CLIENTS, DEFAULT_MAX_STREAMS_PER_ADDRESS,
                        REFUSED_BODY_DISCARD_BYTES, REFUSED_BODY_LINGER_SECONDS, STREAM_RETRY_AFTER_SECONDS,
                        BodyLimit, body_limit, is_stream, refusal_body, wants_json)

log = Logger()

DEFAULT_POLICY = HeaderPolicy()


class HubRequest(server.Request):
    _headers_applied = False
    _refused_is_possible = True
    _refused = False
    _aborted = False
    _limit: BodyLimit = DEFAULT_LIMIT
    _body_bytes = 0
    _discarded_bytes = 0

    def __init__(self, channel, *args, **kwargs) -> None:
        super().__init__(channel, *args, **kwargs)
        self._header_policy: HeaderPolicy = getattr(getattr(channel, "site", None), "header_policy",
                                                    DEFAULT_POLICY)

    # Headers

    def write(self, data: bytes) -> None:
        if not self._headers_applied and not self.startedWriting:
            self._headers_applied = True
            apply_security_headers(self, self._header_policy)
        super().write(data)

    # Body limits (the channel calls these while the request line and headers are known
    # only to it: _command and _path are the channel's until the body is complete)

    def gotLength(self, length: int | None) -> None:
        if not hasattr(self.channel, "_command"):  # an HTTP/2 stream (needs the h2 package): no early refusal
            self._refused_is_possible = False
            super().gotLength(length)
            return
        self._limit = body_limit(self.channel._command, self._channel_path())
        if length is not None and length > self._limit.bytes:
            self.content = io.BytesIO()
            self._refuse(f"declared {length} bytes")
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            self._discard(len(data))
            return
        self._body_bytes += len(data)
        if self._body_bytes > self._limit.bytes and self._refused_is_possible:  # chunked, no Content-Length
            self.content.close()
            self.content = io.BytesIO()
            self._refuse(f"more than {self._limit.bytes} bytes sent")
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            self.finish()  # answered already; the whole (short) rest was read, so close cleanly
            return
        super().requestReceived(command, path, version)

    def _channel_path(self) -> bytes:
        return self.channel._path.split(b"?", 1)[0]

    def _refuse(self, why: str) -> None:
        """Answer 413 now, with Connection: close; what else the client sends is dropped."""
        self._refused = True
        channel = self.channel
        self.method, self.uri, self.clientproto = channel._command, channel._path, channel._version
        self.path = self._channel_path()
        channel.persistent = False
        self.requestHeaders.removeHeader(b"Expect")  # no "100 Continue" after our answer
        log.info("refused a request body for {method} {path}: {why}, limit {limit} bytes",
                 method=self.method.decode("ascii", "replace"), path=self.path.decode("ascii", "replace"),
                 why=why, limit=self._limit.bytes)
        content_type, body = refusal_body(413, "payload too large", self._limit.message,
                                          wants_json(self.path, self.getHeader(b"Accept")),
                                          limit_bytes=self._limit.bytes)
        self.setResponseCode(413)
        self.setHeader(b"Content-Type", content_type)
        self.setHeader(b"Content-Length", b"%d" % len(body))
        self.setHeader(b"Cache-Control", b"no-store")
        self.setHeader(b"Connection", b"close")
        self.write(body)

    def _discard(self, size: int) -> None:
        """Read on a little so the client sees the 413 rather than a reset, then cut it off.

        Past the allowance reading stops first: a client still sending then blocks on its full
        window and reads the 413, which a reset at once could destroy unread in its socket.
        The cut follows after a short linger, so a refused client costs at most that long.
        """
        self._discarded_bytes += size
        if self._discarded_bytes > REFUSED_BODY_DISCARD_BYTES and not self._aborted and self.channel is not None:
            self._aborted = True
            transport = self.channel.transport
            transport.pauseProducing()
            self.channel.site.reactor.callLater(REFUSED_BODY_LINGER_SECONDS, transport.abortConnection)


class StreamGate(Resource):
    """In front of the app: at most ``max_streams`` live streams at once (the rest get 503),
    and at most ``max_per_address`` of them from one client address (the rest get 429), so
    one client opening streams in a loop cannot take the live display from everyone else.

    The address is the peer's, or the one a proxy on this machine puts in X-Forwarded-For
    (``web.access.client_address``).
    """

    isLeaf = True

    def __init__(self, wrapped: IResource, max_streams: int = DEFAULT_MAX_STREAM_CLIENTS,
                 retry_after: int = STREAM_RETRY_AFTER_SECONDS,
                 max_per_address: int = DEFAULT_MAX_STREAMS_PER_ADDRESS) -> None:
        super().__init__()
        self.wrapped = wrapped
        self.max_streams = max_streams
        self.max_per_address = max_per_address
        self.retry_after = retry_after
        self.open_streams = 0
        self.open_by_address: dict[str, int] = {}
        self._refusing = False
        self._refused_addresses: set[str] = set()

    def render(self, request: IRequest) -> Any:
        if is_stream(request.method, request.path):
            if self.open_streams >= self.max_streams:
                return self._busy(request)
            address = client_address(request)
            if self.open_by_address.get(address, 0) >= self.max_per_address:
                return self._too_many_from(request, address)
            self._refusing = False
            self._refused_addresses.discard(address)
            self.open_streams += 1
            self.open_by_address[address] = self.open_by_address.get(address, 0) + 1
            request.notifyFinish().addBoth(self._stream_ended, address)
        return self.wrapped.render(request)

    def _stream_ended(self, _: object, address: str) -> None:
        self.open_streams -= 1
        left = self.open_by_address[address] - 1
        if left:
            self.open_by_address[address] = left
        else:
            del self.open_by_address[address]

    def _busy(self, request: IRequest) -> bytes:
        if not self._refusing:  # once per busy spell, not once per refused client
            self._refusing = True
            log.warn("{count} live streams open, the most allowed: refusing new ones for now",
                     count=self.open_streams)
        return self._refuse(request, 503, "too many live streams", "The live display is full; try again shortly.")

    def _too_many_from(self, request: IRequest, address: str) -> bytes:
        if address not in self._refused_addresses:
            if len(self._refused_addresses) >= 1000:
                self._refused_addresses.clear()  # bounded: many addresses refused may log again
            self._refused_addresses.add(address)  # once per address and spell
            log.warn("{address} has {count} live streams open, the most allowed from one address:"
                     " refusing more from it (max-streams-per-address)", address=address,
                     count=self.open_by_address.get(address, 0))
        return self._refuse(request, 429, "too many live streams from your address",
                            "Too many live displays are open from your network; close one, or try again shortly.")

    def _refuse(self, request: IRequest, code: int, error: str, message: str) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"Retry-After", b"%d" % self.retry_after)
        request.setHeader(b"Cache-Control", b"no-store")
        content_type, body = refusal_body(code, error, message, True, retry_after=self.retry_after)
        request.setHeader(b"Content-Type", content_type)
        return body


class HubSite(server.Site):
    """A Site whose requests are ``HubRequest`` and whose root is a ``StreamGate`` around ``resource``."""

    requestFactory = HubRequest

    def __init__(self, resource: IResource, header_policy: HeaderPolicy = DEFAULT_POLICY,
                 max_stream_clients: int = DEFAULT_MAX_STREAM_CLIENTS,
                 max_streams_per_address: int = DEFAULT_MAX_STREAMS_PER_ADDRESS, **kwargs: Any) -> None:
        self.stream_gate = StreamGate(resource, max_stream_clients, max_per_address=max_streams_per_address)
        super().__init__(self.stream_gate, **kwargs)
        self.header_policy = header_policy
