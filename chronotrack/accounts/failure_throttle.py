"""Slow down guessing: after repeated failures a key (an address, an e-mail) is refused for a while.

Used for CTP01 ``authorize`` failures per address and web sign-in failures per address and
per e-mail. Memory is bounded whatever a client sends: at most ``max_keys`` keys are
remembered, the oldest forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from twisted.internet.interfaces import IReactorTime


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    blocked_until: float = 0.0


class FailureThrottle:
    """``max_failures`` within ``window`` seconds block a key for ``block_for`` seconds."""

    def __init__(self, clock: IReactorTime, max_failures: int = 5, window: float = 60.0,
                 block_for: float = 300.0, max_keys: int = 10_000) -> None:
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self.block_for = block_for
        self.max_keys = max_keys
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def is_blocked(self, key: str) -> bool:
        record = self._records.get(key)
        return record is not None and record.blocked_until > self.clock.seconds()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again (0 when it may now)."""
        record = self._records.get(key)
        return max(0.0, record.blocked_until - self.clock.seconds()) if record else 0.0

    def record_failure(self, key: str) -> bool:
        """Count a failure; True when this one blocks the key."""
        now = self.clock.seconds()
        record = self._records.pop(key, None) or _Record()
        self._records[key] = record  # most recent last
        record.failures = [at for at in record.failures if now - at < self.window]
        record.failures.append(now)
        while len(self._records) > self.max_keys:
            self._records.popitem(last=False)
        if len(record.failures) >= self.max_failures and record.blocked_until <= now:
            record.blocked_until = now + self.block_for
            record.failures.clear()
            return True
        return False

    def record_success(self, key: str) -> None:
        self._records.pop(key, None)
