"""Who is asking: one ``Viewer`` per request, from a bearer token, a session cookie, or nobody.

Open mode: while no operator account exists the hub behaves as it always did (a fresh
``make run``): every page and feed is open and anyone may upload a roster. Once the first
account exists (closed mode) pages need a signed-in operator, the JSON API and ``/stream``
an operator's cookie or a partner's API token, and each of them sees only its partner's
events. Anonymous visitors then see only public displays (``web.app`` handles those).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from chronotrack.accounts.failure_throttle import FailureThrottle
from chronotrack.accounts.tokens import MAX_TOKEN_LENGTH, token_hash
from chronotrack.storage.database import Database
from web import queries
from web.errors import BadCredentials, TooManyAttempts
from web.queries import EVERYTHING, NOTHING, Scope

log = Logger()

SESSION_COOKIE = b"chronotrack_session"
OPEN_MODE_CACHE_SECONDS = 5.0
FIRST_ACCOUNT_COMMAND = "chronotrack operator add default you@example.com"


@dataclass(frozen=True)
class Viewer:
    """Who asks, as the routes need it: what they may see (``scope``) and whether they may change things.

    ``kind`` is "open" (no accounts exist yet), "operator" (signed-in browser), "token"
    (a partner's API token: read-only) or "anonymous".
    """

    kind: str
    scope: Scope
    operator_id: int | None = None
    email: str | None = None
    csrf_token: str | None = None
    web_session_id: int | None = None
    api_token_id: int | None = None

    @property
    def may_read(self) -> bool:
        return self.kind != "anonymous"

    @property
    def may_change(self) -> bool:
        return self.kind in ("open", "operator")

    @property
    def signed_in(self) -> bool:
        return self.kind == "operator"

    @property
    def partners(self) -> frozenset[int] | None:
        return self.scope.partners


OPEN_VIEWER = Viewer("open", EVERYTHING)
ANONYMOUS = Viewer("anonymous", NOTHING)


# Facts about the request itself


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _peer_host(request: IRequest) -> str:
    return getattr(request.getClientAddress(), "host", "") or ""


def from_local_proxy(request: IRequest) -> bool:
    """True when the peer is this machine: the TLS proxy in front of us, whose headers we trust."""
    return _is_loopback(_peer_host(request))


def client_address(request: IRequest) -> str:
    """The browser's address: the peer, or what a local proxy says in ``X-Forwarded-For`` (its last hop)."""
    peer = _peer_host(request)
    if _is_loopback(peer):
        forwarded = request.getHeader(b"X-Forwarded-For")
        if forwarded:
            last = forwarded.decode("latin-1").rsplit(",", 1)[-1].strip()[:64]
            try:
                return str(ipaddress.ip_address(last))
            except ValueError:
                pass
    return peer or "unknown"


def is_secure(request: IRequest) -> bool:
    """TLS directly, or TLS ended by a proxy on this machine that says so."""
    if request.isSecure():
        return True
    return from_local_proxy(request) and (request.getHeader(b"X-Forwarded-Proto") or b"").strip().lower() == b"https"


def bearer_token(request: IRequest) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None without one. A malformed one is BadCredentials."""
    header = request.getHeader(b"Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None  # another scheme (Basic from a proxy, say) is not ours to judge
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise BadCredentials("malformed bearer token")
    try:
        return token.decode("ascii")
    except UnicodeDecodeError:
        raise BadCredentials("malformed bearer token") from None


def session_cookie(request: IRequest) -> str | None:
    raw = request.getCookie(SESSION_COOKIE)
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        return None
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return None


# Resolving the viewer


class Access:
    """Resolves viewers; remembers for a few seconds whether any operator exists (open mode)."""

    def __init__(self, clock: IReactorTime, cache_seconds: float = OPEN_MODE_CACHE_SECONDS,
                 bad_token_throttle: FailureThrottle | None = None) -> None:
        self.clock = clock
        self.cache_seconds = cache_seconds
        # An address sending token after wrong token is guessing: it waits, without a query per guess.
        self.bad_token_throttle = bad_token_throttle or FailureThrottle(clock, max_failures=20, window=60.0,
                                                                        block_for=60.0)
        self._open: bool | None = None
        self._checked_at = 0.0
        self._waiting: list[Deferred[bool]] = []  # requests waiting for the probe on its way

    async def open_mode(self, database: Database) -> bool:
        """True while no operator account exists. One probe per ``cache_seconds``, shared by every request."""
        if self._open is not None and self.clock.seconds() - self._checked_at < self.cache_seconds:
            return self._open
        waiter: Deferred[bool] = Deferred()
        self._waiting.append(waiter)
        if len(self._waiting) == 1:
            ensureDeferred(self._probe(database))  # not this request's: its going away cancels only its wait
        return await waiter

    async def _probe(self, database: Database) -> None:
        try:
            exists = await queries.operators_exist(database)
        except Exception:
            outcome: Failure | bool = Failure()
        else:
            if self._open is not None and self._open == exists:  # the first account made, or the last removed
                log.info("operator accounts {now}: {meaning}", now="exist now" if exists else "are all gone",
                         meaning="pages need a sign-in" if exists else "every page is open again")
            self._open, self._checked_at = not exists, self.clock.seconds()
            outcome = self._open
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if waiter.called:
                continue  # cancelled: that request has gone
            if isinstance(outcome, Failure):
                waiter.errback(outcome)
            else:
                waiter.callback(outcome)

    async def viewer(self, request: IRequest, database: Database) -> Viewer:
        """Who asks; resolved once and kept on the request."""
        known = getattr(request, "_chronotrack_viewer", None)
        if known is not None:
            return known
        viewer = await self._resolve(request, database)
        request._chronotrack_viewer = viewer  # type: ignore[attr-defined]
        return viewer

    async def _resolve(self, request: IRequest, database: Database) -> Viewer:
        try:
            token = bearer_token(request)
        except BadCredentials:
            self.bad_token_throttle.record_failure(client_address(request))
            raise
        if token is not None:
            address = client_address(request)
            if self.bad_token_throttle.is_blocked(address):
                raise TooManyAttempts(self.bad_token_throttle.retry_after(address))
            found = await queries.api_token(database, token_hash(token))
            if found is None:
                self.bad_token_throttle.record_failure(address)
                raise BadCredentials("unknown or revoked token")
            return Viewer("token", Scope.of_partners([found.partner_id]), api_token_id=found.id)
        cookie = session_cookie(request)
        if cookie is not None:
            session = await queries.web_session(database, token_hash(cookie))
            if session is not None:
                return Viewer("operator", Scope.of_partners([session.partner_id]), session.operator_id,
                              session.email, session.csrf_token, session.session_id)
        return OPEN_VIEWER if await self.open_mode(database) else ANONYMOUS

    async def announce(self, database: Database) -> None:
        """Say once, at start-up, whether pages are open and how to close them."""
        if await self.open_mode(database):
            log.warn("No operator account exists, so every page, feed and roster upload is open to anyone "
                     "who can reach this port. Create the first account with: {command}",
                     command=FIRST_ACCOUNT_COMMAND)
        else:
            log.info("Operator accounts exist: pages need a sign-in, feeds a sign-in or an API token")

