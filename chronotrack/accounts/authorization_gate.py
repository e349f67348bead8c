"""One connection's way through CTP01 authentication, apart from the protocol class.

The protocol tells the gate what happened (greeted, ``authorize`` arrived, a line that is
not allowed yet, connection lost) and is called back once: ``on_authorized(login)`` or
``on_refused(message)``. Everything in between (the seed, the one lookup, what to log and
count) lives here, so the connection class only routes lines.
"""

from __future__ import annotations

from typing import Callable

from twisted.logger import Logger
from twisted.python.failure import Failure

from chronotrack.accounts.controller_auth import Authorized, ControllerAuthenticator, Refused
from chronotrack.accounts.controller_logins import ControllerLogin

log = Logger()


class AuthorizationGate:
    """Open at once without authentication; otherwise open after one right ``authorize``."""

    def __init__(self, authenticator: ControllerAuthenticator, host: str, peer: str,
                 on_authorized: Callable[[ControllerLogin], None],
                 on_refused: Callable[[str], None]) -> None:
        self._authenticator = authenticator
        self._host = host
        self._peer = peer
        self._on_authorized = on_authorized
        self._on_refused = on_refused
        self.authorized = not authenticator.required
        self.refused = False
        self._seed: str | None = None
        self._checking = False
        self._abandoned = False

    def setting_lines(self) -> list[str]:
        """The authentication settings for our greeting reply, with this connection's seed."""
        self._seed = self._authenticator.new_seed()
        return self._authenticator.setting_lines(self._seed)

    def authorize(self, greeted: bool, user_id: str, proof: str) -> None:
        """Check one ``authorize``; the answer comes through a callback, maybe later."""
        if not greeted or self._checking:
            self.refuse("authorize before the greeting" if not greeted else "authorize twice",
                        "greet once, then authorize once")
            return
        self._checking = True
        checked = self._authenticator.check(user_id, proof, self._seed)
        checked.addCallback(self._checked)
        checked.addErrback(self._check_failed)

    def refuse(self, reason: str, message: str = "not authorized", client_fault: bool = True) -> None:
        """Refuse this connection; ``reason`` is logged, ``message`` goes to the controller."""
        if self.refused or self._abandoned:
            return
        self.refused = True
        if client_fault:
            self._authenticator.failed(self._host)
        log.warn("{peer}: authorization refused ({reason}); closing the connection",
                 peer=self._peer, reason=reason)
        self._on_refused(message)

    def abandon(self) -> None:
        """The connection is gone: an answer still on its way changes nothing."""
        self._abandoned = True

    def _checked(self, outcome: Authorized | Refused) -> None:
        if self._abandoned or self.refused:
            return
        if isinstance(outcome, Refused):
            self.refuse(outcome.reason, outcome.message, outcome.client_fault)
            return
        self.authorized = True
        self._authenticator.succeeded(self._host)
        log.info("{peer} authorized as {user_id} (timing partner {partner_id})", peer=self._peer,
                 user_id=outcome.login.user_id, partner_id=outcome.login.partner_id)
        self._on_authorized(outcome.login)

    def _check_failed(self, failure: Failure) -> None:
        log.failure("error checking an authorize from {peer}", failure, peer=self._peer)
        self.refuse("error checking the login", "cannot check credentials now", client_fault=False)
