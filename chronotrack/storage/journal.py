"""The append-only on-disk journal of received reads.

A read counts as *received* only once it is in this journal and fsync'd: a read lost
between the controller's socket and the database is a runner without a result. The
database writer later releases journal positions it has stored; whatever was never
released (kill -9, power loss, a database outage) is handed back by ``open()`` on the
next start-up and written again. Database inserts are idempotent, so handing back a
read that was in fact stored is harmless; failing to hand back one that was not is not.
Every design choice below errs on that side.

On disk the journal is a directory of segments, ``segment-<20-digit counter>.jsonl``
(names sort in write order), one read per line, plus ``released.json``, a
checkpoint of the highest released position, and ``journal.lock``. A line is either a
JSON document (format 1, ``JournalEntry.to_json``: any read) or, for the usual read whose
fields are exactly those of its raw tilde-separated CTP01 line, the compact format 2
(``2<TAB>received_at<TAB>source JSON<TAB>read_timestamp<TAB>raw line<TAB>``, the last tab
there so that a line cut short is never taken for a read): reading a spilled
batch back is then a split instead of a JSON parse per read. Both are read, so journals
written before format 2 existed are recovered after an upgrade. The lines are made and
read by ``journal_lines``; this module owns the files. Each run writes new
segments only, so a torn tail left by a crash is never appended to.

All file I/O (writes, fsyncs, deletions, recovery) runs in one dedicated worker thread:
the reactor never blocks on the disk, and a single FIFO worker keeps appends in order.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from chronotrack.storage.journal_lines import EntryDecoder, JournalEntry, encode_entries, typed_value

log = Logger()

DEFAULT_SEGMENT_MAX_BYTES = 16 * 1024 * 1024

_SEGMENT_NAME = re.compile(r"^segment-(\d{20})\.jsonl$")
_CHECKPOINT_NAME = "released.json"
_LOCK_NAME = "journal.lock"

_T = TypeVar("_T")

# A log event produced in the worker thread, emitted later on the reactor thread.
_Problem = tuple[LogLevel, str, dict[str, Any]]


class JournalReactor(Protocol):
    """What the journal needs from its reactor (IReactorFromThreads, IReactorCore)."""

    def callFromThread(self, callable: Callable[..., Any], *args: Any, **kwargs: Any) -> None: ...

    def addSystemEventTrigger(
        self, phase: str, eventType: str, callable: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any: ...

    def removeSystemEventTrigger(self, triggerID: Any) -> None: ...


class JournalError(Exception):
    """The journal cannot do what was asked; the message says why and where."""


class JournalWriteError(JournalError):
    """A batch was not made durable: the caller still owns those reads and must retry."""


class JournalClosedError(JournalError):
    """The journal is not open (not yet, or no longer)."""


@dataclass(frozen=True, order=True)
class JournalPosition:
    """Where an acknowledged batch ends; release() it once that batch is stored.

    Positions order like the appends that produced them.
    """

    segment: int
    offset: int


@dataclass(frozen=True, order=True)
class _Checkpoint:
    """Released so far by one run: segments first_segment..segment-1 entirely, and
    segment ``segment`` up to byte ``offset``.

    ``first_segment`` matters: segments older than it belong to earlier runs and may
    still hold reads that were handed back by open() but are not stored yet.
    """

    first_segment: int
    segment: int
    offset: int

    def covers_segment(self, number: int) -> bool:
        return self.first_segment <= number < self.segment


@dataclass(frozen=True)
class _Recovery:
    entries: list[JournalEntry]
    segment_count: int
    problems: list[_Problem]


class _JournalFiles:
    """The on-disk side of the journal. Every method runs in the worker thread only."""

    def __init__(self, directory: Path, segment_max_bytes: int) -> None:
        self.directory = directory
        self._segment_max_bytes = segment_max_bytes
        # A fully released current segment is rotated away once it is this big, so a
        # long race with a healthy database keeps the journal small.
        self._rotate_released_bytes = max(1, segment_max_bytes // 4)
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._segment = 0  # number of the current segment (valid while _fd is set)
        self._end = 0  # bytes acknowledged in the current segment
        self._next_segment = 1
        self._first_segment = 1
        self._sealed: dict[int, int] = {}  # this run's closed segments -> acknowledged bytes
        self._recovered_paths: list[Path] = []
        self._checkpoint: _Checkpoint | None = None

    # -- start-up -----------------------------------------------------------------

    def recover(self) -> _Recovery:
        """Take the lock, hand back every unreleased entry, start a fresh segment."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise JournalError(
                f"cannot create journal directory {self.directory}: {error.strerror or error}"
            ) from error
        self._take_lock()
        try:
            return self._recover_locked()
        except BaseException:
            self.close()
            raise

    def _take_lock(self) -> None:
        """Two processes appending to one journal would corrupt it; refuse the second."""
        lock_path = self.directory / _LOCK_NAME
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise JournalError(
                f"cannot open journal lock {lock_path}: {error.strerror or error}"
            ) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise JournalError(
                    f"journal directory {self.directory} is in use by another journal "
                    f"(lock {lock_path} is held)"
                ) from error
            raise JournalError(f"cannot lock {lock_path}: {error.strerror or error}") from error
        self._lock_fd = fd

    def _recover_locked(self) -> _Recovery:
        problems: list[_Problem] = []
        checkpoint = self._read_checkpoint(problems)
        segments = self._list_segments()
        entries: list[JournalEntry] = []
        for number, path in segments:
            released_offset = 0
            if checkpoint is not None:
                if checkpoint.covers_segment(number):
                    self._unlink(path, problems)
                    continue
                if number == checkpoint.segment:
                    released_offset = checkpoint.offset
            unreleased = self._read_segment(path, released_offset, problems)
            if unreleased is None:
                continue
            if not unreleased:
                # Nothing left to store (released, unused, or only damaged lines that
                # were just logged): delete it now so such files do not pile up
                # across restarts.
                self._unlink(path, problems)
                continue
            entries.extend(unreleased)
            self._recovered_paths.append(path)
        highest = max([number for number, _ in segments], default=0)
        if checkpoint is not None:
            # Never reuse a number the checkpoint speaks about, even if that segment
            # is gone: the checkpoint would otherwise hide part of a new segment.
            highest = max(highest, checkpoint.segment)
        self._next_segment = highest + 1
        self._first_segment = self._next_segment
        self._open_segment()
        return _Recovery(entries, len(self._recovered_paths), problems)

    def _list_segments(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.iterdir():
            match = _SEGMENT_NAME.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def _read_checkpoint(self, problems: list[_Problem]) -> _Checkpoint | None:
        path = self.directory / _CHECKPOINT_NAME
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            problems.append((
                LogLevel.warn,
                "cannot read journal checkpoint {path} ({error}); released reads will be "
                "recovered again, which is harmless",
                {"path": str(path), "error": error.strerror or str(error)},
            ))
            return None
        try:
            document = json.loads(raw)
            checkpoint = _Checkpoint(
                first_segment=typed_value(document, "first_segment", int),
                segment=typed_value(document, "segment", int),
                offset=typed_value(document, "offset", int),
            )
            if not 0 < checkpoint.first_segment <= checkpoint.segment or checkpoint.offset < 0:
                raise ValueError("inconsistent checkpoint")
        except (ValueError, KeyError, TypeError) as error:
            problems.append((
                LogLevel.warn,
                "ignoring unreadable journal checkpoint {path} ({error}); released reads "
                "will be recovered again, which is harmless",
                {"path": str(path), "error": str(error)},
            ))
            return None
        return checkpoint

    def _read_segment(
        self, path: Path, released_offset: int, problems: list[_Problem]
    ) -> list[JournalEntry] | None:
        """Entries of one segment past released_offset, skipping damaged lines.

        None if the file cannot be read at all.
        """
        try:
            data = path.read_bytes()
        except OSError as error:
            # Not fatal: a hub that refuses to start collects no reads at all. The
            # file stays untouched (nothing here deletes it) for the next start.
            problems.append((
                LogLevel.error,
                "cannot read journal segment {path}, its reads are NOT recovered now; "
                "the file is kept for the next start: {error}",
                {"path": str(path), "error": error.strerror or str(error)},
            ))
            return None
        entries = []
        decode = EntryDecoder().decode
        start = 0
        line_number = 0
        while start < len(data):
            line_number += 1
            newline = data.find(b"\n", start)
            if newline == -1:
                problems.append((
                    LogLevel.warn,
                    "skipping torn last line {line_number} of journal segment {segment} "
                    "({size} bytes without a newline, left by an interrupted write)",
                    {"line_number": line_number, "segment": path.name,
                     "size": len(data) - start},
                ))
                break
            end = newline + 1
            line = data[start:newline]
            if end > released_offset and line.strip():
                try:
                    entries.append(decode(line))
                except ValueError as error:
                    problems.append((
                        LogLevel.warn,
                        "skipping corrupt line {line_number} of journal segment {segment}: "
                        "{error}",
                        {"line_number": line_number, "segment": path.name,
                         "error": str(error)},
                    ))
            start = end
        return entries

    # -- appending ------------------------------------------------------------------

    def append(self, entries: Sequence[JournalEntry]) -> tuple[JournalPosition, int]:
        """One write and one fsync for the whole batch (group commit).

        Returns where the batch ends and the byte offset where it starts in that segment.
        """
        payload = encode_entries(entries)
        if self._fd is not None and self._end > 0 and (
            self._end + len(payload) > self._segment_max_bytes
        ):
            self._seal()
        try:
            if self._fd is None:
                self._open_segment()
            assert self._fd is not None
            fd = self._fd
            try:
                _write_all(fd, payload)
                # os.write has no user-space buffer to flush: fsync is all that is left.
                os.fsync(fd)
            except OSError:
                # The file may now end in a partial line, and after a failed fsync the
                # kernel may have dropped the dirty pages while reporting the next
                # fsync as fine. Never trust this file again: the next batch goes to a
                # new segment. Cutting off the unacknowledged bytes is best effort;
                # if it fails, recovery skips a torn tail and re-sent copies of
                # complete lines are absorbed by the idempotent inserts.
                try:
                    os.ftruncate(fd, self._end)
                except OSError:
                    pass
                self._seal()
                raise
        except OSError as error:
            raise JournalWriteError(
                f"could not write {len(entries)} reads to journal {self.directory}: "
                f"{error.strerror or error}"
            ) from error
        start = self._end
        self._end += len(payload)
        return JournalPosition(self._segment, self._end), start

    def read_back(self, position: JournalPosition, start: int) -> tuple[list[JournalEntry], list[_Problem]]:
        """The entries of one acknowledged, unreleased batch, read from its segment again.

        A line damaged on disk since it was written is skipped and reported, as recovery
        at start-up would skip it.
        """
        path = self._segment_path(position.segment)
        with open(path, "rb") as segment:
            segment.seek(start)
            data = segment.read(position.offset - start)
        if len(data) != position.offset - start:
            raise OSError(errno.EIO, f"journal segment {path} is shorter than it was written")
        entries: list[JournalEntry] = []
        problems: list[_Problem] = []
        decode = EntryDecoder().decode
        # Every line the journal writes is ASCII: one decode for the batch, not one per line. A
        # damaged byte only sends this batch the slower way, where it fails its own line.
        try:
            lines: list[str] | list[bytes] = data.decode("ascii").split("\n")
        except UnicodeDecodeError:
            lines = data.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()  # after the batch's last newline
        for line in lines:
            try:
                entries.append(decode(line))
            except ValueError as error:
                problems.append((LogLevel.error,
                                 "skipping a damaged line of journal segment {segment} read back: {error}",
                                 {"segment": path.name, "error": str(error)}))
        return entries, problems

    def _open_segment(self) -> None:
        number = self._next_segment
        self._next_segment += 1  # a failed attempt never reuses its number
        path = self._segment_path(number)
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644
        )
        try:
            # The file's data is fsync'd by each append; its name must be durable too.
            _fsync_directory(self.directory)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        self._segment = number
        self._end = 0

    def _seal(self) -> None:
        """Stop writing to the current segment; it is deleted once fully released."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        self._sealed[self._segment] = self._end
        try:
            os.close(fd)
        except OSError:
            pass  # everything acknowledged was fsync'd already

    def _segment_path(self, number: int) -> Path:
        return self.directory / f"segment-{number:020d}.jsonl"

    # -- releasing ------------------------------------------------------------------

    def release(self, position: JournalPosition) -> list[_Problem]:
        """Record the release, then delete the segments it fully covers."""
        problems: list[_Problem] = []
        checkpoint = _Checkpoint(self._first_segment, position.segment, position.offset)
        try:
            self._write_checkpoint(checkpoint)
        except OSError as error:
            # Not a data-loss risk: at worst these reads are recovered again.
            problems.append((
                LogLevel.warn,
                "cannot write journal checkpoint in {directory} ({error}); released "
                "reads may be recovered again, which is harmless",
                {"directory": str(self.directory), "error": error.strerror or str(error)},
            ))
        if (
            self._fd is not None
            and self._segment == position.segment
            and position.offset >= self._end >= self._rotate_released_bytes
        ):
            self._seal()
        for number, end in sorted(self._sealed.items()):
            if JournalPosition(number, end) <= position:
                del self._sealed[number]
                self._unlink(self._segment_path(number), problems)
        return problems

    def _write_checkpoint(self, checkpoint: _Checkpoint) -> None:
        """Replace the checkpoint atomically.

        Deliberately not fsync'd: if a crash loses it, or leaves it empty, recovery
        falls back to an older or no checkpoint and hands back reads that were stored,
        which the idempotent inserts absorb. It can never claim more than was released.
        """
        if self._checkpoint is not None and checkpoint <= self._checkpoint:
            return
        path = self.directory / _CHECKPOINT_NAME
        temporary = self.directory / (_CHECKPOINT_NAME + ".tmp")
        document = {
            "first_segment": checkpoint.first_segment,
            "segment": checkpoint.segment,
            "offset": checkpoint.offset,
        }
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            _write_all(fd, json.dumps(document).encode("ascii") + b"\n")
        finally:
            os.close(fd)
        os.replace(temporary, path)
        self._checkpoint = checkpoint

    def delete_recovered(self) -> list[_Problem]:
        problems: list[_Problem] = []
        paths, self._recovered_paths = self._recovered_paths, []
        for path in paths:
            self._unlink(path, problems)
        return problems

    def _unlink(self, path: Path, problems: list[_Problem]) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            problems.append((
                LogLevel.warn,
                "cannot delete released journal segment {path}: {error}",
                {"path": str(path), "error": error.strerror or str(error)},
            ))

    # -- closing --------------------------------------------------------------------

    def close(self) -> None:
        """Every append was fsync'd when acknowledged; just let go of the files."""
        self._seal()
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked (a nearly full disk); finish or raise."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ReadJournal:
    """The journal as the reactor sees it: every method returns at once.

    Lifecycle: ``open()`` (hand back what earlier runs left), then ``append()`` and
    ``release()`` as reads arrive and are stored, then ``close()``.
    ``pending_count`` counts reads journaled but not yet released, including those
    handed back by ``open()`` until ``release_recovered()``.
    """

    def __init__(
        self,
        directory: Path,
        reactor: JournalReactor,
        segment_max_bytes: int = DEFAULT_SEGMENT_MAX_BYTES,
    ) -> None:
        if segment_max_bytes <= 0:
            raise ValueError("segment_max_bytes must be positive")
        self.directory = Path(directory)
        self._reactor = reactor
        self._files = _JournalFiles(self.directory, segment_max_bytes)
        # Exactly one worker: appends must reach the disk in the order they were made.
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name=f"journal {self.directory}")
        self._state = "new"  # new -> opening -> open -> closing -> closed
        self._shutdown_trigger: Any = None
        self._unreleased: deque[tuple[JournalPosition, int]] = deque()
        self._starts: dict[JournalPosition, int] = {}  # unreleased batch -> its first byte
        self._appended_pending = 0
        self._recovered_pending = 0
        self._released: JournalPosition | None = None
        self._last_position = JournalPosition(0, 0)
        self._close_waiters: list[Deferred[None]] = []

    @property
    def pending_count(self) -> int:
        """Reads safe on disk but not yet known to be in the database."""
        return self._appended_pending + self._recovered_pending

    def open(self) -> Deferred[list[JournalEntry]]:
        """Start the worker and hand back every entry earlier runs never released."""
        if self._state != "new":
            return fail(JournalError(f"journal {self.directory} was already opened"))
        self._state = "opening"
        self._pool.start()
        # Backstop for a forgotten close(): the worker is not a daemon thread and would
        # keep the process alive. "during" runs after every "before" trigger (services
        # stopping, which close the journal properly), so it never closes the journal
        # under a store that is still flushing.
        self._shutdown_trigger = self._reactor.addSystemEventTrigger(
            "during", "shutdown", self._stop_at_shutdown
        )
        d = self._in_worker(self._files.recover)
        d.addCallbacks(self._opened, self._open_failed)
        return d

    def _opened(self, recovery: _Recovery) -> list[JournalEntry]:
        self._log_problems(recovery.problems)
        self._recovered_pending = len(recovery.entries)
        if self._state == "opening":
            self._state = "open"
        log.info(
            "journal {directory} opened: {count} unreleased reads recovered from "
            "{segments} earlier segments",
            directory=str(self.directory),
            count=len(recovery.entries),
            segments=recovery.segment_count,
        )
        return recovery.entries

    def _open_failed(self, failure: Failure) -> Failure:
        log.error(
            "cannot open journal {directory}: {error}",
            directory=str(self.directory),
            error=failure.getErrorMessage(),
        )
        if self._state == "opening":
            self._state = "closing"
            self._stop_worker()
        return failure

    def append(self, entries: Sequence[JournalEntry]) -> Deferred[JournalPosition]:
        """Journal one batch; fires with its position once it is fsync'd.

        Fails with JournalWriteError if the disk refused it: the reads are then not
        received and the caller must keep them and retry.
        """
        if self._state != "open":
            return fail(JournalClosedError(
                f"journal {self.directory} is {self._state}, cannot append"
            ))
        batch = tuple(entries)
        if not batch:
            return succeed(self._last_position)
        d = self._in_worker(self._files.append, batch)

        def appended(where: tuple[JournalPosition, int]) -> JournalPosition:
            position, start = where
            self._starts[position] = start
            self._unreleased.append((position, len(batch)))
            self._appended_pending += len(batch)
            self._last_position = max(self._last_position, position)
            return position

        def append_failed(failure: Failure) -> Failure:
            log.error(
                "journal append of {count} reads failed, the caller keeps them: {error}",
                count=len(batch),
                error=failure.getErrorMessage(),
            )
            return failure

        d.addCallbacks(appended, append_failed)
        return d

    def release(self, position: JournalPosition) -> Deferred[None]:
        """Everything appended up to and including ``position`` is in the database.

        Never fails: a release that cannot be recorded only means those reads are
        recovered again later, which is harmless; problems are logged.
        """
        if self._state != "open" or (
            self._released is not None and position <= self._released
        ):
            return succeed(None)
        self._released = position
        while self._unreleased and self._unreleased[0][0] <= position:
            released, count = self._unreleased.popleft()
            self._starts.pop(released, None)
            self._appended_pending -= count
        return self._run_housekeeping(self._files.release, position)

    def read_back(self, position: JournalPosition) -> Deferred[list[JournalEntry]]:
        """The entries of the unreleased batch that ``append`` acknowledged at ``position``.

        Lets the store keep only a bounded number of waiting reads in memory: the rest
        stay on disk, where they are safe anyway, until the database can take them.
        """
        start = self._starts.get(position)
        if self._state != "open" or start is None:
            return fail(JournalError(f"no unreleased batch ends at {position} in {self.directory}"))
        d = self._in_worker(self._files.read_back, position, start)

        def log_problems(result: tuple[list[JournalEntry], list[_Problem]]) -> list[JournalEntry]:
            entries, problems = result
            self._log_problems(problems)
            return entries

        return d.addCallback(log_problems)

    def release_recovered(self) -> Deferred[None]:
        """The entries handed back by open() are stored: delete their old segments."""
        if self._state != "open":
            return succeed(None)
        self._recovered_pending = 0
        return self._run_housekeeping(self._files.delete_recovered)

    def close(self) -> Deferred[None]:
        """Let pending appends finish, then close the files and stop the worker."""
        d: Deferred[None] = Deferred()
        if self._state in ("new", "closed"):
            self._state = "closed"
            d.callback(None)
            return d
        self._close_waiters.append(d)
        if self._state != "closing":
            self._state = "closing"
            closed = self._in_worker(self._files.close)
            closed.addErrback(
                lambda failure: log.failure("closing journal {directory} failed",
                                            failure, directory=str(self.directory))
            )
            closed.addCallback(lambda _: self._stop_worker())
        return d

    def _stop_at_shutdown(self) -> None:
        self._shutdown_trigger = None  # it is firing now; it can no longer be removed
        if self._state == "closed":
            return
        log.warn("journal {directory} was not closed; finishing its pending writes",
                 directory=str(self.directory))
        # Joining the worker blocks, which is fine at this point of shutdown (Twisted
        # stops its own thread pool the same way): queued appends still get fsync'd.
        self._pool.stop()
        self._files.close()  # safe here: the worker thread is gone
        self._state = "closed"

    def _stop_worker(self) -> None:
        if self._state != "closed":  # not already stopped at reactor shutdown
            # The worker queue is empty by now: joining the idle thread is immediate.
            self._pool.stop()
            self._state = "closed"
        if self._shutdown_trigger is not None:
            trigger, self._shutdown_trigger = self._shutdown_trigger, None
            self._reactor.removeSystemEventTrigger(trigger)
        waiters, self._close_waiters = self._close_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _run_housekeeping(
        self, work: Callable[..., list[_Problem]], *args: Any
    ) -> Deferred[None]:
        d = self._in_worker(work, *args)
        d.addCallback(self._log_problems)
        d.addErrback(
            lambda failure: log.failure("journal housekeeping in {directory} failed",
                                        failure, directory=str(self.directory))
        )
        return d

    def _log_problems(self, problems: list[_Problem]) -> None:
        for level, log_format, fields in problems:
            log.emit(level, log_format, **fields)

    def _in_worker(self, work: Callable[..., _T], *args: Any) -> Deferred[_T]:
        return deferToThreadPool(self._reactor, self._pool, work, *args)
