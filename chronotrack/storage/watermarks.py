"""Resume points from contiguous watermarks: pure functions, no I/O.

A controller's location is resumed from its first *missing* sequence number. The
highest stored number would do only if reads arrived without gaps and every client told
the truth: a gap (a read lost in a crash before the journal, a replay cut short) or a
client that claims a real controller's connection id and sends sequence 999999 would
make the collector ask the real controller to skip reads it never sent.

The database keeps, per (partner, stream, location), ``contiguous_through``: every
number from 1 to it is stored (``stream_watermarks``, advanced in the insert's
transaction). Reads journaled here but not yet written extend it in memory.
"""

from __future__ import annotations

from typing import Iterable, Mapping

StreamLocation = tuple[str, str]  # (stream id, location)


def contiguous_through(stored_through: int, pending: set[int] | frozenset[int]) -> int:
    """How far the run 1..n reaches when ``pending`` numbers are added to a stored run."""
    through = stored_through
    while through + 1 in pending:
        through += 1
    return through


def resume_points(stored: Iterable[tuple[str, str, int]],
                  pending: Mapping[StreamLocation, set[int]],
                  prefix: str | None) -> dict[str, int]:
    """Per location, the last number of the unbroken run from 1 (locations at 0 are left out).

    ``stored`` holds (stream, location, contiguous_through) from the database for the
    streams asked about, ``pending`` the numbers journaled but not yet stored. With a
    ``prefix`` (a controller without a connection id: every reader stream of its event)
    a location is resumed only when exactly one stream has it, since another box's
    numbers say nothing about this one.
    """
    runs: dict[StreamLocation, int] = {}
    for stream, location, through in stored:
        runs[(stream, location)] = max(through, runs.get((stream, location), 0))
    for key in pending:
        runs.setdefault(key, 0)
    for key, through in runs.items():
        runs[key] = contiguous_through(through, pending.get(key, frozenset()))
    if prefix is None:
        return {location: through for (_, location), through in runs.items() if through > 0}
    by_location: dict[str, list[int]] = {}
    for (_, location), through in runs.items():
        by_location.setdefault(location, []).append(through)
    return {location: throughs[0] for location, throughs in by_location.items()
            if len(throughs) == 1 and throughs[0] > 0}
