"""Open streams and what gives each one the right to run: a public display, a session, a token.

A stream outlives the request that checked its viewer, so the right is checked again: at
once when it is taken away here (sign-out, display switched off), and once a minute for
what can change elsewhere (another display process, a session expiring, an operator
disabled, a token revoked). The periodic check is three small queries however many
streams are open, and runs only while some stream needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from twisted.internet.defer import ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from chronotrack.storage.database import Database
from web import queries
from web.errors import DatabaseUnavailable
from web.sse import EventStream

log = Logger()

RECHECK_SECONDS = 60.0


@dataclass(frozen=True)
class StreamRight:
    """What a stream rides on; all None in open mode (nothing to lose)."""

    public_event: int | None = None
    web_session: int | None = None
    api_token: int | None = None

    @property
    def revocable(self) -> bool:
        return (self.public_event, self.web_session, self.api_token) != (None, None, None)


class StreamGuard:
    def __init__(self, clock: IReactorTime, database: Callable[[], Database],
                 interval: float = RECHECK_SECONDS) -> None:
        self._database = database
        self._streams: dict[EventStream, StreamRight] = {}
        self._recheck = LoopingCall(self._start_check)
        self._recheck.clock = clock
        self._interval = interval
        self._checking = False

    def __len__(self) -> int:
        return len(self._streams)

    def add(self, stream: EventStream, right: StreamRight) -> None:
        self._streams[stream] = right
        if right.revocable and not self._recheck.running:
            self._recheck.start(self._interval, now=False)

    def remove(self, stream: EventStream) -> None:
        self._streams.pop(stream, None)
        if self._recheck.running and not any(right.revocable for right in self._streams.values()):
            self._recheck.stop()

    def end(self, matches: Callable[[StreamRight], bool]) -> int:
        """End (cleanly) the streams whose right ``matches``; how many."""
        ended = [stream for stream, right in list(self._streams.items()) if matches(right)]
        for stream in ended:
            stream.close(finish=True)
        return len(ended)

    def end_all(self) -> None:
        self.end(lambda right: True)
        if self._recheck.running:
            self._recheck.stop()

    def _start_check(self) -> None:
        if self._checking:
            return  # the last one is still waiting for the database
        self._checking = True
        checking = ensureDeferred(self.check())
        checking.addErrback(lambda failure: log.failure("re-checking open streams failed", failure))
        checking.addBoth(lambda _: setattr(self, "_checking", False))

    async def check(self) -> int:
        """End the streams whose display, session or token is no longer good; how many."""
        rights = set(self._streams.values())
        events = {right.public_event for right in rights if right.public_event is not None}
        sessions = {right.web_session for right in rights if right.web_session is not None}
        tokens = {right.api_token for right in rights if right.api_token is not None}
        if not (events or sessions or tokens):
            return 0
        try:
            database = self._database()
            good_events = await queries.still_public(database, events) if events else set()
            good_sessions = await queries.still_signed_in(database, sessions) if sessions else set()
            good_tokens = await queries.still_valid_tokens(database, tokens) if tokens else set()
        except DatabaseUnavailable:
            return 0  # nothing known: keep them; the next check decides

        def gone(right: StreamRight) -> bool:
            return ((right.public_event is not None and right.public_event not in good_events)
                    or (right.web_session is not None and right.web_session not in good_sessions)
                    or (right.api_token is not None and right.api_token not in good_tokens))

        ended = self.end(gone)
        if ended:
            log.info("ended {count} live streams whose display, session or token is no longer valid", count=ended)
        return ended
