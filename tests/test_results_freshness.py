"""The freshness window of the results cache (web/results_cache.py), on a fake clock.

Once an answer has been made, new reads wait until ``freshness`` seconds have passed: inside
the window the same answer (the same object, so the same bytes) is served and nothing is
rebuilt; the first request after it takes every waiting read in and rebuilds once; a read is
never lost; a quiet event takes a read in at once; a roster or settings change rebuilds at
once. Pure: the database queries are replaced by an in-memory event, time by ``task.Clock``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock

from chronotrack.reads import TagRead
from web import results_queries
from web.queries import Event
from web.results_cache import EventResults, ResultsCache
from web.results_queries import ReadPage, StoredSettings, scored_read
from web.roster import Participant

GUN = datetime(2024, 5, 4, 8, tzinfo=timezone.utc)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
EVENT = Event(1, 1, "Acme", "10k", "Acme 10K", "slug", False)
ROSTER = [Participant(str(bib), "Runner", f"Number{bib}", 30 + bib % 20, "FM"[bib % 2]) for bib in range(1, 40)]


def finish(bib: int, seconds: float) -> TagRead:
    return scored_read("finish", str(bib), "", GUN + timedelta(seconds=seconds), 1, "r", 1)


def race_so_far() -> list[tuple[int, TagRead]]:
    reads = [scored_read("finish", "guntime", "", GUN, 0, "r", 0)]
    reads += [finish(bib, 1200 + bib) for bib in range(1, 6)]
    return list(enumerate(reads, start=1))


def answer(entry: EventResults) -> bytes:
    """What the API memoizes: the whole table's JSON, made once per window."""
    return entry.memo("body", lambda: json.dumps([row.bib for row in entry.rows()]).encode())


def bibs(body: bytes) -> list[str]:
    return json.loads(body)


def new_entry(clock: Clock, freshness: float = 1.0) -> EventResults:
    return EventResults(EVENT, StoredSettings(), ROSTER, (), clock.seconds, freshness).build(race_so_far())


def test_inside_the_window_the_same_answer_is_served_and_nothing_is_rebuilt():
    clock = Clock()
    entry = new_entry(clock)
    first = answer(entry)
    made = entry.answers_made
    for read_id, seconds in ((7, 0.2), (8, 0.5), (9, 0.999)):
        clock.advance(seconds - clock.seconds())
        assert entry.apply(read_id, finish(read_id + 10, 1300 + read_id)) is True
        entry.refresh()  # what every request does
        assert answer(entry) is first
    assert entry.answers_made == made  # no rows, no JSON made again
    assert entry.pending_reads == 3 and entry.as_of_id == 6 and entry.high_id == 9


def test_after_the_window_the_next_request_rebuilds_once_with_every_waiting_read():
    clock = Clock()
    entry = new_entry(clock)
    first = answer(entry)
    clock.advance(0.5)
    for read_id in (7, 8, 9):
        entry.apply(read_id, finish(read_id + 10, 1300 + read_id))
    clock.advance(0.5)  # one second after the answer was made
    entry.refresh()
    made = entry.answers_made
    second = answer(entry)
    assert second is not first and entry.answers_made == made + 2  # the rows and the body, once
    assert bibs(second) == bibs(first) + ["17", "18", "19"]
    assert answer(entry) is second and entry.answers_made == made + 2  # everyone after shares it
    assert entry.pending_reads == 0 and entry.as_of_id == 9


def test_a_read_after_the_window_goes_in_with_the_waiting_ones_even_before_a_request():
    """The live feed keeps the waiting list short: past the window, the next read takes them all in."""
    clock = Clock()
    entry = new_entry(clock)
    answer(entry)
    entry.apply(7, finish(17, 1307))
    clock.advance(1.0)
    entry.apply(8, finish(18, 1308))
    assert entry.pending_reads == 0 and entry.as_of_id == 8
    assert bibs(answer(entry))[-2:] == ["17", "18"]


def test_a_quiet_event_takes_a_read_in_at_once_when_nothing_was_answered_since():
    clock = Clock()
    entry = new_entry(clock)
    entry.apply(7, finish(17, 1307))
    assert entry.pending_reads == 0 and bibs(answer(entry))[-1] == "17"


def test_no_read_is_lost_or_counted_twice_while_it_waits():
    clock = Clock()
    entry = new_entry(clock)
    answer(entry)
    late = [(read_id, finish(read_id, 1100 + read_id)) for read_id in range(20, 30)]  # faster than everyone
    for read_id, read in late + late[:4]:  # the feed and the per-request catch-up both deliver some
        entry.apply(read_id, read)
    assert entry.pending_reads == len(late)
    clock.advance(2.0)
    entry.refresh()
    assert bibs(answer(entry)) == [str(bib) for bib in range(20, 30)] + ["1", "2", "3", "4", "5"]
    assert entry.finisher_count() == 15 and entry.read_count == len(race_so_far()) + len(late)


def test_a_window_of_zero_takes_every_read_in_at_once():
    clock = Clock()
    entry = new_entry(clock, freshness=0)
    first = answer(entry)
    entry.apply(7, finish(17, 1307))
    assert answer(entry) is not first and bibs(answer(entry))[-1] == "17"


def test_every_answer_of_one_window_is_of_the_same_read():
    """A question first asked inside the window is answered from the same race as the others."""
    clock = Clock()
    entry = new_entry(clock)
    answer(entry)
    entry.apply(7, finish(17, 1307))
    assert [row.bib for row in entry.first_rows(10)] == ["1", "2", "3", "4", "5"]
    assert entry.finisher_count() == 5 and entry.unknown_tags() == []


def test_up_to_date_puts_the_waiting_reads_in_the_race_and_keeps_the_answers_for_their_window():
    """What a finish screen asks: the race with every read, while the pages keep their answer."""
    clock = Clock()
    entry = new_entry(clock)
    first = answer(entry)
    entry.apply(7, finish(17, 1307))
    assert entry.pending_reads == 1 and entry.race.row("17") is None
    assert ensureDeferred(entry.up_to_date()).called  # no answer being made from the race: at once
    assert entry.pending_reads == 0 and entry.race.row("17") is not None and entry.as_of_id == 7
    clock.advance(0.5)
    entry.refresh()
    assert answer(entry) is first  # still inside the window
    clock.advance(0.5)
    entry.refresh()  # the window closed: the answers go, though no read waits any more
    assert bibs(answer(entry))[-1] == "17"


# Through the cache: what a request does


class FakeEvent:
    """The queries ``ResultsCache`` makes, answered from memory; ``version`` is the roster's and
    settings' version, ``reads`` every read of the event."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.version: tuple = (1, None)
        self.reads = race_so_far()
        self.roster = list(ROSTER)

        async def event_version(database, event):
            return self.version

        async def stored_settings(database, event):
            return StoredSettings()

        async def event_roster(database, event):
            return self.roster

        async def event_sessions(database, event):
            return [1]

        async def event_read_page(database, event, sessions, after_id, size):
            groups: dict[tuple[str, str], list[tuple[int, TagRead]]] = {}
            for read_id, read in self.reads:
                if read_id > after_id:
                    groups.setdefault((read.location_name, read.tag_code), []).append((read_id, read))
            packed = []
            for (location, tag), reads in groups.items():
                times = sorted(read.read_timestamp for _, read in reads)
                guns = times if tag == "guntime" else None
                micros = b"".join(((moment - EPOCH) // timedelta(microseconds=1)).to_bytes(8, "big", signed=True)
                                  for moment in times)
                packed.append((location, tag, reads[0][0], len(reads), None if guns else micros, guns))
            last = max([read_id for read_id, _ in self.reads if read_id > after_id], default=after_id)
            return ReadPage(packed, last, sum(len(reads) for reads in groups.values()))

        async def read_ids_above(database, event, sessions, above, through):
            return [read_id for read_id, _ in self.reads if above < read_id <= through]

        async def event_reads(database, event, after_id=0):
            return [(read_id, read) for read_id, read in self.reads if read_id > after_id]

        for name, function in locals().items():
            if callable(function) and hasattr(results_queries, name):
                monkeypatch.setattr(results_queries, name, function)

    def add(self, read: TagRead) -> int:
        read_id = self.reads[-1][0] + 1
        self.reads.append((read_id, read))
        return read_id


@pytest.fixture
def fake_event(monkeypatch):
    return FakeEvent(monkeypatch)


@pytest_twisted.ensureDeferred
async def test_requests_inside_the_window_share_one_answer_and_the_first_after_it_rebuilds(fake_event):
    clock = Clock()
    cache = ResultsCache(clock, freshness=1.0)
    entry = await cache.results(None, EVENT)
    first = answer(entry)
    fake_event.add(finish(17, 1307))  # stored; the request's catch-up finds it
    clock.advance(0.9)
    entry = await cache.results(None, EVENT)
    made = entry.answers_made
    assert answer(entry) is first and entry.answers_made == made and entry.pending_reads == 1
    clock.advance(0.1)
    entry = await cache.results(None, EVENT)
    assert bibs(answer(entry))[-1] == "17" and entry.answers_made == made + 2
    assert cache.full_builds == 1


@pytest_twisted.ensureDeferred
async def test_a_roster_or_settings_change_rebuilds_at_once_inside_the_window(fake_event):
    clock = Clock()
    cache = ResultsCache(clock, freshness=60.0)
    entry = await cache.results(None, EVENT)
    answer(entry)
    fake_event.add(finish(17, 1307))
    fake_event.version = (2, None)  # a roster import (or a settings change from another process)
    clock.advance(0.1)
    rebuilt = await cache.results(None, EVENT)
    assert rebuilt is not entry and cache.full_builds == 2
    assert bibs(answer(rebuilt))[-1] == "17" and rebuilt.pending_reads == 0
    fake_event.add(finish(18, 1308))
    cache.forget(EVENT.id)  # the settings form
    clock.advance(0.1)
    assert bibs(answer(await cache.results(None, EVENT)))[-1] == "18" and cache.full_builds == 3


@pytest_twisted.ensureDeferred
async def test_the_window_follows_the_setting_of_the_cache(fake_event):
    clock = Clock()
    cache = ResultsCache(clock, freshness=5.0)
    entry = await cache.results(None, EVENT)
    answer(entry)
    fake_event.add(finish(17, 1307))
    clock.advance(1.0)
    assert bibs(answer(await cache.results(None, EVENT)))[-1] == "5"
    cache.freshness = 1.0  # --results-freshness, as the services set it
    assert bibs(answer(await cache.results(None, EVENT)))[-1] == "17"


# Made off the reactor


class HeldThread:
    """Stands for the thread pool: runs nothing until ``finish()``, so the test sees the meanwhile."""

    def __init__(self) -> None:
        self.runs: list[tuple[Callable[[], Any], Deferred]] = []

    def __call__(self, work: Callable[[], Any]) -> Deferred:
        done: Deferred = Deferred()
        self.runs.append((work, done))
        return done

    def finish(self) -> None:
        """Run what was asked so far (what those runs' ends ask for waits for the next call)."""
        runs, self.runs = self.runs, []
        for work, done in runs:
            done.callback(work())


def test_while_a_thread_makes_an_answer_the_race_takes_no_read_in_and_askers_share_it():
    clock = Clock()
    entry = new_entry(clock)
    thread = HeldThread()
    make = lambda: json.dumps([row.bib for row in entry.rows()]).encode()  # noqa: E731
    first, second = entry.memo_off_reactor("body", make, thread), entry.memo_off_reactor("body", make, thread)
    gone = entry.memo_off_reactor("body", make, thread)
    gone.cancel()  # that phone went away: the others still get the answer
    gone.addErrback(lambda failure: None)
    assert len(thread.runs) == 1 and not first.called
    clock.advance(5.0)  # long past the window
    entry.apply(7, finish(17, 1307))
    entry.refresh()
    assert entry.pending_reads == 1 and entry.as_of_id == 6  # the thread's race holds still
    thread.finish()
    answers = [first.result, second.result]
    assert answers[0] is answers[1] and bibs(answers[0]) == ["1", "2", "3", "4", "5"]
    assert entry.answers_made == 2  # the rows and the body, once for all three
    assert entry.pending_reads == 0 and bibs(answer(entry))[-1] == "17"  # the window had closed: in at once


def test_a_new_question_after_the_window_waits_for_the_reads_instead_of_holding_them_back():
    """Questions that keep coming while answers are made cannot keep the waiting reads out."""
    clock = Clock()
    entry = new_entry(clock)
    thread = HeldThread()
    whole = entry.memo_off_reactor("whole", lambda: [row.bib for row in entry.race.rows()], thread)
    entry.apply(7, finish(17, 1307))
    clock.advance(1.0)
    first_five = entry.memo_off_reactor("first five", lambda: [row.bib for row in entry.race.rows(5)], thread)
    assert len(thread.runs) == 1 and entry.pending_reads == 1  # it waits; the thread's race holds still
    thread.finish()
    assert whole.result == ["1", "2", "3", "4", "5"]  # made before the read went in
    assert entry.pending_reads == 0 and len(thread.runs) == 1  # the read went in, then its turn came
    thread.finish()
    assert first_five.result == ["1", "2", "3", "4", "5"] and entry.as_of_id == 7
    assert entry.finisher_count() == 6


@pytest.mark.parametrize("count", [0, 1, 249, 250, 251, 1234])
def test_an_answer_made_in_steps_is_the_bytes_of_one_json_dumps(count):
    from web.results_pages import json_in_steps, row_json

    entry = EventResults(EVENT, StoredSettings(), ROSTER, ()).build(
        [(1, scored_read("finish", "guntime", "", GUN, 0, "r", 0))]
        + [(2 + n, finish(n % 39 + 1 if n < 39 else 1000 + n, 1200 + n)) for n in range(count)])
    rows = entry.rows()
    tricky = {"name": 'a "results": [] b', "division": '"results": [', "text": "Zoë \u2028"}
    payload = {"success": True, "event": tricky, "count": len(rows), "results": [], "unknown_tags": ["x"]}
    steps = json_in_steps(payload, "results", rows)
    pieces = 0
    while True:
        try:
            next(steps)
            pieces += 1
        except StopIteration as done:
            made = done.value
            break
    assert made == json.dumps({**payload, "results": [row_json(row) for row in rows]}).encode()
    assert pieces == -(-len(rows) // 250)


# The setting


def test_results_freshness_reaches_the_display_from_the_command_line_and_the_config_file(monkeypatch, tmp_path):
    from twisted.internet.testing import MemoryReactorClock
    from twisted.python import usage

    from tests.test_web_tap import parse
    from web.tap import makeService

    assert parse([], monkeypatch, tmp_path).settings["results_freshness"] == 1.0
    options = parse(["--web", "tcp:0:interface=127.0.0.1", "--dsn", "host=/nowhere dbname=x",
                     "--results-freshness", "2.5"], monkeypatch, tmp_path)
    web = list(makeService(options, reactor=MemoryReactorClock()))[1]
    assert web.display_app.results_cache.freshness == 2.5
    (tmp_path / "chronotrack.ini").write_text("[chronotrack]\nresults-freshness = 0\n")
    assert parse([], monkeypatch, tmp_path).settings["results_freshness"] == 0.0
    with pytest.raises(usage.UsageError, match="results-freshness"):
        parse(["--results-freshness", "-1"], monkeypatch, tmp_path)


def test_the_collector_hands_results_freshness_to_its_web_layer(tmp_path):
    from twisted.internet.testing import MemoryReactorClock

    from chronotrack.tap import Options, makeService

    options = Options()
    options.parseOptions(["--data-dir", str(tmp_path), "--dsn", "host=/nowhere dbname=x", "--status", "none",
                          "--web", "tcp:0:interface=127.0.0.1", "--results-freshness", "3"])
    web = [service for service in makeService(options, reactor=MemoryReactorClock()) if hasattr(service, "display_app")]
    assert web[0].display_app.results_cache.freshness == 3.0


@pytest_twisted.ensureDeferred
async def test_a_big_answer_is_made_in_steps_with_the_reactors_other_work_between(monkeypatch):
    """The controllers' reads and the streams are served between the steps of making a big answer."""
    from twisted.internet import reactor

    from web import results_cache

    monkeypatch.setattr(results_cache, "STEP_SECONDS", 0)  # one step per turn of the reactor
    cache = ResultsCache(reactor)
    other_work: list[str] = []
    seen_at_each_step: list[int] = []

    def steps():
        for step in range(4):
            seen_at_each_step.append(len(other_work))
            if step == 0:  # a read arrives while the answer is being made
                reactor.callLater(0, other_work.append, "a read stored")
            yield None
        return "made"

    assert await cache.in_steps(steps) == "made"
    assert seen_at_each_step == [0, 1, 1, 1]  # served before the second step, not after the last


def test_an_answer_not_kept_is_made_for_its_asker_alone_while_the_race_holds_still():
    """A search: made as safely as a kept answer (no read goes in meanwhile), then forgotten."""
    clock = Clock()
    entry = new_entry(clock)
    thread = HeldThread()
    make = lambda: [row.bib for row in entry.race.rows()]  # noqa: E731
    one, other = (entry.memo_off_reactor(None, make, thread, keep=False) for _ in range(2))
    assert len(thread.runs) == 2  # not shared
    clock.advance(5.0)
    entry.apply(7, finish(17, 1307))
    assert entry.pending_reads == 1
    thread.finish()
    assert one.result == other.result == ["1", "2", "3", "4", "5"] and entry.answers_made == 0
    assert entry.pending_reads == 0
