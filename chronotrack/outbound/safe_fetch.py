"""Fetching a URL someone typed, without letting it reach inside our network.

An operator can paste any URL (an event website, a registration platform), and the hub
fetches it server-side, so the fetch must not become a way to reach the database port,
the status API on 127.0.0.1, a cloud metadata address or a printer on the LAN (SSRF).
Every connection therefore goes through ``CheckedEndpointFactory``: it resolves the host
itself, refuses any address that is not public, and connects to exactly the address it
checked, so a second DNS answer (DNS rebinding) never gets a say. TLS still uses the host
name for SNI and certificate verification. Redirects are followed by hand, at most
``max_redirects``, each one checked again the same way.

The body is read as it streams and the connection is dropped the moment it passes
``max_bytes``; the whole fetch (DNS, connect, redirects, body) has one deadline.
Every failure is a ``FetchError`` whose message is safe to show a user: it never holds
the URL's query string (where some APIs put their keys).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urljoin, urlsplit

import treq
from treq.client import HTTPClient
from twisted.internet import defer, threads
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectError, DNSLookupError, TimeoutError as TwistedTimeoutError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.ssl import optionsForClientTLS
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseFailed
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_TIMEOUT = 15.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_MAX_REDIRECTS = 3
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = b"ChronoTrack-hub/1 (+timing roster and brand fetcher)"


# Errors, each with a message fit for a page


class FetchError(Exception):
    """A fetch that did not give us a usable answer; ``str()`` is safe to show."""


class BadURL(FetchError):
    pass


class PrivateAddress(FetchError):
    pass


class Timeout(FetchError):
    pass


class TooLarge(FetchError):
    pass


class ConnectFailed(FetchError):
    pass


class HTTPError(FetchError):
    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or f"the server answered HTTP {code}")
        self.code = code


# Which URLs and addresses are allowed


@dataclass(frozen=True)
class Target:
    """A URL split into what the connection needs; only http and https."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> "Target":
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise BadURL("that is not a valid URL") from None
        if parts.scheme not in ("http", "https"):
            raise BadURL("only http:// and https:// URLs can be fetched")
        if not parts.hostname:
            raise BadURL("the URL has no host name")
        if parts.username is not None or parts.password is not None:
            raise BadURL("URLs with a user name or password in them are not fetched")
        if port == 0:
            raise BadURL("the URL's port is not valid")
        return cls(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80))


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for addresses on the public internet (not ours, not the LAN's, not special)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is that IPv4 address
            return is_public_address(address.ipv4_mapped)
        for embedded in (address.ipv4_mapped, address.sixtofour,
                         address.teredo[1] if address.teredo else None):
            if embedded is not None and not is_public_address(embedded):
                return False
        if address in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64 of an IPv4 address
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    special = (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
               or address.is_reserved or address.is_unspecified or not address.is_global)
    return not special


def _resolve(host: str, port: int) -> list[str]:
    """getaddrinfo, run in a thread by the caller (it blocks)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    seen: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in seen:
            seen.append(address)
    return seen


@implementer(IStreamClientEndpoint)
class CheckedEndpoint:
    """Resolves once, checks every address, connects to the first allowed one (the checked IP)."""

    def __init__(self, reactor: Any, target: Target, connect_timeout: float, allow_private: bool) -> None:
        self.reactor = reactor
        self.target = target
        self.connect_timeout = connect_timeout
        self.allow_private = allow_private

    async def _address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        try:  # a literal IP needs no lookup
            candidates = [str(ipaddress.ip_address(self.target.host.strip("[]")))]
        except ValueError:
            candidates = await threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), _resolve,
                                                         self.target.host, self.target.port)
        if not candidates:
            raise ConnectFailed(f"the host name {self.target.host} could not be found")
        addresses = [ipaddress.ip_address(candidate) for candidate in candidates]
        if not self.allow_private:
            refused = [address for address in addresses if not is_public_address(address)]
            if refused:  # one private answer is enough to distrust the name
                raise PrivateAddress(f"{self.target.host} points to a private or local address; "
                                     "the hub does not fetch from those")
        return addresses[0]

    def connect(self, protocol_factory):
        async def connect():
            address = await self._address()
            endpoint_class = TCP6ClientEndpoint if address.version == 6 else TCP4ClientEndpoint
            endpoint: IStreamClientEndpoint = endpoint_class(self.reactor, str(address), self.target.port,
                                                             timeout=self.connect_timeout)
            if self.target.scheme == "https":
                endpoint = wrapClientTLS(optionsForClientTLS(self.target.host), endpoint)
            return await endpoint.connect(protocol_factory)

        return defer.ensureDeferred(connect())


@implementer(IAgentEndpointFactory)
class CheckedEndpointFactory:
    def __init__(self, reactor: Any, connect_timeout: float, allow_private: bool) -> None:
        self.reactor = reactor
        self.connect_timeout = connect_timeout
        self.allow_private = allow_private

    def endpointForURI(self, uri) -> CheckedEndpoint:
        scheme = uri.scheme.decode("ascii")
        host = uri.host.decode("idna") if isinstance(uri.host, bytes) else uri.host
        return CheckedEndpoint(self.reactor, Target(scheme, host, uri.port), self.connect_timeout,
                               self.allow_private)


# The fetch itself


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    allow_private: bool = False


@dataclass
class FetchResult:
    url: str  # after redirects
    code: int
    headers: Headers
    body: bytes = field(repr=False)

    @property
    def content_type(self) -> str:
        values = self.headers.getRawHeaders(b"content-type") or [b""]
        return values[0].decode("latin-1").split(";", 1)[0].strip().lower()

    def text(self) -> str:
        values = self.headers.getRawHeaders(b"content-type") or [b""]
        charset = "utf-8"
        for part in values[0].decode("latin-1").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


def safe_url_text(url: str) -> str:
    """The URL without its query string and fragment: fit for a log line or an error message."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{parts.path}"
    except ValueError:
        return "(unreadable URL)"


async def _read_limited(response, max_bytes: int) -> bytes:
    length = response.length
    if isinstance(length, int) and length > max_bytes:
        response.deliverBody(_Discard())
        raise TooLarge(f"the answer is larger than {max_bytes // 1024} KB")
    chunks: list[bytes] = []
    received = 0

    def collect(data: bytes) -> None:
        nonlocal received
        received += len(data)
        if received > max_bytes:
            raise TooLarge(f"the answer is larger than {max_bytes // 1024} KB")
        chunks.append(data)

    try:
        await treq.collect(response, collect)
    except TooLarge:
        raise
    except ResponseFailed as failed:
        for reason in failed.reasons:
            if reason.check(TooLarge):
                raise reason.value from None
        raise ConnectFailed("the connection broke while the answer was being read") from None
    return b"".join(chunks)


class _Discard:
    """A body consumer that hangs up at once (for answers we refuse by their Content-Length)."""

    def makeConnection(self, transport) -> None:
        transport.stopProducing()

    def dataReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason) -> None:
        pass


class SafeFetcher:
    """Fetches URLs under a ``FetchPolicy``; one per use (brand, roster source), sharing nothing."""

    def __init__(self, reactor: Any, policy: FetchPolicy = FetchPolicy()) -> None:
        self.reactor = reactor
        self.policy = policy
        pool = HTTPConnectionPool(reactor, persistent=False)
        agent = Agent.usingEndpointFactory(
            reactor, CheckedEndpointFactory(reactor, policy.connect_timeout, policy.allow_private), pool=pool)
        self._client = HTTPClient(agent)

    def fetch(self, url: str, method: str = "GET", headers: Mapping[str, str] | None = None,
              data: Mapping[str, str] | bytes | None = None) -> defer.Deferred:
        """A Deferred of a ``FetchResult`` (any status code), or a ``FetchError`` failure."""
        attempt = defer.ensureDeferred(self._follow(url, method, dict(headers or {}), data))
        timed_out = Timeout(f"no complete answer within {self.policy.timeout:g} seconds")
        attempt.addTimeout(self.policy.timeout, self.reactor,
                           onTimeoutCancel=lambda result, timeout: Failure(timed_out))

        def translate(failure):
            if failure.check(defer.TimeoutError, TwistedTimeoutError):
                raise timed_out
            if failure.check(FetchError, defer.CancelledError):
                return failure
            if any(reason.check(defer.CancelledError) for reason in getattr(failure.value, "reasons", [])):
                raise defer.CancelledError()  # the caller cancelled (not our deadline): say so
            if failure.check(DNSLookupError):
                raise ConnectFailed("the host name could not be found")
            if failure.check(ConnectError):
                raise ConnectFailed("could not connect to the server")
            if failure.check(ResponseFailed):
                raise ConnectFailed("the server closed the connection without a complete answer")
            return failure

        return attempt.addErrback(translate)

    async def _follow(self, url: str, method: str, headers: dict[str, str], data) -> FetchResult:
        headers.setdefault("User-Agent", USER_AGENT.decode("ascii"))
        for _hop in range(self.policy.max_redirects + 1):
            Target.of(url)  # scheme, host, port checked before any connection
            response = await self._client.request(method, url, headers=headers, data=data,
                                                  allow_redirects=False, browser_like_redirects=False)
            if response.code in REDIRECT_CODES:
                location = response.headers.getRawHeaders(b"location")
                response.deliverBody(_Discard())
                if not location:
                    raise HTTPError(response.code, "the server sent a redirect without a location")
                url = urljoin(url, location[0].decode("latin-1"))
                if response.code in (301, 302, 303) and method != "GET":
                    method, data = "GET", None
                continue
            body = await _read_limited(response, self.policy.max_bytes)
            return FetchResult(url, response.code, response.headers, body)
        raise FetchError(f"more than {self.policy.max_redirects} redirects")
