"""The pure parts of the suite: percentiles, rows with targets, the table, RESULTS.md.

Nothing here touches a process, a socket or the clock, so tests/test_bench_report.py
covers it directly.
"""

from __future__ import annotations

import math
import operator
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

PASS, MISS, FAIL = "pass", "MISS", "FAIL"
RESULTS_HEADER = """# Benchmark results

Written by `make bench` (full) and `make bench QUICK=1` (quick), see bench/suite.py.
Each run inserts a dated section right below this header: newest first, older runs
stay below as the history. Targets come from the issue; they are printed, never asserted.
Figures from a machine shared with other work are noisy: each section says so when it was.
"""


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0..1) of ``values``; nan when empty."""
    if not values:
        return math.nan
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be between 0 and 1")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of durations given in seconds, in milliseconds."""
    return {"p50": percentile(seconds, 0.50) * 1000, "p99": percentile(seconds, 0.99) * 1000,
            "max": (max(seconds) * 1000) if seconds else math.nan, "n": len(seconds)}


_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Target:
    """``value <op> limit``, e.g. Target("<", 50, "ms")."""

    op: str
    limit: float
    unit: str = ""

    def met_by(self, value: float) -> bool:
        return not math.isnan(value) and _COMPARE[self.op](value, self.limit)

    def __str__(self) -> str:
        return f"{self.op} {format_number(self.limit)}{(' ' + self.unit) if self.unit else ''}"


@dataclass(frozen=True)
class Row:
    """One line of the table. ``failed`` marks an error (503, timeout, lost events)."""

    section: str
    figure: str
    value: float | None
    unit: str = ""
    target: Target | None = None
    note: str = ""
    failed: bool = False

    @property
    def shown_value(self) -> str:
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return "n/a"
        return f"{format_number(self.value)}{(' ' + self.unit) if self.unit else ''}"

    @property
    def mark(self) -> str:
        if self.failed:
            return FAIL
        if self.target is None or self.value is None:
            return ""
        return PASS if self.target.met_by(float(self.value)) else MISS


def format_number(value: float) -> str:
    """Thousands separators; one decimal below 100, two below 10 (ratios, ms)."""
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def ratio(numerator: float | None, denominator: float | None) -> float:
    if not numerator or not denominator or math.isnan(numerator) or math.isnan(denominator):
        return math.nan
    return numerator / denominator


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table that also reads well on a terminal."""
    header = ("section", "figure", "value", "target", "mark", "note")
    cells = [tuple(_cell(text) for text in (row.section, row.figure, row.shown_value,
                                             str(row.target) if row.target else "", row.mark, row.note))
             for row in rows]
    widths = [max(len(header[i]), *(len(cell[i]) for cell in cells)) if cells else len(header[i])
              for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(value.ljust(width) for value, width in zip(values, widths)) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), separator, *(line(cell) for cell in cells)])


def _cell(text: str) -> str:
    """One line, no pipe: table cells stay cells."""
    return " ".join(text.replace("|", "/").split())


def machine_description(postgres_version: str, meminfo: str | None = None, cpuinfo: str | None = None) -> dict[str, str]:
    """CPU model, cores, memory, PostgreSQL and Python versions (files read unless given)."""
    if cpuinfo is None:
        cpuinfo = _read("/proc/cpuinfo")
    if meminfo is None:
        meminfo = _read("/proc/meminfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    memory = re.search(r"^MemTotal:\s*(\d+)\s*kB", meminfo, re.MULTILINE)
    return {
        "cpu": model.group(1).strip() if model else platform.processor() or "unknown",
        "cores": str(os.cpu_count() or "?"),
        "memory": f"{int(memory.group(1)) / 1024 / 1024:.1f} GiB" if memory else "unknown",
        "postgresql": postgres_version,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def results_section(title: str, machine: dict[str, str], table: str, notes: Sequence[str]) -> str:
    lines = [f"## {title}", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    lines += ["", table, ""]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines).rstrip() + "\n"


def add_section(existing: str, section: str) -> str:
    """RESULTS.md with ``section`` first under the header (newest first, history below)."""
    body = existing[len(RESULTS_HEADER):] if existing.startswith(RESULTS_HEADER) else existing
    body = body.lstrip("\n")
    return RESULTS_HEADER + "\n" + section + ("\n" + body if body else "")
