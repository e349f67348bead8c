"""One partner's (or one public event's) view of the shared live feed.

``LiveReads`` fetches each new read once for every subscriber; a stream subscribes through
``ScopedLive`` and is handed only the reads its viewer may see.
"""

from __future__ import annotations

from typing import Callable

from web.live import LiveReads, Subscriber
from web.queries import DisplayRead, Scope


class ScopedLive:
    """Looks like ``LiveReads`` to an ``EventStream`` (``subscribe``), filtered by ``scope``."""

    def __init__(self, live: LiveReads, scope: Scope) -> None:
        self.live = live
        self.scope = scope

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        if self.scope.everything:
            return self.live.subscribe(callback)

        def deliver(reads: list[DisplayRead]) -> None:
            mine = [read for read in reads if self.scope.allows(read)]
            if mine:
                callback(mine)

        return self.live.subscribe(deliver)
