"""The results freshness window end to end: a real PostgreSQL, the display's resource served on a
real loopback port and asked over HTTP, reads inserted with SQL as a collector would while a
phone polls ``/api/results``. The window's clock is a ``task.Clock`` (the rest runs on the real
reactor), so "within the window" is counted in its seconds, never measured."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.web.server import Site

from tests.test_web_results import display, insert_read, race  # noqa: F401 (fixtures)
from tests.waiting import wait_until

WINDOW = 1.0
POLL = 0.25  # fake seconds between a phone's questions


@pytest.fixture
def served(display):  # noqa: F811
    """(base URL, fake clock) of the display on a real port, with a freshness window of WINDOW."""
    clock = Clock()
    clock.advance(1_700_000_000)
    display.configure_results(WINDOW)
    display.results_cache.clock = clock.seconds
    port = reactor.listenTCP(0, Site(display.resource()), interface="127.0.0.1")
    yield f"http://127.0.0.1:{port.getHost().port}", clock
    port.stopListening()


async def get_results(base: str, who) -> tuple[bytes, dict, list[str] | None]:
    response = await treq.get(base + "/api/results", cookies=who.cookies, headers={"Accept-Encoding": "identity"})
    assert response.code == 200
    body = await treq.content(response)
    return body, json.loads(body), response.headers.getRawHeaders("age")


@pytest_twisted.ensureDeferred
async def test_inside_the_window_the_same_bytes_are_served_and_after_it_the_new_read(pg_dsn, display, race,  # noqa: F811
                                                                                   served):
    base, clock = served
    cache = display.results_cache
    first_bytes, first, age = await get_results(base, race.acme)
    as_of = first["results_as_of"]
    assert as_of["read_id"] == first["event"]["last_read_id"] > 0 and as_of["freshness_seconds"] == WINDOW
    assert as_of["time"].startswith("2023-11-14T22:13:20") and age == ["0"]
    applied = cache.live_reads_applied
    new_id = insert_read(pg_dsn, race.session, "888", "finish", "08:50:00.000")
    await wait_until(lambda: cache.live_reads_applied > applied)
    clock.advance(WINDOW / 2)
    same_bytes, _, _ = await get_results(base, race.acme)
    assert same_bytes == first_bytes  # the answer of the window, not rebuilt
    clock.advance(WINDOW / 2)
    _, fresh, age = await get_results(base, race.acme)
    assert fresh["results"][-1]["bib"] == "888" and fresh["results_as_of"]["read_id"] == new_id
    assert fresh["event"]["last_read_id"] == new_id and age == ["0"]
    assert cache.full_builds == 1


@pytest_twisted.ensureDeferred
async def test_every_read_inserted_while_a_phone_polls_appears_within_the_window(pg_dsn, display, race,  # noqa: F811
                                                                                served):
    base, clock = served
    await get_results(base, race.acme)
    inserted: dict[str, float] = {}  # bib -> fake time it was stored
    seen: dict[str, float] = {}  # bib -> fake time an answer first showed it
    for poll in range(24):
        if poll % 3 == 0 and len(inserted) < 6:
            bib = str(900 + len(inserted))
            applied = display.results_cache.live_reads_applied
            insert_read(pg_dsn, race.session, bib, "finish", f"08:5{len(inserted)}:00.000")
            inserted[bib] = clock.seconds()
            await wait_until(lambda: display.results_cache.live_reads_applied > applied)
        _, body, age = await get_results(base, race.acme)
        assert age is not None and int(age[0]) <= WINDOW
        for row in body["results"]:
            seen.setdefault(row["bib"], clock.seconds())
        clock.advance(POLL)
    assert set(inserted) <= set(seen)  # none lost
    assert all(seen[bib] - inserted[bib] <= WINDOW for bib in inserted)
    assert any(seen[bib] > inserted[bib] for bib in inserted)  # some did wait for the window
