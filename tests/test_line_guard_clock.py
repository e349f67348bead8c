"""A read far from the server clock is counted as clock_suspect; the guard tells most reads are
not by comparing wall-clock times of one zone, and must count exactly the reads the exact rule
(``is_clock_suspect``) counts, across DST changes and a zone redrawn by a day (pure, no I/O)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from chronotrack.line_guard import LineLimits, RejectionTally, is_clock_suspect
from chronotrack.reads import TagRead

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia", "UTC"]
# Server clocks near a DST change, Samoa's skipped day, and an ordinary morning.
CLOCKS = [datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc), datetime(2026, 11, 1, 6, 0, tzinfo=timezone.utc),
          datetime(2011, 12, 30, 10, 0, tzinfo=timezone.utc), datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)]


def read_at(stamp: datetime) -> TagRead:
    return TagRead("CT01_33", 1, "finish", "1", "x", stamp, 0, "ABC001", 1, "raw")


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("tolerance", [86400.0, 3 * 3600.0, 600.0])
def test_the_reads_counted_as_clock_suspect_are_exactly_those_of_the_rule(zone_name, tolerance):
    zone = ZoneInfo(zone_name)
    rng = random.Random(f"{zone_name}{tolerance}")
    tally = RejectionTally(LineLimits(clock_tolerance=tolerance, warnings_per_minute_total=0))
    expected = 0
    for clock in CLOCKS:
        now = clock.timestamp()
        for _ in range(400):
            now += rng.uniform(0, 20)  # the clock moves on between reads
            # Mostly near the tolerance's edges, in wall-clock time of the event's zone.
            offset = rng.choice([-1, 1]) * (tolerance + rng.uniform(-4 * 3600, 4 * 3600))
            if rng.random() < 0.3:
                offset = rng.uniform(-tolerance, tolerance)
            stamp = datetime.fromtimestamp(now + offset, timezone.utc).astimezone(zone).replace(tzinfo=None)
            stamp = stamp.replace(tzinfo=zone, fold=rng.choice([0, 1]))
            suspect = is_clock_suspect(stamp, now, tolerance)
            assert tally.check_clock("peer", read_at(stamp), now) is suspect, (stamp, now)
            expected += suspect
    assert tally.reads_clock_suspect == expected
    assert 0 < expected < 4 * 400  # both verdicts were reached


def test_reads_of_another_zone_than_the_window_get_the_exact_rule():
    tally = RejectionTally(LineLimits(clock_tolerance=86400.0, warnings_per_minute_total=0))
    now = CLOCKS[3].timestamp()
    berlin = datetime.fromtimestamp(now, ZoneInfo("Europe/Berlin"))
    assert tally.check_clock("peer", read_at(berlin), now) is False
    far = datetime.fromtimestamp(now - 2 * 86400, timezone(timedelta(hours=14)))
    assert tally.check_clock("peer", read_at(far), now) is True
    assert tally.check_clock("peer", read_at(berlin + timedelta(days=1, seconds=1)), now) is True
