"""Operator sign-in and sign-out, and the checks every state-changing form goes through.

- Passwords are checked with argon2id (``chronotrack.accounts.passwords``) in a thread, so a
  sign-in never stalls the reactor; an unknown e-mail costs the same as a wrong password.
- Failed attempts are counted per address and per e-mail (``FailureThrottle``); while either
  is blocked the password is not even looked at (429 with Retry-After).
- A session cookie holds 256 random bits; the database keeps only their hash. The cookie is
  HttpOnly, SameSite=Lax, Path=/, and Secure when the request came over TLS (directly or
  through a proxy on this machine that says so).
- Forms: a POST whose ``Origin`` or ``Sec-Fetch-Site`` says another site sent it is refused;
  signed-in forms carry the session's CSRF token, the sign-in form a double-submit cookie.
"""

from __future__ import annotations

import math
import re
import secrets
from urllib.parse import quote

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from chronotrack.accounts.failure_throttle import FailureThrottle
from chronotrack.accounts.passwords import MAX_PASSWORD_LENGTH, verify_password
from chronotrack.accounts.tokens import new_session_token, token_hash, tokens_match
from chronotrack.storage.database import Database
from web import queries
from web.access import SESSION_COOKIE, Viewer, client_address, from_local_proxy, is_secure
from web.errors import BadParameter, Forbidden, TooManyAttempts
from web.thread_pool import in_thread_pool

log = Logger()

SESSION_LIFETIME_SECONDS = 12 * 60 * 60
LOGIN_CSRF_COOKIE = b"chronotrack_login_csrf"
LOGIN_CSRF_LIFETIME_SECONDS = 60 * 60
MAX_EMAIL_LENGTH = 254
MAX_NEXT_LENGTH = 500
# Checks running at once: a burst of parallel guesses must not all get in before the first
# failure is counted, nor tie up every thread with argon2.
MAX_PARALLEL_PER_KEY = 2
MAX_PARALLEL_CHECKS = 8
CSRF_FIELD = "csrf_token"
_SAFE_NEXT = re.compile(r"^/(?![/\\])[\x21-\x7e]*$")
_FORM_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


# Form fields and the checks every state-changing form goes through


def form_field(request: IRequest, name: str, max_length: int) -> str:
    """A posted text field ('' when absent); too long or not UTF-8 is a BadParameter."""
    values = request.args.get(name.encode("ascii")) or [b""]
    raw = values[0]
    if len(raw) > max_length * 4:
        raise BadParameter(name, f"must be at most {max_length} characters")
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadParameter(name, "must be UTF-8 text") from None
    if len(value) > max_length:
        raise BadParameter(name, f"must be at most {max_length} characters")
    return value


def refuse_cross_site(request: IRequest) -> None:
    """403 for a POST another site's page made the browser send (login CSRF, roster replacement...)."""
    if (request.getHeader(b"Sec-Fetch-Site") or b"").strip().lower() == b"cross-site":
        raise Forbidden("This form must be sent from this site's own pages.")
    origin = request.getHeader(b"Origin")
    if origin is None:
        return  # older browsers and non-browser clients; the CSRF token still guards
    origin = origin.strip().lower()
    host = request.getHeader(b"Host") or b""
    forwarded_host = request.getHeader(b"X-Forwarded-Host") if from_local_proxy(request) else None
    if forwarded_host:  # a proxy that does not pass Host on says here what the browser asked for
        host = forwarded_host.split(b",", 1)[0]
    host = host.strip().lower()
    if origin == b"null" or not host or origin.split(b"://", 1)[-1] != host:
        raise Forbidden("This form must be sent from this site's own pages.")


def check_csrf(request: IRequest, viewer: Viewer) -> None:
    """A signed-in form must carry the session's CSRF token (open mode has no session to ride on)."""
    if not viewer.signed_in:
        return
    given = form_field(request, CSRF_FIELD, 200)
    if not given or not viewer.csrf_token or not tokens_match(viewer.csrf_token, given):
        raise Forbidden("The form has expired or did not come from this site; reload the page and try again.")


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site (open redirect)."""
    if not raw or len(raw) > MAX_NEXT_LENGTH or not _SAFE_NEXT.match(raw):
        return "/"
    if raw.split("?", 1)[0] in ("/login", "/logout"):
        return "/"
    return raw


def login_url(next_path: str) -> bytes:
    return ("/login?next=" + quote(safe_next(next_path), safe="/")).encode("ascii")


# Sign-in


class SignIn:
    """Checks passwords with rate limits and starts and ends browser sessions."""

    def __init__(self, reactor, address_throttle: FailureThrottle | None = None,
                 email_throttle: FailureThrottle | None = None) -> None:
        self.reactor = reactor
        self.address_throttle = address_throttle or FailureThrottle(reactor, max_failures=10, window=60.0,
                                                                    block_for=300.0)
        self.email_throttle = email_throttle or FailureThrottle(reactor, max_failures=5, window=300.0,
                                                                block_for=900.0)
        self._in_flight: dict[str, int] = {}  # only keys with a check running: bounded by MAX_PARALLEL_CHECKS
        self._checks_running = 0

    # The sign-in form's own CSRF guard: a cookie and a hidden field with the same random value

    def login_form_token(self, request: IRequest) -> str:
        """The double-submit token for the sign-in form (the one in the cookie, or a new one)."""
        current = request.getCookie(LOGIN_CSRF_COOKIE)
        if current:
            try:
                text = current.decode("ascii")
            except UnicodeDecodeError:
                text = ""
            if _FORM_TOKEN.match(text):
                return text
        token = secrets.token_urlsafe(32)
        request.addCookie(LOGIN_CSRF_COOKIE, token.encode("ascii"), path=b"/login", httpOnly=True,
                          sameSite="strict", secure=is_secure(request),
                          max_age=str(LOGIN_CSRF_LIFETIME_SECONDS).encode("ascii"))
        return token

    def check_login_form_token(self, request: IRequest) -> None:
        cookie = request.getCookie(LOGIN_CSRF_COOKIE) or b""
        given = form_field(request, CSRF_FIELD, 200)
        try:
            expected = cookie.decode("ascii")
        except UnicodeDecodeError:
            expected = ""
        if not expected or not given or not tokens_match(expected, given):
            raise Forbidden("The sign-in form has expired; reload the page and try again.")

    # Passwords

    def _check_not_blocked(self, address: str, email: str) -> None:
        waits = [throttle.retry_after(key) for throttle, key in
                 ((self.address_throttle, address), (self.email_throttle, email)) if throttle.is_blocked(key)]
        if waits:
            raise TooManyAttempts(max(waits))

    def _verify(self, password_hash: str | None, password: str) -> Deferred[bool]:
        return in_thread_pool(self.reactor, verify_password, password_hash, password)

    async def authenticate(self, request: IRequest, database: Database, email: str,
                           password: str) -> queries.OperatorLogin | None:
        """The operator these credentials belong to, or None (counted as a failure). Never logs the password."""
        address = client_address(request)
        email = email.strip().lower()[:MAX_EMAIL_LENGTH]
        self._check_not_blocked(address, email)
        keys = ("address " + address, "email " + email)
        busy = any(self._in_flight.get(key, 0) >= MAX_PARALLEL_PER_KEY for key in keys)
        if busy or self._checks_running >= MAX_PARALLEL_CHECKS:
            raise TooManyAttempts(1.0)
        self._checks_running += 1
        for key in keys:
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            return await self._authenticate(database, address, email, password)
        finally:
            self._checks_running -= 1
            for key in keys:
                self._in_flight[key] -= 1
                if not self._in_flight[key]:
                    del self._in_flight[key]

    async def _authenticate(self, database: Database, address: str, email: str,
                            password: str) -> queries.OperatorLogin | None:
        operator = None
        if 0 < len(email) <= MAX_EMAIL_LENGTH and 0 < len(password) <= MAX_PASSWORD_LENGTH:
            operator = await queries.operator_for_login(database, email)
        verified = await self._verify(operator.password_hash if operator else None, password)
        if operator is not None and verified:
            self.email_throttle.record_success(email)
            log.info("operator {email!r} signed in from {address}", email=email, address=address)
            return operator
        blocked = self.address_throttle.record_failure(address)
        blocked = self.email_throttle.record_failure(email) or blocked
        log.warn("failed sign-in for {email!r} from {address}{blocked}", email=email,
                 address=address, blocked=" (further attempts paused)" if blocked else "")
        return None

    # Sessions

    async def start_session(self, request: IRequest, database: Database, operator: queries.OperatorLogin,
                            previous: Viewer | None = None) -> None:
        """A fresh session (never the one a cookie already named: no session fixation)."""
        if previous is not None and previous.web_session_id is not None:
            await queries.delete_web_session(database, previous.web_session_id)
        token = new_session_token()
        await queries.create_web_session(database, operator.id, token_hash(token), secrets.token_urlsafe(32),
                                         SESSION_LIFETIME_SECONDS)
        request.addCookie(SESSION_COOKIE, token.encode("ascii"), path=b"/", httpOnly=True, sameSite="lax",
                          secure=is_secure(request), max_age=str(SESSION_LIFETIME_SECONDS).encode("ascii"))
        request.addCookie(LOGIN_CSRF_COOKIE, b"", path=b"/login", httpOnly=True, sameSite="strict",
                          secure=is_secure(request), max_age=b"0")

    async def end_session(self, request: IRequest, database: Database, viewer: Viewer) -> None:
        if viewer.web_session_id is not None:
            await queries.delete_web_session(database, viewer.web_session_id)
            log.info("operator {email!r} signed out", email=viewer.email)
        request.addCookie(SESSION_COOKIE, b"", path=b"/", httpOnly=True, sameSite="lax",
                          secure=is_secure(request), max_age=b"0")


def retry_after_header(seconds: float) -> bytes:
    return str(max(1, math.ceil(seconds))).encode("ascii")
