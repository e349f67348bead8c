"""Where controller logins come from: ``ControllerLogins.lookup(user_id)``.

The protocol's authenticator only needs "this user id's partner and password", so that
is the whole interface; unit tests use an in-memory fake and the collector uses
``DatabaseControllerLogins``. Logins are looked up on every ``authorize`` (nothing is
cached), so a login added or removed while the collector runs counts from the next
connection on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from twisted.internet.defer import Deferred, fail

from chronotrack.accounts.secret_box import SecretBox
from chronotrack.storage.database import Database

LOOKUP_SQL = ("SELECT timing_partner_id, user_id, password_encrypted"
              " FROM controller_credentials WHERE user_id = %s")


@dataclass(frozen=True)
class ControllerLogin:
    """One controller login; the password is kept out of ``repr`` so it never reaches a log."""

    partner_id: int
    user_id: str
    password: str = field(repr=False)


class ControllerLogins(Protocol):
    def lookup(self, user_id: str) -> Deferred[ControllerLogin | None]:
        """The login for ``user_id``, or None when there is none.

        Fails (errback) when the logins cannot be read, which is not the same as
        "no such login": the caller refuses either way but logs them differently.
        """


class LoginsUnavailable(RuntimeError):
    """The logins cannot be read now (database down, key not loaded); says which."""


class DatabaseControllerLogins:
    """Logins from ``controller_credentials``, passwords decrypted with the server key.

    ``database`` is called per lookup because the collector's Database only exists once
    its service has started. The key is loaded by ``load_key`` at start-up (it may create
    the file), not at construction, so a bad key file stops start-up with one clear line.
    """

    def __init__(self, database: Callable[[], Database | None], key_path: Path) -> None:
        self._database = database
        self.key_path = Path(key_path)
        self._box: SecretBox | None = None

    def load_key(self) -> None:
        """Read (or create, mode 0600) the server key; raises SecretKeyError."""
        self._box = SecretBox.from_file(self.key_path)

    def lookup(self, user_id: str) -> Deferred[ControllerLogin | None]:
        database = self._database()
        if database is None or self._box is None:
            return fail(LoginsUnavailable("the database is not started yet"))
        rows = database.run_query(LOOKUP_SQL, (user_id,))
        rows.addCallback(self._login_from_rows)
        return rows

    def _login_from_rows(self, rows: list[tuple]) -> ControllerLogin | None:
        if not rows:
            return None
        partner_id, user_id, encrypted = rows[0]
        assert self._box is not None
        # SecretKeyError (wrong key file) propagates as the lookup's failure.
        return ControllerLogin(partner_id=partner_id, user_id=user_id,
                               password=self._box.decrypt(encrypted))
