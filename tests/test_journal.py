"""The read journal: a read is received once it is fsync'd here, and never lost after.

Run as a script (``python test_journal.py child ...``) this file is also the child
process of the kill -9 test, so parent and child build entries with the same code.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import random
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, protocol
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from chronotrack.storage import journal as journal_module
from chronotrack.storage.journal import (
    JournalClosedError,
    JournalError,
    JournalPosition,
    JournalWriteError,
    ReadJournal,
)
from chronotrack.storage.journal_lines import JournalEntry
from chronotrack.reads import ReadSource, TagRead

REPO_ROOT = Path(__file__).resolve().parent.parent


def make_entry(sequence_number: int, raw_padding: int = 0) -> JournalEntry:
    """A deterministic entry per sequence number, exercising offsets and None row ids.

    Two of three are reads their raw line describes exactly (journaled in the compact format
    2); every third has a location its raw line does not carry (format 1, JSON), so each
    test also covers both formats side by side in one segment.
    """
    offset = timedelta(hours=(sequence_number % 5) - 2, minutes=30 * (sequence_number % 2))
    timestamp = datetime(2025, 5, 17, 9, 30, 0, tzinfo=timezone(offset)) + timedelta(
        seconds=sequence_number, microseconds=sequence_number * 7 % 1_000_000
    )
    read_time = timestamp.strftime("%H:%M:%S.%f")[:-3]
    raw = (
        f"CT01_33~{sequence_number}~Finish~{1000 + sequence_number}~{read_time}"
        f"~1~0af3c1~{sequence_number % 4}"
    )
    return JournalEntry(
        read=TagRead(
            format_id="CT01_33",
            sequence_number=sequence_number,
            # non-ASCII survives the round trip (in format 1)
            location_name="Finish \u00e9tape" if sequence_number % 3 == 1 else "Finish",
            tag_code=str(1000 + sequence_number),
            read_time=read_time,
            read_timestamp=timestamp,
            lap_count=1,
            reader_id="0af3c1",
            gator_number=sequence_number % 4,
            raw_data=raw + "x" * raw_padding,
            received_at=(
                None if sequence_number % 3 == 0
                else timestamp.astimezone(timezone.utc) + timedelta(milliseconds=40)
            ),
        ),
        source=ReadSource(
            stream_id="EV1-0af3c1",
            peer="10.0.0.7:51234",
            connection_row_id=None if sequence_number % 2 == 0 else sequence_number * 3,
        ),
    )


def make_batch(first: int, count: int) -> list[JournalEntry]:
    return [make_entry(first + index) for index in range(count)]


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("segment-*.jsonl"))


@pytest.fixture
def reactor():
    from twisted.internet import reactor as global_reactor

    return global_reactor


@pytest.fixture
def log_events():
    observer = EventLoggingObserver()
    globalLogPublisher.addObserver(observer)
    yield observer
    globalLogPublisher.removeObserver(observer)


def journal_messages(observer: EventLoggingObserver, level: LogLevel) -> list[str]:
    return [
        formatEvent(event)
        for event in observer
        if event.get("log_namespace") == "chronotrack.storage.journal" and event["log_level"] == level
    ]


@defer.inlineCallbacks
def reopen_entries(directory: Path, reactor):
    """What a fresh start-up would recover, without changing anything on disk."""
    journal = ReadJournal(directory, reactor)
    entries = yield journal.open()
    yield journal.close()
    return entries


# -- JournalEntry ------------------------------------------------------------------


def test_entry_json_round_trip_keeps_every_field_and_the_utc_offset():
    for sequence_number in range(10):
        entry = make_entry(sequence_number)
        line = entry.to_json()
        assert "\n" not in line
        parsed = JournalEntry.from_json(line)
        assert parsed == entry
        assert parsed.read.read_timestamp.utcoffset() == entry.read.read_timestamp.utcoffset()
        assert parsed.source.connection_row_id == entry.source.connection_row_id
    assert JournalEntry.from_json(make_entry(0).to_json()).source.connection_row_id is None


def test_entry_json_carries_every_field_of_the_read_and_its_source():
    """A field added to TagRead or ReadSource must not be silently dropped on disk."""
    document = json.loads(make_entry(1).to_json())
    assert set(document["read"]) == {field.name for field in dataclasses.fields(TagRead)}
    assert set(document["source"]) == {field.name for field in dataclasses.fields(ReadSource)}


def test_entry_journaled_before_received_at_existed_still_parses():
    document = json.loads(make_entry(1).to_json())
    del document["read"]["received_at"]
    parsed = JournalEntry.from_json(json.dumps(document))
    assert parsed == dataclasses.replace(
        make_entry(1), read=dataclasses.replace(make_entry(1).read, received_at=None)
    )


def _mutated(change) -> str:
    document = json.loads(make_entry(3).to_json())
    change(document)
    return json.dumps(document)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "not json",
        "[]",
        make_entry(3).to_json()[:-5],
        _mutated(lambda d: d["read"].update(read_timestamp="2025-05-17T09:30:00")),  # naive
        _mutated(lambda d: d["read"].update(received_at="2025-05-17T09:30:00")),
        _mutated(lambda d: d["read"].pop("tag_code")),
        _mutated(lambda d: d["read"].update(sequence_number="3")),
        _mutated(lambda d: d["read"].update(lap_count=True)),
        _mutated(lambda d: d["source"].update(connection_row_id="7")),
        _mutated(lambda d: d.update(v=2)),
        _mutated(lambda d: d.update(read=[])),
    ],
)
def test_from_json_rejects_anything_but_a_complete_entry(line):
    with pytest.raises(ValueError):
        JournalEntry.from_json(line)


# -- append, close, reopen -----------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_reopen_returns_appended_entries_exactly(tmp_path, reactor):
    directory = tmp_path / "journal"
    journal = ReadJournal(directory, reactor)
    assert (yield journal.open()) == []
    appended = []
    for first, count in [(0, 1), (1, 5), (6, 3)]:
        batch = make_batch(first, count)
        yield journal.append(batch)
        appended.extend(batch)
    assert journal.pending_count == 9
    yield journal.close()

    recovered = yield reopen_entries(directory, reactor)
    assert recovered == appended
    for got, expected in zip(recovered, appended):
        assert got.read.read_timestamp.utcoffset() == expected.read.read_timestamp.utcoffset()
        assert got.source.connection_row_id == expected.source.connection_row_id


@pytest_twisted.inlineCallbacks
def test_released_entries_are_not_returned_on_reopen(tmp_path, reactor):
    journal = ReadJournal(tmp_path, reactor)
    yield journal.open()
    yield journal.append(make_batch(0, 2))
    second = yield journal.append(make_batch(2, 3))
    yield journal.append(make_batch(5, 4))
    assert journal.pending_count == 9
    yield journal.release(second)
    assert journal.pending_count == 4
    yield journal.close()

    assert (yield reopen_entries(tmp_path, reactor)) == make_batch(5, 4)


@pytest_twisted.inlineCallbacks
def test_entries_recovered_but_not_yet_stored_survive_a_release_in_the_next_run(
    tmp_path, reactor
):
    """A release in run 2 must not hide run 1's leftovers that run 2 has not stored."""
    first_run = ReadJournal(tmp_path, reactor)
    yield first_run.open()
    yield first_run.append(make_batch(0, 3))
    yield first_run.close()

    second_run = ReadJournal(tmp_path, reactor)
    assert (yield second_run.open()) == make_batch(0, 3)
    assert second_run.pending_count == 3
    position = yield second_run.append(make_batch(3, 2))
    yield second_run.release(position)
    assert second_run.pending_count == 3  # the recovered ones are still pending
    yield second_run.close()  # crash-like: release_recovered() never called

    assert (yield reopen_entries(tmp_path, reactor)) == make_batch(0, 3)


@pytest_twisted.inlineCallbacks
def test_release_recovered_deletes_the_old_segments(tmp_path, reactor):
    first_run = ReadJournal(tmp_path, reactor)
    yield first_run.open()
    yield first_run.append(make_batch(0, 3))
    yield first_run.close()
    old_segments = segment_files(tmp_path)
    assert old_segments

    second_run = ReadJournal(tmp_path, reactor)
    assert (yield second_run.open()) == make_batch(0, 3)
    yield second_run.release_recovered()
    assert second_run.pending_count == 0
    assert not any(path.exists() for path in old_segments)
    yield second_run.close()

    assert (yield reopen_entries(tmp_path, reactor)) == []


# -- segments ------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_segment_fully_released_is_deleted_from_disk(tmp_path, reactor):
    one_batch = len(make_entry(0).to_json()) + 1
    journal = ReadJournal(tmp_path, reactor, segment_max_bytes=one_batch + 10)
    yield journal.open()
    positions = []
    for sequence_number in range(3):
        positions.append((yield journal.append([make_entry(sequence_number)])))
    assert [position.segment for position in positions] == [1, 2, 3]
    first, second, third = (tmp_path / f"segment-{n:020d}.jsonl" for n in (1, 2, 3))
    assert first.exists() and second.exists() and third.exists()

    yield journal.release(positions[0])
    assert not first.exists()
    assert second.exists() and third.exists()

    yield journal.release(positions[2])
    assert segment_files(tmp_path) == []  # the current one too: fully released
    after = yield journal.append([make_entry(3)])
    assert after.segment == 4
    yield journal.close()
    assert (yield reopen_entries(tmp_path, reactor)) == [make_entry(3)]


@pytest_twisted.inlineCallbacks
def test_rotation_at_segment_max_bytes(tmp_path, reactor):
    segment_max_bytes = 2000
    journal = ReadJournal(tmp_path, reactor, segment_max_bytes=segment_max_bytes)
    yield journal.open()
    for sequence_number in range(30):
        yield journal.append([make_entry(sequence_number)])
    yield journal.close()

    segments = segment_files(tmp_path)
    assert len(segments) > 3
    assert all(path.stat().st_size <= segment_max_bytes for path in segments)
    numbers = [int(path.name[len("segment-"):-len(".jsonl")]) for path in segments]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert (yield reopen_entries(tmp_path, reactor)) == make_batch(0, 30)


@pytest_twisted.inlineCallbacks
def test_journal_stays_small_during_a_long_race_with_a_healthy_database(tmp_path, reactor):
    """Released data is deleted long before the current segment reaches its maximum."""
    segment_max_bytes = 64_000
    journal = ReadJournal(tmp_path, reactor, segment_max_bytes=segment_max_bytes)
    yield journal.open()
    largest = 0
    total_written = 0
    for sequence_number in range(80):
        entry = make_entry(sequence_number, raw_padding=4000)
        position = yield journal.append([entry])
        total_written += len(entry.to_json()) + 1
        yield journal.release(position)
        largest = max(largest, sum(p.stat().st_size for p in segment_files(tmp_path)))
    yield journal.close()

    assert total_written > 4 * segment_max_bytes
    assert largest <= segment_max_bytes // 4 + 4200
    assert journal.pending_count == 0
    assert (yield reopen_entries(tmp_path, reactor)) == []


# -- damaged files -------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_torn_last_line_is_skipped_and_the_complete_ones_kept(tmp_path, reactor, log_events):
    journal = ReadJournal(tmp_path, reactor)
    yield journal.open()
    yield journal.append(make_batch(0, 3))
    yield journal.close()
    (segment,) = segment_files(tmp_path)
    with segment.open("ab") as file:
        file.write(make_entry(3).to_json().encode()[:57])  # kill -9 mid-write

    assert (yield reopen_entries(tmp_path, reactor)) == make_batch(0, 3)
    warnings = journal_messages(log_events, LogLevel.warn)
    assert any("torn last line 4" in message and segment.name in message
               for message in warnings), warnings


@pytest_twisted.inlineCallbacks
def test_corrupt_middle_line_is_skipped_and_the_rest_recovered(tmp_path, reactor, log_events):
    journal = ReadJournal(tmp_path, reactor)
    yield journal.open()
    yield journal.append(make_batch(0, 4))
    yield journal.close()
    (segment,) = segment_files(tmp_path)
    lines = segment.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1][:20] + b"\x00\x00garbage\n"
    lines.insert(3, b"\x00" * 30 + b"\n")  # zero-filled block after a crash
    segment.write_bytes(b"".join(lines))

    recovered = yield reopen_entries(tmp_path, reactor)
    assert recovered == [make_entry(0), make_entry(2), make_entry(3)]
    warnings = journal_messages(log_events, LogLevel.warn)
    assert sum("corrupt line" in message for message in warnings) == 2, warnings


@pytest_twisted.inlineCallbacks
def test_unreadable_checkpoint_recovers_everything(tmp_path, reactor, log_events):
    """A lost checkpoint may only cause stored reads to come back, never a loss."""
    journal = ReadJournal(tmp_path, reactor)
    yield journal.open()
    first = yield journal.append(make_batch(0, 2))
    yield journal.append(make_batch(2, 2))
    yield journal.release(first)
    yield journal.close()
    (tmp_path / "released.json").write_bytes(b"\x00" * 16)

    assert (yield reopen_entries(tmp_path, reactor)) == make_batch(0, 4)
    assert any("checkpoint" in message
               for message in journal_messages(log_events, LogLevel.warn))


@pytest_twisted.inlineCallbacks
def test_an_unreadable_segment_is_logged_and_kept_without_failing_start_up(
    tmp_path, reactor, log_events
):
    journal = ReadJournal(tmp_path, reactor)
    yield journal.open()
    yield journal.append(make_batch(0, 2))
    yield journal.close()
    unreadable = tmp_path / f"segment-{0:020d}.jsonl"
    unreadable.mkdir()  # reading it fails, as a file on a failing disk would

    journal = ReadJournal(tmp_path, reactor)
    assert (yield journal.open()) == make_batch(0, 2)
    yield journal.release_recovered()
    yield journal.close()
    assert unreadable.exists()
    assert any(str(unreadable) in message
               for message in journal_messages(log_events, LogLevel.error))


# -- ordering and durability -----------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_appends_keep_order_under_many_concurrent_calls(tmp_path, reactor):
    journal = ReadJournal(tmp_path, reactor, segment_max_bytes=5000)
    yield journal.open()
    batches = []
    first = 0
    rng = random.Random(4)
    for _ in range(200):
        count = rng.randint(1, 3)
        batches.append(make_batch(first, count))
        first += count
    positions = yield defer.gatherResults([journal.append(batch) for batch in batches])
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert journal.pending_count == first
    yield journal.close()

    assert (yield reopen_entries(tmp_path, reactor)) == make_batch(0, first)


@pytest_twisted.inlineCallbacks
def test_each_batch_is_fsyncd_once_before_it_is_acknowledged(tmp_path, reactor, monkeypatch):
    journal = ReadJournal(tmp_path, reactor)
    yield journal.open()
    real_fsync = os.fsync
    fsynced = []

    def counting_fsync(fd):
        real_fsync(fd)
        fsynced.append(os.readlink(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(journal_module.os, "fsync", counting_fsync)
    for index in range(10):
        yield journal.append(make_batch(index * 4, 4))
        assert len(fsynced) == index + 1  # acknowledged only after its fsync
    assert all(Path(path).parent == tmp_path and Path(path).name.startswith("segment-")
               for path in fsynced)

    fsynced.clear()
    yield defer.gatherResults([journal.append(make_batch(100 + n, 1)) for n in range(7)])
    assert len(fsynced) == 7
    yield journal.close()


@pytest_twisted.inlineCallbacks
def test_write_error_fails_the_append_and_later_appends_are_clean(
    tmp_path, reactor, monkeypatch, log_events
):
    journal = ReadJournal(tmp_path, reactor)
    yield journal.open()
    yield journal.append(make_batch(0, 2))
    real_write = os.write

    def disk_full_halfway(fd, data):
        if bytes(data[:6]) == b'{"v":1' or bytes(data[:2]) == b"2\t":  # a batch, either format
            real_write(fd, data[: len(data) // 2])  # a partial line reaches the file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(journal_module.os, "write", disk_full_halfway)
    with pytest.raises(JournalWriteError) as raised:
        yield journal.append(make_batch(2, 3))
    assert str(tmp_path) in str(raised.value)
    assert "No space left on device" in str(raised.value)
    assert journal.pending_count == 2
    assert any("failed" in message for message in journal_messages(log_events, LogLevel.error))

    monkeypatch.undo()
    # The caller retries the failed batch; it must not be glued to the partial line.
    retried = yield journal.append(make_batch(2, 3))
    assert retried.segment > 1
    yield journal.append(make_batch(5, 1))
    yield journal.close()

    assert (yield reopen_entries(tmp_path, reactor)) == make_batch(0, 6)


@pytest_twisted.inlineCallbacks
def test_fsync_error_fails_the_append_and_abandons_the_segment(tmp_path, reactor, monkeypatch):
    journal = ReadJournal(tmp_path, reactor)
    yield journal.open()
    before = yield journal.append(make_batch(0, 1))

    def failing_fsync(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(journal_module.os, "fsync", failing_fsync)
    with pytest.raises(JournalWriteError, match="Input/output error"):
        yield journal.append(make_batch(1, 1))
    monkeypatch.undo()

    after = yield journal.append(make_batch(1, 1))
    assert after.segment > before.segment  # never trust a file whose fsync failed
    yield journal.close()
    # The unacknowledged bytes were cut off, so the retried read is there once.
    assert (yield reopen_entries(tmp_path, reactor)) == make_batch(0, 2)


@pytest_twisted.inlineCallbacks
def test_an_entry_that_would_not_survive_recovery_fails_its_append(tmp_path, reactor):
    """A naive timestamp would be skipped as corrupt at start-up: refuse it up front."""
    journal = ReadJournal(tmp_path, reactor)
    yield journal.open()
    good = make_entry(0)
    naive = dataclasses.replace(
        make_entry(1), read=dataclasses.replace(
            make_entry(1).read, read_timestamp=datetime(2025, 5, 17, 9, 30))
    )
    with pytest.raises(ValueError, match="read_timestamp"):
        yield journal.append([good, naive])
    yield journal.append([make_entry(2)])
    yield journal.close()
    assert (yield reopen_entries(tmp_path, reactor)) == [make_entry(2)]


# -- lifecycle -----------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_open_fails_clearly_when_the_directory_cannot_be_created(tmp_path, reactor):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    directory = blocker / "journal"
    journal = ReadJournal(directory, reactor)
    with pytest.raises(JournalError) as raised:
        yield journal.open()
    assert str(directory) in str(raised.value)
    assert not [t for t in threading.enumerate() if str(directory) in t.name]
    with pytest.raises(JournalClosedError):
        yield journal.append(make_batch(0, 1))


@pytest_twisted.inlineCallbacks
def test_a_second_journal_on_the_same_directory_is_refused(tmp_path, reactor):
    first = ReadJournal(tmp_path, reactor)
    yield first.open()
    second = ReadJournal(tmp_path, reactor)
    with pytest.raises(JournalError, match="in use"):
        yield second.open()
    yield first.close()


@pytest_twisted.inlineCallbacks
def test_append_outside_open_fails_and_close_stops_the_worker(tmp_path, reactor):
    journal = ReadJournal(tmp_path, reactor)
    with pytest.raises(JournalClosedError):
        yield journal.append(make_batch(0, 1))
    yield journal.open()
    pending = journal.append(make_batch(0, 1))
    yield journal.close()  # waits for the pending append
    assert isinstance((yield pending), JournalPosition)
    assert not [t for t in threading.enumerate() if str(tmp_path) in t.name]
    with pytest.raises(JournalClosedError):
        yield journal.append(make_batch(1, 1))
    yield journal.close()  # closing twice is fine
    assert (yield reopen_entries(tmp_path, reactor)) == make_batch(0, 1)


@pytest_twisted.inlineCallbacks
def test_restarts_without_reads_do_not_pile_up_segment_files(tmp_path, reactor):
    for _ in range(5):
        assert (yield reopen_entries(tmp_path, reactor)) == []
    assert len(segment_files(tmp_path)) == 1


class _ShutdownRecordingReactor:
    """The real reactor for threads, but system event triggers are only recorded."""

    def __init__(self, real_reactor) -> None:
        self._real_reactor = real_reactor
        self.triggers: dict[int, tuple[str, str, object]] = {}

    def callFromThread(self, function, *args, **kwargs) -> None:
        self._real_reactor.callFromThread(function, *args, **kwargs)

    def addSystemEventTrigger(self, phase, event_type, function, *args, **kwargs) -> int:
        handle = len(self.triggers) + 1
        self.triggers[handle] = (phase, event_type, function)
        return handle

    def removeSystemEventTrigger(self, handle: int) -> None:
        del self.triggers[handle]


@pytest_twisted.inlineCallbacks
def test_a_journal_left_open_finishes_its_writes_and_stops_its_thread_at_shutdown(
    tmp_path, reactor
):
    recording = _ShutdownRecordingReactor(reactor)
    journal = ReadJournal(tmp_path, recording)
    yield journal.open()
    ((phase, event_type, stop),) = recording.triggers.values()
    assert (phase, event_type) == ("during", "shutdown")  # after services have stopped
    for first in range(0, 20, 4):
        journal.append(make_batch(first, 4))  # not waited for
    stop()
    assert not [t for t in threading.enumerate() if str(tmp_path) in t.name]
    assert (yield reopen_entries(tmp_path, reactor)) == make_batch(0, 20)


@pytest_twisted.inlineCallbacks
def test_close_removes_the_shutdown_trigger(tmp_path, reactor):
    recording = _ShutdownRecordingReactor(reactor)
    journal = ReadJournal(tmp_path, recording)
    yield journal.open()
    yield journal.close()
    assert recording.triggers == {}


# -- kill -9 -------------------------------------------------------------------------


class _ChildProcess(protocol.ProcessProtocol):
    def __init__(self, on_line):
        self._on_line = on_line
        self._buffer = b""
        self.stderr = b""
        self.ended: defer.Deferred = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._on_line(line.decode())

    def errReceived(self, data: bytes) -> None:
        self.stderr += data

    def processEnded(self, reason) -> None:
        self.ended.callback(reason.value)  # a Failure would errback


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("release", [False, True], ids=["no-release", "release"])
@pytest_twisted.inlineCallbacks
def test_sigkill_at_a_random_point_loses_no_acknowledged_read(tmp_path, reactor, seed, release):
    rng = random.Random(seed)
    kill_after = rng.randint(3, 60)
    acknowledged: list[int] = []
    released_below = 0
    killing = []

    def kill() -> None:
        if child_transport.pid is not None:
            child_transport.signalProcess("KILL")

    def on_line(line: str) -> None:
        nonlocal released_below
        word, *numbers = line.split()
        if word == "appended":
            first, count = map(int, numbers)
            acknowledged.extend(range(first, first + count))
            if len(acknowledged) >= kill_after and not killing:
                killing.append(reactor.callLater(rng.uniform(0, 0.01), kill))
        elif word == "releasing":
            released_below = int(numbers[0])  # these may be gone; the rest may not

    child = _ChildProcess(on_line)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    child_transport = reactor.spawnProcess(
        child,
        sys.executable,
        [sys.executable, str(Path(__file__).resolve()), "child", str(tmp_path),
         str(seed), "release" if release else "keep"],
        env=env,
        path=str(REPO_ROOT),
    )
    guard = reactor.callLater(60, kill)
    reason = yield child.ended
    if guard.active():
        guard.cancel()
    stderr = child.stderr.decode(errors="replace")
    assert killing, f"child ended before {kill_after} acknowledged reads: {stderr}"
    assert reason.signal == 9, stderr

    recovered = yield reopen_entries(tmp_path, reactor)
    numbers = [entry.read.sequence_number for entry in recovered]
    assert len(numbers) == len(set(numbers)), "duplicates recovered"
    assert numbers == sorted(numbers)
    for entry in recovered:  # no garbage: each one is exactly what the child appended
        assert entry == make_entry(entry.read.sequence_number)
    missing = {n for n in acknowledged if n >= released_below} - set(numbers)
    assert not missing, f"acknowledged reads lost: {sorted(missing)}"
    if not release:
        assert set(acknowledged) <= set(numbers)


def _child_main(directory: str, seed: str, mode: str) -> None:
    """Append batches forever, printing each acknowledgement, until killed."""
    from twisted.internet import task

    async def run(reactor) -> None:
        journal = ReadJournal(Path(directory), reactor, segment_max_bytes=4096)
        await journal.open()
        rng = random.Random(int(seed))
        next_number = 0
        while True:
            count = rng.randint(1, 8)
            position = await journal.append(make_batch(next_number, count))
            print(f"appended {next_number} {count}", flush=True)
            next_number += count
            if mode == "release" and rng.random() < 0.5:
                # Said before releasing: a kill may come before release() returns.
                print(f"releasing {next_number}", flush=True)
                await journal.release(position)

    task.react(lambda reactor: defer.ensureDeferred(run(reactor)))


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    _child_main(*sys.argv[2:5])
