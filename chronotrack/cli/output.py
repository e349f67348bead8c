"""Plain aligned tables and times for the listing subcommands."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence, TextIO


def when(moment: datetime | None) -> str:
    """A time in UTC to the second, or '-' for never."""
    if moment is None:
        return "-"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], out: TextIO, empty: str) -> None:
    if not rows:
        print(empty, file=out)
        return
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(header), *(len(row[index]) for row in cells)) for index, header in enumerate(headers)]
    for row in [list(headers), *cells]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=out)
