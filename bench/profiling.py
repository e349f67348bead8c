"""``--profile``: py-spy samples the collector for a few seconds; the top costs become notes.

py-spy (``pip install py-spy``) is optional: without it the suite says so and goes on.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path


def start_profiler(pid: int, output: Path, seconds: int = 8) -> subprocess.Popen | None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("  py-spy not installed (pip install py-spy): no profile", flush=True)
        return None
    return subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
                             "--format", "raw", "--output", str(output), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(path: Path, what: str, top: int = 12) -> list[str]:
    """Self time per function and inclusive time per chronotrack/web function, from py-spy's raw output."""
    if not path.exists():
        return ["py-spy produced no profile"]
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [frame.strip() for frame in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            if "chronotrack/" in frame or "web/" in frame:
                inclusive[frame] += samples
    if not total:
        return ["py-spy profile is empty"]
    lines = [f"profile (py-spy, {what}, {total} samples), self time:"]
    lines += [f"  {samples * 100 / total:5.1f}%  {frame}" for frame, samples in own.most_common(top)]
    lines.append("profile, inclusive time in project code:")
    lines += [f"  {samples * 100 / total:5.1f}%  {frame}" for frame, samples in inclusive.most_common(top)]
    return lines
