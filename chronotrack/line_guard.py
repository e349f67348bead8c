"""How much a connection's bad lines may cost: pure policy, no I/O.

A hostile or broken client can send garbage as fast as TCP allows. Every line is still
counted (by reason kind, for /status), but only a sample is stored and logged, and a
connection whose lines are almost all garbage is closed. Good reads from a well-behaved
controller never pass through any of these limits: only rejected lines do.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from twisted.logger import Logger

from chronotrack.reads import TagRead

log = Logger()

MINUTE = 60.0
# Pings, acks and errs a client may send per minute. Each one makes us write a line, log
# or touch the database (an ack~getlocations records locations); a real controller sends
# a handful per connection plus one ack per keepalive ping.
REPLIES_PER_MINUTE = 120


@dataclass(frozen=True)
class LineLimits:
    """Per-connection limits on lines; the defaults are the options' defaults."""

    max_line_length: int = 1024  # bytes, line end excluded
    rejected_lines_stored_per_minute: int = 20  # per connection: a sample is kept, the rest counted
    garbage_ratio: float = 0.9  # close when more than this share of the last lines was rejected
    garbage_window: int = 200  # how many of the last lines that share is taken over
    max_rejected_per_minute: int = 1000  # close a connection past this many rejected lines a minute
    clock_tolerance: float = 86400.0  # seconds a read's time may be off the server clock unflagged
    rejected_lines_stored_per_minute_total: int = 1000  # all connections together
    warnings_per_minute_total: int = 100  # rejection warnings in the log, all connections together


def limits_from_config(values: dict[str, Any]) -> LineLimits:
    """LineLimits from ``resolve_settings`` output; absent keys keep their defaults."""
    names = ("max_line_length", "rejected_lines_stored_per_minute", "garbage_ratio",
             "max_rejected_per_minute", "clock_tolerance")
    return LineLimits(**{name: values[name] for name in names if values.get(name) is not None})


class WindowBudget:
    """At most ``limit`` uses per window of ``window`` seconds; the refusals are counted."""

    def __init__(self, limit: int, window: float = MINUTE) -> None:
        self.limit = limit
        self.window = window
        self._started: float | None = None
        self._used = 0
        self.refused = 0  # since the last use that was allowed

    def allow(self, now: float) -> bool:
        if self._started is None or now - self._started >= self.window or now < self._started:
            self._started = now
            self._used = 0
        if self._used < self.limit:
            self._used += 1
            return True
        self.refused += 1
        return False

    def take_refused(self) -> int:
        refused, self.refused = self.refused, 0
        return refused


@dataclass(frozen=True)
class Verdict:
    """What to do with one rejected line."""

    store: bool
    log: bool
    suppressed: int  # warnings not logged since the last one that was
    close_because: str | None = None


class RejectionTally:
    """The whole collector's figures and shared budgets (one per factory)."""

    def __init__(self, limits: LineLimits) -> None:
        self.limits = limits
        self.by_kind: Counter[str] = Counter()
        self.not_stored = 0
        self.closed_for_garbage = 0
        self.reads_clock_suspect = 0
        self.stored_budget = WindowBudget(limits.rejected_lines_stored_per_minute_total)
        self.warnings = WindowBudget(limits.warnings_per_minute_total)
        self._clock_window: ClockWindow | None = None

    def check_clock(self, peer: str, read: TagRead, now: float) -> bool:
        """Count (and log, within the budget) a read whose time is far from the server's.

        It is stored all the same; the store flags it ``clock_suspect`` by the same rule.
        """
        stamp = read.read_timestamp
        window = self._clock_window
        if window is None or window.zone is not stamp.tzinfo or not window.fresh(now):
            window = self._clock_window = ClockWindow.around(now, self.limits.clock_tolerance, stamp.tzinfo)
        if window.surely_within(stamp) or not is_clock_suspect(stamp, now, self.limits.clock_tolerance):
            return False
        self.reads_clock_suspect += 1
        if self.warnings.allow(now):
            log.warn("{peer}: read {location}~{sequence} has time {time}, more than {tolerance:.0f} s "
                     "from the server clock; stored and flagged clock_suspect", peer=peer,
                     location=read.location_name, sequence=read.sequence_number,
                     time=read.read_time, tolerance=self.limits.clock_tolerance)
        return True

    def figures(self) -> dict[str, Any]:
        return {
            "rejected_by_reason": dict(sorted(self.by_kind.items())),
            "rejected_lines_not_stored": self.not_stored,
            "connections_closed_for_garbage": self.closed_for_garbage,
            "reads_clock_suspect": self.reads_clock_suspect,
        }


class ConnectionLineGuard:
    """One connection's recent lines: decides what each rejected line may cost."""

    def __init__(self, tally: RejectionTally) -> None:
        self.tally = tally
        limits = tally.limits
        self._limits = limits
        self._lines = 0  # lines seen, accepted or not; each line's number is its count
        # Numbers of the rejected (or blank) lines among the last garbage_window: an accepted
        # line, nearly every line, costs one addition.
        self._rejected_lines: deque[int] = deque()
        self._stored = WindowBudget(limits.rejected_lines_stored_per_minute)
        self._logged = WindowBudget(limits.rejected_lines_stored_per_minute)
        self._per_minute = WindowBudget(limits.max_rejected_per_minute)
        self._replies = WindowBudget(REPLIES_PER_MINUTE)

    def allow_reply(self, now: float) -> bool:
        return self._replies.allow(now)

    def accepted(self) -> None:
        self._lines += 1

    def blank(self, now: float) -> str | None:
        """An empty line: not a rejection, but it counts as garbage towards closing."""
        self._note_garbage()
        return self._close_because(now, counted=False)

    def rejected(self, kind: str, now: float) -> Verdict:
        tally = self.tally
        tally.by_kind[kind] += 1
        self._note_garbage()
        store = self._stored.allow(now) and tally.stored_budget.allow(now)
        if not store:
            tally.not_stored += 1
        log = self._logged.allow(now) and tally.warnings.allow(now)
        suppressed = (self._logged.take_refused() + tally.warnings.take_refused()) if log else 0
        return Verdict(store, log, suppressed, self._close_because(now, counted=True))

    def _note_garbage(self) -> None:
        self._lines += 1
        rejected = self._rejected_lines
        rejected.append(self._lines)
        oldest_in_window = self._lines - self._limits.garbage_window
        while rejected and rejected[0] <= oldest_in_window:
            rejected.popleft()

    def _close_because(self, now: float, counted: bool) -> str | None:
        if counted and not self._per_minute.allow(now):
            return f"more than {self._limits.max_rejected_per_minute} rejected lines in a minute"
        window = self._limits.garbage_window
        if self._lines >= window:
            oldest_in_window = self._lines - window
            rejected = self._rejected_lines
            while rejected and rejected[0] <= oldest_in_window:
                rejected.popleft()
            if len(rejected) > self._limits.garbage_ratio * window:
                return f"{len(rejected)} of its last {window} lines were rejected"
        return None


def is_clock_suspect(read_timestamp: datetime, now: float, tolerance: float) -> bool:
    """A read whose time is further than ``tolerance`` seconds from the server's clock.

    Kept and flagged, never rejected: a controller with a wrong clock still carries
    real finishes. The store applies the same rule to ``received_at`` in SQL.
    """
    # Seconds since the epoch on both sides: no datetime built per read.
    return abs(read_timestamp.timestamp() - now) > tolerance


# How far a wall-clock comparison may be from the instants compared: a zone's offset changes
# by at most two hours (double summer time; a window across a larger change is not used), and
# the window is renewed once the clock has moved a minute.
_LARGEST_OFFSET_CHANGE = timedelta(hours=2)
_WALL_CLOCK_MARGIN = 2 * 3600 + 60
_WINDOW_RENEWED_AFTER = 60.0


class ClockWindow:
    """A time that is surely within ``tolerance`` of the server clock, told at the cost of
    comparing two datetimes of one zone.

    ``is_clock_suspect`` converts each read's time to seconds since the epoch, which asks its
    zone for the offset: a cost per read at full speed. Reads of one connection share their
    event's zone object, and datetimes sharing a tzinfo compare by wall-clock fields alone.
    So the bounds are kept as wall-clock times in that zone, brought in by more than any
    offset change and any clock movement before they are renewed: a read between them is
    within tolerance for certain; any other read gets the exact test.
    """

    __slots__ = ("zone", "_made_at", "_low", "_high")

    def __init__(self, zone: tzinfo | None, made_at: float, low: datetime | None, high: datetime | None) -> None:
        self.zone = zone
        self._made_at = made_at
        self._low = low
        self._high = high

    @classmethod
    def around(cls, now: float, tolerance: float, zone: tzinfo | None) -> ClockWindow:
        inner = tolerance - _WALL_CLOCK_MARGIN
        if zone is None or inner <= 0:
            return cls(zone, now, None, None)  # nothing is certain: every read gets the exact test
        try:
            low = datetime.fromtimestamp(now - inner, zone)
            high = datetime.fromtimestamp(now + inner, zone)
            offsets = [moment.utcoffset() for moment in (low, datetime.fromtimestamp(now, zone), high)]
        except (OverflowError, OSError, ValueError):
            return cls(zone, now, None, None)
        if None in offsets or max(offsets) - min(offsets) > _LARGEST_OFFSET_CHANGE:
            return cls(zone, now, None, None)  # a zone redrawn around now (Samoa, 2011)
        return cls(zone, now, low, high)

    def fresh(self, now: float) -> bool:
        return abs(now - self._made_at) < _WINDOW_RENEWED_AFTER

    def surely_within(self, stamp: datetime) -> bool:
        low = self._low
        return low is not None and stamp.tzinfo is self.zone and low <= stamp <= self._high
