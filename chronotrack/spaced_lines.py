"""Lines sent on an injected clock, each its delay after the previous one.

The handshake (0.5 s after the greeting, 0.1 s between settings, 0.2 s between commands)
and every later command go through one ``SpacedLines`` per connection, so lines are never
reordered and tests drive the timing with ``task.Clock``.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

Plan = list[tuple[float, str]]  # (seconds after the previous line, line)


class SpacedLines:
    def __init__(self, clock: IReactorTime, send: Callable[[str], None]) -> None:
        self._clock = clock
        self._send = send
        self._waiting: deque[tuple[float, str, Callable[[], None] | None]] = deque()
        self._call: IDelayedCall | None = None
        self._sending = False
        self._stopped = False

    def queue(self, plan: Plan, after: Callable[[], None] | None = None) -> None:
        """Send ``plan`` after what is already waiting; ``after`` runs once its last line is sent.

        Lines whose delay is zero go out together with the line before them, so zero
        delays never reorder lines.
        """
        if self._stopped:
            return
        for index, (delay, line) in enumerate(plan):
            last = index == len(plan) - 1
            self._waiting.append((delay, line, after if last else None))
        if not plan and after is not None:
            after()
            return
        if self._call is None and not self._sending:
            self._send_due(head_is_due=False)

    def clear(self) -> None:
        """Forget every waiting line (the connection is being refused)."""
        self._waiting.clear()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def stop(self) -> None:
        """The connection is gone: nothing more is sent, now or later."""
        self._stopped = True
        self.clear()

    def _send_due(self, head_is_due: bool = True) -> None:
        self._call = None
        self._sending = True  # lines queued by an ``after`` callback wait their turn
        try:
            while self._waiting and not self._stopped:
                delay, line, after = self._waiting[0]
                if delay > 0 and not head_is_due:
                    self._call = self._clock.callLater(delay, self._send_due)
                    return
                self._waiting.popleft()
                head_is_due = False
                self._send(line)
                if after is not None:
                    after()
        finally:
            self._sending = False
