"""Geometry for the small server-side SVG bar chart on /status (no JavaScript chart library).

Only numbers come out of here; the template draws them, so every label stays escaped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    maximum: int
    baseline: float


def bar_chart(values: list[tuple[str, int]], width: int = 720, height: int = 180,
              top_margin: int = 16, bottom_margin: int = 22, gap: float = 2.0) -> BarChart:
    """Bars scaled to the tallest value; a column of zeros still draws a flat baseline."""
    maximum = max((value for _, value in values), default=0)
    plot_height = height - top_margin - bottom_margin
    baseline = float(height - bottom_margin)
    slot = width / len(values) if values else width
    bars = []
    for index, (label, value) in enumerate(values):
        bar_height = (value / maximum * plot_height) if maximum else 0.0
        if value and bar_height < 1.5:
            bar_height = 1.5  # a minute with one read must still be visible
        bars.append(Bar(x=round(index * slot + gap / 2, 2), y=round(baseline - bar_height, 2),
                        width=round(max(slot - gap, 1.0), 2), height=round(bar_height, 2),
                        value=value, label=label))
    return BarChart(width=width, height=height, bars=bars, maximum=maximum, baseline=baseline)
