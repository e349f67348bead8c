"""A connection is closed once more than ``garbage_ratio`` of its last ``garbage_window`` lines
were rejected or blank. The guard counts accepted lines with one addition; its verdict must be
exactly that of keeping the whole window line by line (pure, no I/O)."""

from __future__ import annotations

import random
from collections import deque

import pytest

from chronotrack.line_guard import ConnectionLineGuard, LineLimits, RejectionTally


def window_verdict(history: deque[bool], window: int, ratio: float) -> str | None:
    """The rule written out: the last ``window`` lines, True where rejected or blank."""
    if len(history) < window:
        return None
    rejected = sum(history)
    return f"{rejected} of its last {window} lines were rejected" if rejected > ratio * window else None


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("window, ratio", [(200, 0.9), (10, 0.5), (1, 0.0), (50, 0.98)])
def test_the_garbage_verdict_is_that_of_the_whole_window(seed, window, ratio):
    rng = random.Random(seed)
    limits = LineLimits(garbage_window=window, garbage_ratio=ratio, max_rejected_per_minute=10**9,
                        rejected_lines_stored_per_minute=10**9)
    guard = ConnectionLineGuard(RejectionTally(limits))
    history: deque[bool] = deque(maxlen=window)
    garbage_share = rng.choice([0.05, 0.5, 0.95])
    verdicts = 0
    for line in range(3000):
        if rng.random() < 0.02:  # spells of garbage, then of good lines
            garbage_share = rng.choice([0.0, 0.3, 0.92, 1.0])
        kind = rng.random()
        if kind >= garbage_share:
            guard.accepted()
            history.append(False)
            continue
        history.append(True)
        if rng.random() < 0.3:
            got = guard.blank(float(line))
        else:
            got = guard.rejected("bad_time", float(line)).close_because
        expected = window_verdict(history, window, ratio)
        assert got == expected, (line, got, expected)
        verdicts += expected is not None
    assert len(guard._rejected_lines) <= window
    if ratio < 0.95:
        assert verdicts, "the run never reached a verdict: the test would not see a wrong one"
