"""bench --profile: the top costs are the reactor thread's; other threads only get their share."""

from __future__ import annotations

from bench.profiling import summarize_profile

RAW = """\
thread (11): MainThread;run (twisted/internet/base.py:1);dataReceived (chronotrack/protocol.py:246);parse_common_tag_line (chronotrack/ctp01.py:279) 30
thread (11): MainThread;run (twisted/internet/base.py:1);dataReceived (chronotrack/protocol.py:246) 10
thread (12): journal /tmp/j;work (twisted/python/threadpool.py:1);append (chronotrack/storage/journal.py:543) 60
"""


def test_the_profile_ranks_the_reactor_threads_costs_and_gives_every_threads_share(tmp_path):
    path = tmp_path / "py-spy.txt"
    path.write_text(RAW)
    lines = summarize_profile(path, "ingest")
    assert lines[0] == "profile (py-spy, ingest), samples by thread: journal /tmp/j 60%, MainThread 40%"
    assert "   75.0%  parse_common_tag_line (chronotrack/ctp01.py:279)" in lines
    assert "   25.0%  dataReceived (chronotrack/protocol.py:246)" in lines  # self time
    assert "  100.0%  dataReceived (chronotrack/protocol.py:246)" in lines  # inclusive
    assert not any("journal.py" in line for line in lines[1:])


def test_a_profile_recorded_without_threads_counts_as_the_reactors(tmp_path):
    path = tmp_path / "py-spy.txt"
    path.write_text("run (twisted/internet/base.py:1);dataReceived (chronotrack/protocol.py:246) 5\n")
    assert "  100.0%  dataReceived (chronotrack/protocol.py:246)" in summarize_profile(path, "x")
