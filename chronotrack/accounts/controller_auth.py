"""The collector's authentication policy for CTP01 connections.

``CTP01ServerProtocol`` asks this object, never the database or the key, the few
questions authentication raises: may this address connect at all, which setting lines
ask for authorization (with a fresh seed), is this ``authorize`` right, and "this
address just failed". The verification itself is pure (``ctp01_auth``); the logins come
from a ``ControllerLogins``; repeated failures go to a ``FailureThrottle``.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chronotrack.accounts.controller_logins import ControllerLogin, ControllerLogins
from chronotrack.accounts.ctp01_auth import (
    AUTHENTICATION_MODES,
    NO_AUTHENTICATION,
    authentication_settings,
    needs_seed,
    new_seed,
    verify_authorization,
)
from chronotrack.accounts.failure_throttle import FailureThrottle

log = Logger()

MAX_USER_ID_LENGTH = 64  # controller_credentials.user_id allows no more
REFUSAL_LOG_INTERVAL = 60.0  # one line per minute about blocked addresses, however many knock
WRONG_CREDENTIALS = "invalid user id or password"
# Verified against when the user id is unknown, so that costs what a wrong password costs.
_NO_SUCH_LOGIN_PASSWORD = "no such controller login"


@dataclass(frozen=True)
class Authorized:
    login: ControllerLogin


@dataclass(frozen=True)
class Refused:
    """Why an ``authorize`` failed: ``reason`` for the log, ``message`` for the controller.

    ``client_fault`` is False when we could not check (database down, key replaced):
    that is not the controller guessing, so it neither counts nor blocks the address.
    """

    reason: str
    message: str = WRONG_CREDENTIALS
    client_fault: bool = True


class ControllerAuthenticator:
    """One per collector: the mode, where logins come from, and who failed too often."""

    def __init__(self, mode: str, logins: ControllerLogins | None, throttle: FailureThrottle,
                 clock: IReactorTime) -> None:
        if mode not in AUTHENTICATION_MODES:
            raise ValueError(f"unknown authentication mode {mode!r}")
        if mode != NO_AUTHENTICATION and logins is None:
            raise ValueError(f"{mode} authentication needs controller logins")
        self.mode = mode
        self.logins = logins
        self.throttle = throttle
        self.clock = clock
        self.failures = 0  # shown on /status as authentication_failures
        self._refused_unlogged = 0
        self._last_refusal_log: float | None = None

    @classmethod
    def open(cls, clock: IReactorTime) -> ControllerAuthenticator:
        """No authentication: every controller belongs to the default partner."""
        return cls(NO_AUTHENTICATION, None, FailureThrottle(clock), clock)

    @property
    def required(self) -> bool:
        return self.mode != NO_AUTHENTICATION

    # --- per connection ------------------------------------------------------------

    def admits(self, host: str) -> bool:
        """False while ``host`` is blocked after repeated failures; says so in the log, sparingly."""
        if not self.throttle.is_blocked(host):
            return True
        self._refused_unlogged += 1
        now = self.clock.seconds()
        if self._last_refusal_log is None or now - self._last_refusal_log >= REFUSAL_LOG_INTERVAL:
            log.warn("refused {count} connection(s) from addresses blocked after repeated "
                     "authentication failures (latest {host}, blocked {seconds:.0f} s more)",
                     count=self._refused_unlogged, host=host,
                     seconds=self.throttle.retry_after(host))
            self._refused_unlogged = 0
            self._last_refusal_log = now
        return False

    def new_seed(self) -> str | None:
        """A fresh seed for a connection when the mode uses one."""
        return new_seed() if needs_seed(self.mode) else None

    def setting_lines(self, seed: str | None) -> list[str]:
        return authentication_settings(self.mode, seed)

    def check(self, user_id: str, proof: str, seed: str | None) -> Deferred[Authorized | Refused]:
        """Look the login up and verify the proof; never fails, a failure is a ``Refused``."""
        if not user_id or len(user_id) > MAX_USER_ID_LENGTH:
            return succeed(Refused("authorize without a usable user id"))
        assert self.logins is not None
        looked_up = maybeDeferred(self.logins.lookup, user_id)
        looked_up.addCallbacks(self._verify, self._lookup_failed,
                               callbackArgs=(user_id, proof, seed or ""), errbackArgs=(user_id,))
        return looked_up

    def failed(self, host: str) -> None:
        """Count a failure by ``host``; enough of them soon after another block it."""
        self.failures += 1
        if self.throttle.record_failure(host):
            log.warn("{host} failed to authorize {count} times within {window:.0f} s; refusing "
                     "its connections for {seconds:.0f} s", host=host,
                     count=self.throttle.max_failures, window=self.throttle.window,
                     seconds=self.throttle.block_for)

    def succeeded(self, host: str) -> None:
        self.throttle.record_success(host)

    # --- helpers -------------------------------------------------------------------------

    def _verify(self, login: ControllerLogin | None, user_id: str, proof: str,
                seed: str) -> Authorized | Refused:
        if login is None:
            verify_authorization(self.mode, _NO_SUCH_LOGIN_PASSWORD, seed, proof)
            return Refused(f"unknown user id {user_id!r}")
        if not verify_authorization(self.mode, login.password, seed, proof):
            return Refused(f"wrong {self.mode} proof for user id {user_id!r}")
        return Authorized(login)

    def _lookup_failed(self, failure: Failure, user_id: str) -> Refused:
        error = failure.value
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        log.error("cannot check the controller login {user_id!r}: {error}", user_id=user_id,
                  error=text)
        return Refused(f"login lookup failed ({text})",
                       message="cannot check credentials now; try again later",
                       client_fault=False)
