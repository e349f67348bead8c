"""Race times: elapsed time truncated to the hundredth, and how a runner's reads become times.

Truncation, not rounding: timing software (RunScore, Race Director, ChronoTrack's own)
never gives a runner a hundredth they did not run, so 17:03.418 is ``0:17:03.41``. The
elapsed time is truncated, not each timestamp: ``finish - gun`` is computed exactly from
the microsecond timestamps and then cut to the hundredth.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Sequence

HUNDREDTH = timedelta(milliseconds=10)
MICROSECONDS_PER_HUNDREDTH = 10_000


def hundredths(elapsed: timedelta) -> int:
    """Whole hundredths in ``elapsed``, truncated (exact integer arithmetic, no floats)."""
    if elapsed < timedelta(0):
        raise ValueError(f"a race time cannot be negative: {elapsed}")
    return elapsed // HUNDREDTH


def seconds(hundredths_count: int) -> float:
    """Seconds as a number for JSON: the float nearest to the exact hundredths."""
    return hundredths_count / 100


def format_time(hundredths_count: int) -> str:
    """``H:MM:SS.ss`` as results sheets print it; hours are not padded and may pass 24."""
    if hundredths_count < 0:
        raise ValueError(f"a race time cannot be negative: {hundredths_count}")
    whole_seconds, fraction = divmod(hundredths_count, 100)
    minutes, second = divmod(whole_seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}.{fraction:02d}"


@dataclass(frozen=True, slots=True)  # tens of thousands per big race: no __dict__ each
class RunnerTimes:
    """One finisher's times, and what the timer should know about their reads."""

    finish: datetime  # the first finish read that counts
    gun_hundredths: int  # finish - gun
    chip_hundredths: int  # finish - start-mat crossing (= gun time without one)
    started_on_mat: bool  # False: no start read, chip time is the gun time
    duplicate_reads: int  # further finish reads within the duplicate window
    late_reads: int  # finish reads after the window: not a new finish in a one-lap race


def runner_times(
    finish_reads: Sequence[datetime],
    start_reads: Sequence[datetime],
    gun: datetime,
    duplicate_window: timedelta,
    minimum_time: timedelta = timedelta(0),
) -> RunnerTimes | None:
    """A runner's times from their sorted reads, or None if they have not finished.

    - A finish read counts only after the gun and at least ``minimum_time`` after it
      (earlier reads are mat tests, or the runner crossing a finish mat at the start).
    - The first counting read is the finish; reads up to ``duplicate_window`` after it are
      duplicates (a runner standing on the mat); later ones are "late" and ignored.
    - The start is the runner's last start-mat read before their finish, as results
      software does by default; start reads before the gun are warm-ups, not starts.
    """
    first_index = _first_counting_index(finish_reads, gun, minimum_time)
    if first_index == len(finish_reads):
        return None
    finish = finish_reads[first_index]
    window_end = bisect_right(finish_reads, finish + duplicate_window)
    duplicates = window_end - first_index - 1
    late = len(finish_reads) - window_end
    start_index = bisect_left(start_reads, finish) - 1
    started_on_mat = start_index >= 0 and start_reads[start_index] >= gun
    start = start_reads[start_index] if started_on_mat else gun
    return RunnerTimes(
        finish=finish,
        gun_hundredths=hundredths(finish - gun),
        chip_hundredths=hundredths(finish - start),
        started_on_mat=started_on_mat,
        duplicate_reads=duplicates,
        late_reads=late,
    )


def runner_times_micros(
    finish_reads: Sequence[int],
    start_reads: Sequence[int],
    gun: int,
    duplicate_window: int,
    minimum_time: int,
    as_datetime: Callable[[int], datetime],
) -> RunnerTimes | None:
    """``runner_times`` with every moment as whole microseconds since the epoch (the read log's
    own form): the same rules and the same truncated hundredths, without making a ``datetime``
    for each read a binary search touches. ``as_datetime`` turns the finish back into one."""
    if minimum_time > 0:
        first_index = bisect_left(finish_reads, gun + minimum_time)
    else:
        first_index = bisect_right(finish_reads, gun)
    if first_index == len(finish_reads):
        return None
    finish = finish_reads[first_index]
    window_end = bisect_right(finish_reads, finish + duplicate_window)
    start_index = bisect_left(start_reads, finish) - 1
    started_on_mat = start_index >= 0 and start_reads[start_index] >= gun
    start = start_reads[start_index] if started_on_mat else gun
    return RunnerTimes(
        finish=as_datetime(finish),
        gun_hundredths=(finish - gun) // MICROSECONDS_PER_HUNDREDTH,
        chip_hundredths=(finish - start) // MICROSECONDS_PER_HUNDREDTH,
        started_on_mat=started_on_mat,
        duplicate_reads=window_end - first_index - 1,
        late_reads=len(finish_reads) - window_end,
    )


def counts_as_finish(read_time: datetime, gun: datetime, minimum_time: timedelta) -> bool:
    """Whether a finish read is late enough after the gun to be a finish at all."""
    elapsed = read_time - gun
    return elapsed > timedelta(0) and elapsed >= minimum_time


def _first_counting_index(finish_reads: Sequence[datetime], gun: datetime, minimum_time: timedelta) -> int:
    if minimum_time > timedelta(0):
        return bisect_left(finish_reads, gun + minimum_time)
    return bisect_right(finish_reads, gun)
