"""The collector process moves start-up's objects out of the garbage collector's way and collects
less often (chronotrack.garbage_collection). Run in a child process: the settings are process-wide
and must not change how this test process collects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chronotrack.garbage_collection import THRESHOLDS

REPO_ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import gc
import chronotrack.tap  # what twistd imports before it builds the services
before = gc.get_freeze_count()
from chronotrack.garbage_collection import settle_after_start_up
settle_after_start_up()
cycle = []
cycle.append(cycle)
print(before, gc.get_freeze_count() > 1000, *gc.get_threshold(), gc.is_tracked(cycle))
"""


def test_start_up_objects_are_frozen_and_collections_are_rarer_in_the_process_that_asks():
    result = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    before, frozen, *thresholds, cycle_tracked = result.stdout.split()
    assert before == "0" and frozen == "True"
    assert tuple(map(int, thresholds)) == THRESHOLDS
    assert THRESHOLDS[0] > 700  # rarer than Python's default
    assert cycle_tracked == "True"  # objects made after start-up are still collected

