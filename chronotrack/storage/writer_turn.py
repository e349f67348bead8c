"""Whose turn it is to write reads: the store's own lock in PostgreSQL (schema 0020).

Every statement of reads a store sends takes the store's lock for its transaction first, so
statements are written one at a time even when the next one is sent while the current one is
still being written (``PostgresReadStore._send_ahead``). The next one may go out only once the
current one holds the lock: sent earlier, it could take the lock first and be written first.
``WriterTurn`` knows which statement's turn it is and asks PostgreSQL (``pg_locks``) whether
that statement holds the lock yet, again every ``CHECK_INTERVAL`` until it does.
"""

from __future__ import annotations

import random
from typing import Any, Callable

from twisted.logger import Logger

from chronotrack.storage.read_statements import TURN_TAKEN

log = Logger()

CHECK_INTERVAL = 0.002  # seconds between two checks that the statement being written holds the lock


class WriterTurn:
    """The lock key of one store, and whether the statement being written holds it yet."""

    def __init__(self, reactor: Any, database: Callable[[], Any], writing: Callable[[], bool],
                 on_taken: Callable[[], None]) -> None:
        self.reactor = reactor
        self._database = database  # the Database to ask, when it can be asked
        self._writing = writing  # whether a statement is being written now
        self._on_taken = on_taken
        # Random, so collectors sharing a database do not wait for each other; two that drew
        # the same key would only write in turn with each other.
        self.key = random.randrange(1, 2**31)
        self.taken = False  # the statement being written holds the lock
        self._turn = 0  # which statement is being written (counts them)
        self._checking: int | None = None  # the turn a check is under way for

    def begin(self) -> None:
        """A statement becomes the one being written; it may not hold the lock yet."""
        self._turn += 1
        self.taken = False

    def check(self) -> None:
        """Ask whether the statement being written holds the lock; ``on_taken`` once it does."""
        turn = self._turn
        database = self._database()
        if self.taken or self._checking == turn or database is None:
            return
        self._checking = turn

        def answered(rows: list[tuple]) -> None:
            self._checking = None
            if turn != self._turn or not self._writing():
                return  # that statement is written already
            if rows[0][0]:
                self.taken = True
                self._on_taken()
            else:
                self.reactor.callLater(CHECK_INTERVAL, self._check_again, turn)

        def failed(failure) -> None:
            self._checking = None  # nothing is sent ahead of this statement; writing goes on as usual
            log.debug("could not tell whether the read writer holds its lock: {reason}",
                      reason=failure.getErrorMessage())

        database.run_query(TURN_TAKEN, (self.key,)).addCallbacks(answered, failed)

    def _check_again(self, turn: int) -> None:
        if turn == self._turn and self._writing():
            self.check()
