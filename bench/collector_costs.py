"""What the collector's own steps cost per read, in this process, without a socket or a database.

    .venv/bin/python -m bench.collector_costs [--reads 200000] [--repeat 3]

The steps a read takes through the twistd process at full speed, each timed on its own over
the same lines (CPU time of this process, best of ``--repeat``): the protocol's handling of
64 KiB chunks up to ``record_read`` (tests' in-memory controller harness, a store that only
keeps the reads), decoding and parsing the tag line alone, encoding the journal batch, reading a spilled batch back from a real journal
segment on disk, and building the INSERT's array literals. It complements ``bench.ingest_four``
(the whole pipeline, where PostgreSQL and the simulator share the two cores): a change to one
step shows here without the noise of the others. CPU time, not wall-clock: a loaded machine
still makes it noisier, so compare runs made back to back.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from chronotrack.ctp01 import decode_line, parse_common_tag_line
from chronotrack.reads import ReadSource
from chronotrack.storage import journal as journal_module
from chronotrack.storage.journal_lines import JournalEntry, encode_entries
from chronotrack.storage.read_statements import prepare_batch
from tests.memory_store import MemoryReadStore
from tests.test_protocol import FAST, Controller, make_factory
from twisted.internet.defer import Deferred

ZONE = ZoneInfo("Europe/Berlin")
DAY = date(2026, 11, 26)
CHUNK = 1300  # tag lines in one 64 KiB dataReceived chunk, which share their arrival time
JOURNAL_BATCH = 500  # the store's default batch_size: one journal append


def tag_lines(count: int) -> list[bytes]:
    """Lines as the simulator sends them after the handshake asked for ISO times."""
    start = datetime(2026, 11, 26, 9, 0, 0)
    lines = []
    for index in range(count):
        when = (start + timedelta(milliseconds=7 * index)).isoformat(timespec="milliseconds")[:-1]
        location = "start" if index % 2 else "finish"
        lines.append(f"CT01_33~{index % 999_999 + 1}~{location}~{1000 + index % 5000}~{when}~0~"
                     f"ABC{index % 4:03d}~1".encode("ascii"))
    return lines


class _KeepingStore(MemoryReadStore):
    """The handshake as the memory store answers it; reads only kept, as cheaply as the real
    store's record_read before its batch is journaled (one shared Deferred)."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[tuple] = []
        self._batch: Deferred[None] = Deferred()

    def record_read(self, read, source) -> Deferred[None]:
        self.kept.append((read, source))
        return self._batch


def protocol_path(lines: list[bytes]) -> int:
    """Lines through a handshaken CTP01 connection in 64 KiB chunks; how many reads were kept."""
    store = _KeepingStore()
    # The server clock on the lines' morning: no read is flagged (and logged) as clock_suspect.
    controller = Controller(make_factory(FAST, store=store, start=datetime(2026, 11, 26, 9, tzinfo=ZONE).timestamp()))
    controller.handshake(("start", "finish"))
    data = b"".join(line + b"\r\n" for line in lines)
    receive = controller.protocol.dataReceived
    for start in range(0, len(data), 65536):
        receive(data[start:start + 65536])
    return len(store.kept)


def best_of(repeat: int, work: Callable[[], object]) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.process_time()
        result = work()
        best = min(best, time.process_time() - started)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    try:  # the garbage collector as the collector process sets it (absent in older versions)
        from chronotrack.garbage_collection import settle_after_start_up
    except ImportError:
        print("garbage collector: Python's defaults")
    else:
        settle_after_start_up()
        print("garbage collector: as the collector process sets it")
    lines = tag_lines(args.reads)
    sources = [ReadSource(stream_id=f"connection:c{n}", peer=f"127.0.0.1:{40000 + n}", connection_row_id=n,
                          partner_id=None, event_id="bench", event_name="Bench") for n in range(4)]

    def parse() -> list[JournalEntry]:
        entries = []
        for start in range(0, len(lines), CHUNK):
            received = datetime.now(timezone.utc)
            source = sources[(start // CHUNK) % 4]
            for line in lines[start:start + CHUNK]:
                read = parse_common_tag_line(decode_line(line), ZONE, DAY, received)
                entries.append(JournalEntry(read, source))
        return entries

    figures: list[tuple[str, float]] = []
    seconds, kept = best_of(args.repeat, lambda: protocol_path(lines))
    assert kept == len(lines), (kept, len(lines))
    figures.append(("protocol: dataReceived .. record_read, 64 KiB chunks", seconds))
    seconds, entries = best_of(args.repeat, parse)
    assert entries is not None and all(entry.read is not None for entry in entries)
    figures.append(("decode + parse_common_tag_line + JournalEntry", seconds))
    batches = [entries[start:start + JOURNAL_BATCH] for start in range(0, len(entries), JOURNAL_BATCH)]

    seconds, _ = best_of(args.repeat, lambda: [encode_entries(batch) for batch in batches])
    figures.append(("journal: encode batches", seconds))

    with tempfile.TemporaryDirectory(prefix="ctcosts-") as directory:
        files = journal_module._JournalFiles(Path(directory), 1 << 40)
        files.recover()
        seconds, positions = best_of(1, lambda: [files.append(batch) for batch in batches])
        figures.append(("journal: append (encode, write, fsync) batches", seconds))

        def read_back() -> int:
            count = 0
            for position, start in positions:
                back, problems = files.read_back(position, start)
                assert not problems
                count += len(back)
            return count

        seconds, count = best_of(args.repeat, read_back)
        assert count == len(entries), (count, len(entries))
        figures.append(("journal: read back every batch", seconds))
        files.close()

    writes = [entries[start:start + 5000] for start in range(0, len(entries), 5000)]
    seconds, _ = best_of(args.repeat, lambda: [prepare_batch(batch) for batch in writes])
    figures.append(("prepare_batch (array literals), 5,000 a statement", seconds))

    print(f"{len(entries):,} reads, CPU time of this process, best of {args.repeat}:")
    for name, seconds in figures:
        print(f"  {seconds * 1e6 / len(entries):6.2f} us/read  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
