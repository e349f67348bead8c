"""An opt-in look at what holds the collector's memory: off unless an environment variable
names a file, so it costs nothing in production.

    CHRONOTRACK_MEMORY_PROFILE=/tmp/collector-memory.txt twistd -n chronotrack-collector ...

Every ``interval`` seconds the probe appends one line to that file: VmRSS, what glibc's
malloc holds (``mallinfo2``: bytes in use, free but kept, mmapped), the blocks pymalloc has
handed out, the garbage collector's counts, and the store's figures (reads in memory,
waiting, in the journal only). Reading the line at a burst's peak beside the one after it
tells Python objects from C buffers from memory freed but never returned.

    CHRONOTRACK_MEMORY_TRACE=12

also turns on ``tracemalloc`` (with that many frames per traceback) and, at every new VmRSS
peak, writes the biggest holders by traceback to ``<file>.peak``, and at stop those left to
``<file>.after``. Tracing slows the collector several times over and takes memory of its
own: compare holders with each other, not with an untraced run's figures.

Sampling reads /proc and writes a line on the reactor; a snapshot pauses it for a moment.
This is a diagnostic for benchmarks and for reproducing a problem, not for race day.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Mapping

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger()

PROFILE_VARIABLE = "CHRONOTRACK_MEMORY_PROFILE"
TRACE_VARIABLE = "CHRONOTRACK_MEMORY_TRACE"
TOP_ALLOCATIONS = 25


def rss_mb(pid: int | str = "self") -> float:
    """VmRSS in MiB from /proc (Linux); nan where there is no /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]


@functools.cache
def _libc_mallinfo2() -> Callable[[], _MallInfo2] | None:
    """glibc's mallinfo2, looked up on first use only (never when the probe is off)."""
    try:
        function = ctypes.CDLL("libc.so.6").mallinfo2  # glibc 2.33 and later
    except (OSError, AttributeError):
        return None
    function.restype = _MallInfo2
    return function


def malloc_figures() -> dict[str, float]:
    """glibc malloc's main view in MB: in use, free but kept in its arenas, mmapped; {} elsewhere.

    mallinfo2 sums every arena (the journal's worker thread has its own).
    """
    mallinfo2 = _libc_mallinfo2()
    if mallinfo2 is None:
        return {}
    info = mallinfo2()
    return {"malloc_in_use": info.uordblks / 2**20, "malloc_free_kept": info.fordblks / 2**20,
            "malloc_mmapped": info.hblkhd / 2**20}


def sample_line(figures: Mapping[str, Any]) -> str:
    """One line of the timeline: time, VmRSS, malloc, pymalloc, gc, then the caller's figures."""
    parts = [f"{time.time():.2f}", f"rss={rss_mb():.1f}"]
    parts += [f"{name}={value:.1f}" for name, value in malloc_figures().items()]
    parts.append(f"pymalloc_blocks={sys.getallocatedblocks()}")
    parts.append("gc=" + "/".join(str(count) for count in gc.get_count()))
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        parts.append(f"traced={current / 2**20:.1f} traced_peak={peak / 2**20:.1f}"
                     f" tracemalloc_own={tracemalloc.get_tracemalloc_memory() / 2**20:.1f}")
    parts += [f"{name}={value}" for name, value in figures.items()]
    return " ".join(parts) + "\n"


def holders_report(title: str, snapshot: tracemalloc.Snapshot, frames: int) -> str:
    """The biggest holders by traceback, most recent frame first."""
    snapshot = snapshot.filter_traces((
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "*/linecache.py"),
    ))
    stats = snapshot.statistics("traceback")
    total = sum(stat.size for stat in stats)
    lines = [f"== {title}: {total / 2**20:.1f} MB traced in {sum(stat.count for stat in stats)} blocks"]
    for rank, stat in enumerate(stats[:TOP_ALLOCATIONS], 1):
        lines.append(f"#{rank}: {stat.size / 2**20:.2f} MB in {stat.count} blocks")
        lines += [f"    {frame.strip()}" for frame in stat.traceback.format(limit=frames, most_recent_first=True)]
    return "\n".join(lines) + "\n"


class MemoryProbe(Service):
    """The timeline and, when tracing, the holders at each new peak; see the module docstring."""

    def __init__(self, reactor, path: Path, figures: Callable[[], Mapping[str, Any]] = dict,
                 trace_frames: int = 0, interval: float = 0.25, step_mb: float = 2.0) -> None:
        self.reactor = reactor
        self.path = Path(path)
        self.figures = figures
        self.trace_frames = trace_frames
        self.step_mb = step_mb
        self.highest = 0.0
        self._started_tracing = False
        self._loop = LoopingCall(self._sample)
        self._loop.clock = reactor
        self.interval = interval

    def startService(self) -> None:
        super().startService()
        if self.trace_frames and not tracemalloc.is_tracing():
            tracemalloc.start(self.trace_frames)
            self._started_tracing = True
        log.warn("memory profile on ({variable}): a line every {interval} s in {path}{tracing}",
                 variable=PROFILE_VARIABLE, interval=self.interval, path=str(self.path),
                 tracing=", tracing every allocation" if self.trace_frames else "")
        self._append(f"# memory profile of pid {os.getpid()}, started\n")
        self._loop.start(self.interval, now=True)

    def stopService(self) -> None:
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        self._append("# at stop: " + sample_line(self._figures()))
        if self._started_tracing:
            self._write(self.path.with_name(self.path.name + ".after"),
                        holders_report("left at stop", tracemalloc.take_snapshot(), self.trace_frames))
            tracemalloc.stop()
            self._started_tracing = False

    def _figures(self) -> Mapping[str, Any]:
        try:
            return self.figures()
        except Exception as error:  # noqa: BLE001 - a line without them beats none
            return {"figures": f"unavailable: {error!r}"}

    def _sample(self) -> None:
        self._append(sample_line(self._figures()))
        rss = rss_mb()
        if self._started_tracing and rss >= self.highest + self.step_mb:
            self.highest = rss
            self._write(self.path.with_name(self.path.name + ".peak"),
                        holders_report(f"at VmRSS {rss:.1f} MB", tracemalloc.take_snapshot(), self.trace_frames))

    def _append(self, text: str) -> None:
        try:
            with open(self.path, "a") as timeline:
                timeline.write(text)
        except OSError as error:
            log.warn("cannot write the memory profile {path}: {error}", path=str(self.path), error=str(error))

    def _write(self, path: Path, text: str) -> None:
        try:
            temporary = path.with_name(path.name + ".new")
            temporary.write_text(text)
            os.replace(temporary, path)
        except OSError as error:
            log.warn("cannot write the memory profile {path}: {error}", path=str(path), error=str(error))


def probe_from_environment(reactor, environ: Mapping[str, str] = os.environ,
                           figures: Callable[[], Mapping[str, Any]] = dict) -> MemoryProbe | None:
    """The probe when ``CHRONOTRACK_MEMORY_PROFILE`` names a file, else None (the default)."""
    path = environ.get(PROFILE_VARIABLE, "").strip()
    if not path:
        return None
    frames = environ.get(TRACE_VARIABLE, "").strip()
    return MemoryProbe(reactor, Path(path), figures, trace_frames=int(frames) if frames.isdigit() else 0)
