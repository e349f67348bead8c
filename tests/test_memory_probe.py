"""The opt-in memory probe: off unless CHRONOTRACK_MEMORY_PROFILE names a file; when on, a line
of figures per interval, and with CHRONOTRACK_MEMORY_TRACE the biggest holders at each new peak."""

from __future__ import annotations

import tracemalloc

from twisted.internet import task

from chronotrack.memory_probe import PROFILE_VARIABLE, TRACE_VARIABLE, probe_from_environment


def test_the_probe_is_off_unless_the_variable_names_a_file():
    assert probe_from_environment(task.Clock(), environ={}) is None
    assert probe_from_environment(task.Clock(), environ={PROFILE_VARIABLE: "  "}) is None


def test_each_interval_appends_a_line_with_the_process_and_store_figures(tmp_path):
    clock = task.Clock()
    path = tmp_path / "memory.txt"
    probe = probe_from_environment(clock, environ={PROFILE_VARIABLE: str(path)},
                                   figures=lambda: {"reads_in_memory": 12})
    probe.startService()
    clock.advance(probe.interval)
    clock.advance(probe.interval)
    probe.stopService()
    samples = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    assert len(samples) == 3  # at start, then one per interval
    for line in samples:
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        assert float(fields["rss"]) > 0
        assert int(fields["pymalloc_blocks"]) > 0
        assert fields["reads_in_memory"] == "12"
    assert path.read_text().splitlines()[-1].startswith("# at stop: ")
    assert not (tmp_path / "memory.txt.peak").exists()  # no tracing asked for


def test_with_tracing_the_peak_and_what_is_left_name_their_tracebacks(tmp_path):
    clock = task.Clock()
    path = tmp_path / "memory.txt"
    probe = probe_from_environment(clock, environ={PROFILE_VARIABLE: str(path), TRACE_VARIABLE: "5"})
    assert not tracemalloc.is_tracing()
    probe.startService()
    try:
        assert tracemalloc.is_tracing()
        held = [bytearray(1024) for _ in range(2000)]  # about 2 MB held at the peak
        probe.step_mb = 0  # every sample is a new peak
        clock.advance(probe.interval)
    finally:
        probe.stopService()
    assert not tracemalloc.is_tracing(), "tracing left on after stop"
    peak = (tmp_path / "memory.txt.peak").read_text()
    assert peak.startswith("== at VmRSS ")
    assert "test_memory_probe.py" in peak.split("#2:")[0], "the biggest holder is not named"
    assert (tmp_path / "memory.txt.after").read_text().startswith("== left at stop")
    del held
