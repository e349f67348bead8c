"""An in-memory ControllerLogins for unit tests: a dict, with failure and hold-back switches."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.defer import Deferred

from chronotrack.accounts.controller_logins import ControllerLogin


class MemoryControllerLogins:
    def __init__(self, *logins: ControllerLogin) -> None:
        self.logins = {login.user_id: login for login in logins}
        self.lookups: list[str] = []
        self.fail_with: Exception | None = None  # errback every lookup with this
        self.hold = False  # keep answers back in ``held`` until the test fires them
        self.held: list[tuple[str, Deferred[ControllerLogin | None]]] = []

    def lookup(self, user_id: str) -> Deferred[ControllerLogin | None]:
        self.lookups.append(user_id)
        if self.fail_with is not None:
            return defer.fail(self.fail_with)
        if self.hold:
            held: Deferred[ControllerLogin | None] = Deferred()
            self.held.append((user_id, held))
            return held
        return defer.succeed(self.logins.get(user_id))
