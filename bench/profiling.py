"""``--profile``: py-spy samples the collector for a few seconds; the top costs become notes.

Each thread is sampled on its own (``--threads``): the top costs are the reactor thread's, the
one that parses, journals and builds statements for every read, so time the journal's worker
thread spends in fsync or a database thread waits is not mistaken for work per read. A line
gives each thread's share of the samples.

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
                             "--format", "raw", "--output", str(output), "--nonblocking", "--threads"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


REACTOR_THREAD = "MainThread"


def summarize_profile(path: Path, what: str, top: int = 12) -> list[str]:
    """The reactor thread's self time per function and inclusive time per chronotrack/web
    function, and each thread's share of the samples, from py-spy's raw output."""
    if not path.exists():
        return ["py-spy produced no profile"]
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [frame.strip() for frame in stack.split(";")]
        thread = REACTOR_THREAD
        if frames[0].startswith("thread ("):  # recorded with --threads: "thread (id): name"
            thread = frames.pop(0).partition(": ")[2] or "unnamed"
        threads[thread] += samples
        if thread != REACTOR_THREAD or not frames:
            continue
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            if "chronotrack/" in frame or "web/" in frame:
                inclusive[frame] += samples
    if not total:
        return ["py-spy profile has no sample of the reactor thread"]
    everything = sum(threads.values())
    lines = ["profile (py-spy, " + what + "), samples by thread: " + ", ".join(
        f"{name} {samples * 100 / everything:.0f}%" for name, samples in threads.most_common(4))]
    lines.append(f"profile, reactor thread ({total} samples), self time:")
    lines += [f"  {samples * 100 / total:5.1f}%  {frame}" for frame, samples in own.most_common(top)]
    lines.append("profile, reactor thread, inclusive time in project code:")
    lines += [f"  {samples * 100 / total:5.1f}%  {frame}" for frame, samples in inclusive.most_common(top)]
    return lines
