"""The pure parts of the benchmark suite (bench/report.py): no process, socket or clock."""

from __future__ import annotations

import math

import pytest

from bench.report import (FAIL, MISS, PASS, RESULTS_HEADER, Row, Target, add_section, format_number,
                          format_table, machine_description, percentile, ratio, results_section, summary_ms)


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile(values, 0.0) == 1
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([3, 1, 2], 0.5) == 2  # unsorted input


def test_percentile_of_nothing_is_nan_and_fraction_is_checked():
    assert math.isnan(percentile([], 0.5))
    with pytest.raises(ValueError):
        percentile([1], 1.5)


def test_summary_is_in_milliseconds():
    figures = summary_ms([0.010, 0.020, 0.030])
    assert figures == {"p50": 20.0, "p99": 30.0, "max": 30.0, "n": 3}
    assert math.isnan(summary_ms([])["p99"])


def test_targets_mark_pass_miss_and_failures():
    under_50 = Target("<", 50, "ms")
    assert Row("web", "p99", 12.0, "ms", under_50).mark == PASS
    assert Row("web", "p99", 50.0, "ms", under_50).mark == MISS
    assert Row("web", "p99", 12.0, "ms", under_50, failed=True).mark == FAIL
    assert Row("web", "p99", math.nan, "ms", under_50).mark == MISS  # nothing measured is no pass
    assert Row("ingest", "rate", 60_000, "reads/s", Target(">=", 50_000)).mark == PASS
    assert Row("ingest", "rate", 60_000, "reads/s").mark == ""
    assert str(Target(">=", 50_000, "reads/s")) == ">= 50,000 reads/s"


def test_numbers_and_missing_values():
    assert format_number(1234567.8) == "1,234,568"
    assert format_number(42.25) == "42.2"
    assert format_number(3.14159) == "3.14"
    assert Row("web", "/api/results", None).shown_value == "n/a"
    assert Row("x", "y", math.nan, "ms").shown_value == "n/a"
    assert math.isnan(ratio(10, 0)) and math.isnan(ratio(None, 2)) and ratio(10, 4) == 2.5


def test_table_is_aligned_markdown_with_one_line_cells():
    table = format_table([Row("ingest", "4 controllers", 5000, "reads/s", Target(">=", 50_000, "reads/s")),
                          Row("web", "/stats | p99", 12.5, "ms", note="first\nsecond")])
    lines = table.splitlines()
    assert lines[0].startswith("| section") and set(lines[1]) <= {"|", "-"}
    assert len({len(line) for line in lines}) == 1  # every line as wide as the header
    assert "5,000 reads/s" in lines[2] and "MISS" in lines[2]
    assert "/stats / p99" in lines[3] and "first second" in lines[3]


def test_machine_description_reads_cpu_and_memory():
    machine = machine_description("PostgreSQL 18.6", meminfo="MemTotal:       24684132 kB\n",
                                  cpuinfo="processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\n")
    assert machine["cpu"] == "Example CPU @ 2.0GHz"
    assert machine["memory"] == "23.5 GiB"
    assert machine["postgresql"] == "PostgreSQL 18.6"
    assert machine["python"].count(".") == 2


def test_results_keep_history_newest_first():
    first = results_section("2026-11-26 01:00 UTC, quick mode", {"cpu": "x"}, "| t |", ["shared machine"])
    second = results_section("2026-11-26 02:00 UTC, quick mode", {"cpu": "x"}, "| t |", [])
    text = add_section(add_section("", first), second)
    assert text.startswith(RESULTS_HEADER)
    assert text.index("02:00 UTC") < text.index("01:00 UTC")
    assert text.count(RESULTS_HEADER) == 1
    assert "- shared machine" in text
