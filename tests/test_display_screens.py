"""Finish screens against a real PostgreSQL (StubTreq in memory): the operator's screen, branding
and message forms (CSRF, scoped to the partner, bad input named), the public screen page and its
messages feed with an ETag, the per-event feed that builds each runner object once, and the
announcer's projected arrivals. The race is the one of tests/test_web_results.py; expected times
are worked out here from the clock times."""

from __future__ import annotations

import html as html_lib
import json
import re

import pytest_twisted

from chronotrack.display.layouts import validate_layout
from tests.postgres import query
from tests.test_web_access import fetch
from tests.test_web_results import (CSRF, GUN, at, display, insert_read, insert_runner, race,  # noqa: F401
                                    race_time, stub)
from tests.waiting import wait_until
from web import queries
from web.display_feed import ScreenView

CONFIG = re.compile(r"data-config='([^']*)'")


async def add_screen(stub, who, event: int, csrf: str | None = CSRF, **fields):
    data = {"name": "Finish big screen", "hold_seconds": "0.5", "time_kind": "gun", "grid_threshold": "6", **fields}
    if csrf is not None:
        data["csrf_token"] = csrf
    return await fetch(stub, "POST", f"/events/{event}/screens", data=data, cookies=who.cookies)


def screen_code(pg_dsn, name: str = "Finish big screen") -> str:
    return query(pg_dsn, "SELECT public_code FROM display_screens WHERE name = %s", (name,))[0][0]


def big_name_layout(background: str) -> dict:
    return validate_layout({"version": 1, "aspect": "16:9", "background": {"color": background, "image_id": None},
                            "font": "sans", "fields": [{"kind": "name", "x": 5, "y": 10, "w": 90, "h": 30}]})


def insert_layout(pg_dsn, event_id: int, name: str, layout: dict) -> int:
    """A saved designer template of ``event_id`` (its partner's), straight into the table."""
    return query(pg_dsn, """
        INSERT INTO display_layouts (timing_partner_id, timing_event_id, name, layout)
        SELECT timing_partner_id, id, %s, %s::jsonb FROM timing_events WHERE id = %s RETURNING id""",
                 (name, json.dumps(layout), event_id))[0][0]


def page_config(html: str) -> dict:
    return json.loads(html_lib.unescape(CONFIG.search(html).group(1)))


@pytest_twisted.ensureDeferred
async def test_an_operator_adds_a_screen_and_its_public_page_shows_recent_finishers_with_gun_times(pg_dsn, stub, race):
    response, _ = await add_screen(stub, race.acme, race.event)
    assert response.code == 303
    code = screen_code(pg_dsn)
    response, html = await fetch(stub, "GET", f"/screens?event={race.event}", cookies=race.acme.cookies)
    assert response.code == 200 and f"/screen/{code}" in html

    response, html = await fetch(stub, "GET", f"/screen/{code}")  # anonymous: the code is the link
    assert response.code == 200
    config = page_config(html)
    assert config["hold_ms"] == 500 and config["grid_threshold"] == 6 and config["time_kind"] == "gun"
    recent = config["recent"]  # newest first, finish reads only (no start or split), duplicates once
    assert [runner["bib"] for runner in recent] == ["777", "103", "104", "105", "101", "102"]
    by_bib = {runner["bib"]: runner for runner in recent}
    seconds, text = race_time("08:28:10.456")
    assert (by_bib["102"]["time_s"], by_bib["102"]["time_text"], by_bib["102"]["place"]) == (seconds, text, 1)
    assert by_bib["102"]["name"] == "Eliud Kipchoge" and by_bib["102"]["known"] is True
    assert by_bib["777"]["known"] is False and by_bib["777"]["name"] == ""
    assert config["branding"]["display_name"] == "Acme 10K"


@pytest_twisted.ensureDeferred
async def test_a_chip_time_screen_shows_chip_times_and_a_screen_of_the_split_shows_only_the_split(pg_dsn, stub, race):
    await add_screen(stub, race.acme, race.event, name="Chip", time_kind="chip")
    await add_screen(stub, race.acme, race.event, name="Split", locations="split5k")
    _, html = await fetch(stub, "GET", f"/screen/{screen_code(pg_dsn, 'Chip')}")
    by_bib = {runner["bib"]: runner for runner in page_config(html)["recent"]}
    assert by_bib["101"]["time_kind"] == "chip"
    assert by_bib["101"]["time_s"] == race_time("08:31:07.418", "08:00:05.123")[0]
    _, html = await fetch(stub, "GET", f"/screen/{screen_code(pg_dsn, 'Split')}")
    recent = page_config(html)["recent"]
    assert [(runner["bib"], runner["location"]) for runner in recent] == [("101", "split5k")]


@pytest_twisted.ensureDeferred
async def test_screen_forms_need_the_csrf_token_stay_within_the_partner_and_name_a_bad_field(pg_dsn, stub, race):
    response, _ = await add_screen(stub, race.acme, race.event, csrf=None)
    assert response.code == 403
    response, _ = await add_screen(stub, race.zeta, race.event)  # another partner's event
    assert response.code == 404
    for field, value in (("hold_seconds", "0.05"), ("hold_seconds", "soon"), ("time_kind", "net"),
                         ("grid_threshold", "1"), ("name", ""), ("layout_id", "x")):
        response, html = await add_screen(stub, race.acme, race.event, **{field: value})
        assert response.code == 400 and field in html, (field, value)
    assert query(pg_dsn, "SELECT count(*) FROM display_screens") == [(0,)]

    await add_screen(stub, race.acme, race.event)
    screen = query(pg_dsn, "SELECT id FROM display_screens")[0][0]
    response, _ = await fetch(stub, "POST", f"/screens/{screen}", cookies=race.zeta.cookies,
                              data={"csrf_token": CSRF, "name": "mine now"})
    assert response.code == 404
    response, _ = await fetch(stub, "POST", f"/screens/{screen}/delete", cookies=race.zeta.cookies,
                              data={"csrf_token": CSRF})
    assert response.code == 404
    response, _ = await fetch(stub, "POST", f"/screens/{screen}", cookies=race.acme.cookies,
                              data={"csrf_token": CSRF, "name": "Renamed", "hold_seconds": "0.1", "time_kind": "chip",
                                    "sound": "on"})
    assert response.code == 303
    assert query(pg_dsn, "SELECT name, hold_seconds::float, time_kind, sound FROM display_screens") == [
        ("Renamed", 0.1, "chip", True)]
    response, _ = await fetch(stub, "POST", f"/screens/{screen}/delete", cookies=race.acme.cookies,
                              data={"csrf_token": CSRF})
    assert response.code == 303
    assert query(pg_dsn, "SELECT count(*) FROM display_screens") == [(0,)]
    response, _ = await fetch(stub, "GET", "/screen/" + "0" * 32)
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_a_layout_or_logo_that_is_not_the_events_own_is_a_400_naming_the_field(pg_dsn, stub, race):
    theirs = insert_layout(pg_dsn, race.zeta_event, "Theirs", big_name_layout("#000000"))
    for layout_id in ("999999", str(theirs)):  # no such layout; another partner's
        response, html = await add_screen(stub, race.acme, race.event, layout_id=layout_id)
        assert response.code == 400 and "layout_id" in html, layout_id
    assert query(pg_dsn, "SELECT count(*) FROM display_screens") == [(0,)]
    response, html = await fetch(stub, "POST", f"/events/{race.event}/branding", cookies=race.acme.cookies,
                                 data={"csrf_token": CSRF, "logo_image_id": "999999"})
    assert response.code == 400 and "logo_image_id" in html
    assert query(pg_dsn, "SELECT count(*) FROM event_branding") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_messages_and_branding_edited_by_the_operator_reach_the_screens_feed_with_a_new_etag(pg_dsn, stub, race):
    await add_screen(stub, race.acme, race.event)
    code = screen_code(pg_dsn)
    response, body = await fetch(stub, "GET", f"/api/screens/{code}/messages")
    assert response.code == 200 and json.loads(body)["messages"] == ["Welcome"]  # the start-up messages
    etag = response.headers.getRawHeaders("etag")[0]
    response, _ = await fetch(stub, "GET", f"/api/screens/{code}/messages", headers={"If-None-Match": etag})
    assert response.code == 304

    response, _ = await fetch(stub, "POST", f"/events/{race.event}/messages", cookies=race.acme.cookies,
                              data={"csrf_token": CSRF, "messages": "Water at the finish\r\n\r\nMedals: tent B\n"})
    assert response.code == 303
    response, _ = await fetch(stub, "POST", f"/events/{race.event}/branding", cookies=race.acme.cookies,
                              data={"csrf_token": CSRF, "display_name": "Acme City 10K", "primary_color": "#AA0011",
                                    "accent_color": "#00ff00", "background_color": "#000000",
                                    "text_color": "#ffffff", "sponsor_image_ids": "12, 13"})
    assert response.code == 303
    response, body = await fetch(stub, "GET", f"/api/screens/{code}/messages", headers={"If-None-Match": etag})
    assert response.code == 200 and response.headers.getRawHeaders("etag")[0] != etag
    payload = json.loads(body)
    assert payload["messages"] == ["Water at the finish", "Medals: tent B"]
    assert payload["branding"]["display_name"] == "Acme City 10K"
    assert payload["branding"]["primary_color"] == "#aa0011"
    assert payload["branding"]["logo_url"] is None and payload["branding"]["sponsor_urls"] == []  # no images table yet

    response, html = await fetch(stub, "POST", f"/events/{race.event}/branding", cookies=race.acme.cookies,
                                 data={"csrf_token": CSRF, "primary_color": "red"})
    assert response.code == 400 and "primary_color" in html
    response, _ = await fetch(stub, "POST", f"/events/{race.event}/messages", cookies=race.zeta.cookies,
                              data={"csrf_token": CSRF, "messages": "hijacked"})
    assert response.code == 404
    assert query(pg_dsn, "SELECT message FROM event_messages ORDER BY position") == [
        ("Water at the finish",), ("Medals: tent B",)]


@pytest_twisted.ensureDeferred
async def test_the_event_feed_builds_each_new_finisher_once_for_every_screen_with_place_and_time(
        pg_dsn, display, stub, race, database):
    await add_screen(stub, race.acme, race.event)
    await fetch(stub, "GET", f"/screen/{screen_code(pg_dsn)}")  # builds the event's feed
    event = next(event for event in await queries.events(database, queries.EVERYTHING) if event.id == race.event)
    feed = await display._feed(database, event)
    got_a, got_b = [], []
    ScreenView(feed, "gun", None).subscribe(got_a.append)
    ScreenView(feed, "gun", None).subscribe(got_b.append)
    built = feed.crossings_built
    insert_runner(pg_dsn, race.event, "106", "Kenenisa", "Bekele", 41, "M")
    insert_read(pg_dsn, race.session, "106", "finish", "08:29:00.000")
    insert_read(pg_dsn, race.session, "106", "finish", "08:29:00.500")  # the same crossing read again
    await wait_until(lambda: got_a and got_b)
    await wait_until(lambda: feed.last_read_id >= query(pg_dsn, "SELECT max(id) FROM timing_reads")[0][0])
    assert feed.crossings_built == built + 1  # once, however many screens
    assert got_a[0].encoded == got_b[0].encoded  # the same bytes for every screen
    runner = got_a[0][0].to_json()
    seconds, text = race_time("08:29:00.000")
    assert (runner["bib"], runner["name"], runner["place"], runner["time_s"], runner["time_text"]) == (
        "106", "Kenenisa Bekele", 2, seconds, text)
    assert runner["gender_place"] == 2 and runner["division"] == "M40-44" and runner["division_place"] == 1


@pytest_twisted.ensureDeferred
async def test_the_announcer_lists_a_runner_after_a_split_with_a_projected_finish_and_drops_them_at_the_finish(
        pg_dsn, stub, race):
    insert_runner(pg_dsn, race.event, "107", "Tirunesh", "Dibaba", 38, "F")
    response, body = await fetch(stub, "GET", f"/api/announcer?event={race.event}", cookies=race.acme.cookies)
    assert response.code == 200 and json.loads(body)["runners"] == []  # 101 passed 5k but has finished
    insert_read(pg_dsn, race.session, "107", "split5k", "08:16:00.000")

    async def approaching() -> list[dict]:
        _, text = await fetch(stub, "GET", f"/api/announcer?event={race.event}", cookies=race.acme.cookies)
        return json.loads(text)["runners"]

    runners = []
    for _ in range(200):
        runners = await approaching()
        if runners:
            break
    assert [runner["bib"] for runner in runners] == ["107"]
    # The only finisher with a 5k split: 101, 5k at 15:00.000 after the gun, finish at 31:07.418.
    ratio = (at("08:31:07.418") - GUN).total_seconds() / (at("08:15:00.000") - GUN).total_seconds()
    assert runners[0]["projected_s"] == round((at("08:16:00.000") - GUN).total_seconds() * ratio, 2)
    assert runners[0]["name"] == "Tirunesh Dibaba" and runners[0]["split_text"] == "0:16:00"
    assert runners[0]["division"] == "F35-39"  # the age group from the roster's age and gender
    insert_read(pg_dsn, race.session, "107", "finish", "08:33:00.000")
    for _ in range(200):
        if not await approaching():
            break
    assert await approaching() == []
    response, _ = await fetch(stub, "GET", f"/api/announcer?event={race.event}", cookies=race.zeta.cookies)
    assert response.code == 404
    response, body = await fetch(stub, "GET", "/api/announcer?screen=nope")
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_a_screen_or_announcer_opened_while_the_database_is_down_says_so_and_retries_by_itself():
    from types import SimpleNamespace

    from treq.testing import StubTreq
    from twisted.internet import reactor

    from web.app import DisplayApp

    down = StubTreq(DisplayApp(reactor, SimpleNamespace(database=None)).resource())
    for path in ("/screen/0123456789abcdef", "/announcer", "/screen/0123456789abcdef/announcer"):
        response, html = await fetch(down, "GET", path)
        assert response.code == 503 and response.headers.getRawHeaders("retry-after") == ["5"]
        assert 'data-state="unavailable"' in html and "/static/screen.js" in html  # the script retries
        assert "keeps trying" in html
    response, body = await fetch(down, "GET", "/api/screens/0123456789abcdef/messages")
    assert response.code == 503 and json.loads(body)["success"] is False


@pytest_twisted.ensureDeferred
async def test_a_screen_with_a_layout_includes_the_designers_renderer_and_sends_the_layout_with_the_page(
        pg_dsn, stub, race):
    await add_screen(stub, race.acme, race.event)
    code = screen_code(pg_dsn)
    _, html = await fetch(stub, "GET", f"/screen/{code}")
    assert "/static/layout.js" not in html and page_config(html)["layout"] is None  # the built-in panel
    layout = big_name_layout("#0b1220")
    layout_id = insert_layout(pg_dsn, race.event, "Big name", layout)
    query(pg_dsn, "UPDATE display_screens SET layout_id = %s", (layout_id,))
    _, html = await fetch(stub, "GET", f"/screen/{code}")
    assert '<script src="/static/layout.js" defer></script>' in html
    assert page_config(html)["layout"] == {**layout, "images": {}}  # as GET /api/layouts/<id> gives it
    other = insert_layout(pg_dsn, race.zeta_event, "Theirs", layout)
    query(pg_dsn, "UPDATE display_screens SET layout_id = %s", (other,))
    _, html = await fetch(stub, "GET", f"/screen/{code}")
    assert page_config(html)["layout"] is None  # another partner's layout is never used


@pytest_twisted.ensureDeferred
async def test_the_feed_shows_a_read_that_committed_late_below_one_already_shown_and_each_once(
        pg_dsn, display, race, database):
    from web.display_feed import EventFeed

    class HeldBack:  # the test hands the feed its reads itself, in the order of two racing commits
        def subscribe(self, callback):
            return lambda: None

    event = next(event for event in await queries.events(database, queries.EVERYTHING) if event.id == race.event)
    feed = EventFeed(database, HeldBack(), event, display._event_results)
    await feed.start()
    shown = []
    feed.subscribe(lambda crossings: shown.extend(crossing.runners["gun"]["bib"] for crossing in crossings))
    insert_runner(pg_dsn, race.event, "108", "Derartu", "Tulu", 52, "F")
    insert_runner(pg_dsn, race.event, "109", "Sifan", "Hassan", 31, "F")
    low = insert_read(pg_dsn, race.session, "108", "finish", "08:36:00.000")
    insert_read(pg_dsn, race.session, "109", "finish", "08:37:00.000")
    reads = await queries.reads_after(database, low - 1)
    feed._new_reads([reads[1]])  # the higher id first
    await wait_until(lambda: shown == ["109"])
    feed._new_reads([reads[0], reads[1]])  # then the late one, with the other delivered again
    await wait_until(lambda: len(shown) >= 2)
    assert shown == ["109", "108"]
    feed.stop()


@pytest_twisted.ensureDeferred
async def test_open_streams_of_a_screen_deleted_by_another_process_are_ended_at_the_next_check(
        pg_dsn, display, stub, race):
    await add_screen(stub, race.acme, race.event, name="Kept")
    await add_screen(stub, race.acme, race.event, name="Gone")
    kept, gone = (query(pg_dsn, "SELECT id FROM display_screens WHERE name = %s", (name,))[0][0]
                  for name in ("Kept", "Gone"))

    class OpenStream:
        def __init__(self):
            self.ended = False

        def close(self, finish=False):
            self.ended = finish

    streams = {kept: OpenStream(), gone: OpenStream()}
    display._screen_streams = {screen: {stream} for screen, stream in streams.items()}
    assert await display.recheck_screens() == 0
    query(pg_dsn, "DELETE FROM display_screens WHERE id = %s", (gone,))  # as psql or another process would
    assert await display.recheck_screens() == 1
    assert streams[gone].ended is True and streams[kept].ended is False
