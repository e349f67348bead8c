"""Results on the web: ``/api/results``, ``/results``, ``/results.csv`` and the settings form.

Reads are inserted with plain SQL (as the collector would, from another process); every
expected time is worked out here from the timestamps with datetime arithmetic, truncated
to the hundredth, not taken from the scoring core. Two partners (acme, zeta) show that an
event is only ever seen by its own partner. StubTreq in memory against a real PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet import reactor

from tests import rows
from tests.postgres import query
from tests.test_web_access import PASSWORD, fetch
from tests.waiting import wait_until
from web.app import DisplayApp

CSRF = "csrf-token-for-tests-0123456789"
DAY = datetime(2024, 5, 4, tzinfo=timezone.utc)
GUN = DAY.replace(hour=8)


def at(clock: str) -> datetime:
    """``"08:31:07.418"`` on race day, UTC."""
    hours, minutes, seconds = clock.split(":")
    return GUN.replace(hour=int(hours), minute=int(minutes)) + timedelta(seconds=float(seconds))


def race_time(finish: str, start: str = "08:00:00") -> tuple[float, str]:
    """(seconds to the hundredth, ``H:MM:SS.ss``), truncated, from two clock times."""
    elapsed = at(finish) - at(start)
    hundredths = elapsed // timedelta(microseconds=1) // 10_000
    whole, fraction = divmod(hundredths, 100)
    return hundredths / 100, f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}.{fraction:02d}"


# The race: gun at 08:00:00 on the start mat; who crossed which mat when.
ROSTER = [  # bib, first, last, age, gender, division
    ("101", "Ada", "Lovelace", 36, "F", None),
    ("102", "Eliud", "Kipchoge", 39, "male", None),
    ("103", "Grace", "Hopper", 45, "F", None),
    ("104", "Haile", "Gebrselassie", 51, "M", "Masters"),
    ("105", "Paula", "Radcliffe", 38, "Female", None),
]
STARTS = {"101": "08:00:05.123", "102": "08:00:01.500", "103": "08:00:09.999", "105": "08:00:03.000"}
FINISHES = {"102": "08:28:10.456", "101": "08:31:07.418", "105": "08:31:07.419", "104": "08:35:00.000",
            "103": "08:40:12.345", "777": "08:45:00.000"}


def insert_read(dsn: str, session: int, tag: str, location: str, clock: str) -> int:
    sequence = query(dsn, "SELECT coalesce(max(sequence_number), 0) + 1 FROM timing_reads")[0][0]
    return query(dsn, """
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT id, timing_partner_id, 'connection:results', %s, %s, %s, %s, %s, 1, '0F2A38', 1, 'raw'
        FROM timing_sessions WHERE id = %s RETURNING id""",
                 (sequence, location, tag, clock, at(clock), session))[0][0]


def insert_runner(dsn: str, event: int, bib: str, first: str, last: str, age: int | None, gender: str | None,
                  division: str | None = None) -> None:
    query(dsn, """
        INSERT INTO participants (timing_event_id, timing_partner_id, bib, first_name, last_name, age, gender,
                                  division)
        SELECT id, timing_partner_id, %s, %s, %s, %s, %s, %s FROM timing_events WHERE id = %s
        ON CONFLICT (timing_event_id, bib) DO UPDATE SET first_name = EXCLUDED.first_name,
            last_name = EXCLUDED.last_name, updated_at = clock_timestamp()""",
          (bib, first, last, age, gender, division, event))


@pytest.fixture
def race(pg_dsn, database):
    """acme's 10K with the race above; zeta's own event with one finisher."""
    acme = {}
    for slug in ("acme", "zeta"):
        rows.insert_partner(pg_dsn, slug)
        operator = rows.insert_operator(pg_dsn, f"ops@{slug}.example", PASSWORD, partner=slug)
        acme[slug] = SimpleNamespace(cookies={"chronotrack_session": rows.insert_web_session(pg_dsn, operator, CSRF)},
                                     bearer={"Authorization": f"Bearer {rows.insert_api_token(pg_dsn, slug)}"})
    zeta_session = rows.insert_session(pg_dsn, "zeta day", "Zeta 5K", partner="zeta")
    insert_read(pg_dsn, zeta_session, "guntime", "start", "08:00:00")
    insert_read(pg_dsn, zeta_session, "901", "finish", "08:20:00")
    session = rows.insert_session(pg_dsn, "acme day", "Acme 10K", partner="acme")
    event = rows.event_of_session(pg_dsn, session)
    for bib, first, last, age, gender, division in ROSTER:
        insert_runner(pg_dsn, event, bib, first, last, age, gender, division)
    insert_read(pg_dsn, session, "guntime", "start", "08:00:00")
    for bib, clock in STARTS.items():
        insert_read(pg_dsn, session, bib, "start", clock)
    insert_read(pg_dsn, session, "101", "split5k", "08:15:00.000")
    for bib, clock in FINISHES.items():
        insert_read(pg_dsn, session, bib, "finish", clock)
    insert_read(pg_dsn, session, "103", "finish", "08:40:20.000")  # a duplicate within the minute
    return SimpleNamespace(acme=acme["acme"], zeta=acme["zeta"], session=session, event=event,
                           zeta_session=zeta_session, zeta_event=rows.event_of_session(pg_dsn, zeta_session))


@pytest.fixture
def display(database, race):
    display = DisplayApp(reactor, SimpleNamespace(database=database), ("Welcome",))
    yield display
    display.close_streams()  # stops the live feed the results cache subscribed to


@pytest.fixture
def stub(display):
    return StubTreq(display.resource())


async def api(stub: StubTreq, path: str, who, code: int = 200) -> dict:
    response, body = await fetch(stub, "GET", path, cookies=who.cookies)
    assert response.code == code, (path, body)
    assert response.headers.getRawHeaders("content-type") == ["application/json"]
    return json.loads(body)


def expected_row(bib: str) -> dict:
    gun_s, gun = race_time(FINISHES[bib])
    chip_s, chip = race_time(FINISHES[bib], STARTS[bib]) if bib in STARTS else (gun_s, gun)
    return {"bib": bib, "gun_time_s": gun_s, "gun_time": gun, "chip_time_s": chip_s, "chip_time": chip}


# What /api/results says


@pytest_twisted.ensureDeferred
async def test_api_results_places_times_genders_divisions_and_unknown_tags_from_reads_in_sql(stub, race):
    body = await api(stub, "/api/results", race.acme)  # no event named: the newest active session's
    assert body["success"] is True
    assert body["event"]["id"] == race.event and body["event"]["name"] == "Acme 10K"
    assert body["event"]["gun_time"] == GUN.isoformat() and body["event"]["finish_location"] == "finish"
    results = body["results"]
    assert [row["bib"] for row in results] == ["102", "101", "105", "104", "103", "777"]
    for row in results:
        assert {key: row[key] for key in expected_row(row["bib"])} == expected_row(row["bib"])
    # 101 and 105 ran the same gun time to the hundredth: they share 2nd, the next is 4th.
    assert results[1]["gun_time"] == results[2]["gun_time"]
    assert [row["place"] for row in results] == [1, 2, 2, 4, 5, 6]
    by_bib = {row["bib"]: row for row in results}
    assert (by_bib["101"]["name"], by_bib["101"]["gender"], by_bib["101"]["division"]) == ("Ada Lovelace", "F", "F35-39")
    assert [(bib, by_bib[bib]["gender_place"]) for bib in ("101", "105", "103", "102", "104")] == [
        ("101", 1), ("105", 1), ("103", 3), ("102", 1), ("104", 2)]
    assert [(bib, by_bib[bib]["division"], by_bib[bib]["division_place"]) for bib in ("101", "105", "102", "104")] == [
        ("101", "F35-39", 1), ("105", "F35-39", 1), ("102", "M35-39", 1), ("104", "Masters", 1)]
    assert by_bib["104"]["flags"] == ["no_start_read"]  # chip time is the gun time
    assert by_bib["103"]["flags"] == [] and by_bib["101"]["flags"] == []
    assert by_bib["777"]["name"] == "Unknown" and by_bib["777"]["gender_place"] is None
    assert set(by_bib["777"]["flags"]) == {"unknown_tag", "no_start_read"}
    assert body["unknown_tags"] == ["777"]
    assert body["divisions"] == ["F35-39", "F45-49", "M35-39", "Masters"]


@pytest_twisted.ensureDeferred
async def test_api_results_search_by_name_or_bib_and_filter_by_gender_and_division(stub, race):
    async def bibs(path: str) -> list[str]:
        return [row["bib"] for row in (await api(stub, path, race.acme))["results"]]

    assert await bibs(f"/api/results?event={race.event}&q=ada") == ["101"]
    assert await bibs("/api/results?q=HOPPER") == ["103"]
    assert await bibs("/api/results?q=105") == ["105"]
    assert await bibs("/api/results?q=10") == []  # a bib matches exactly, not as a part
    assert await bibs("/api/results?gender=f") == ["101", "105", "103"]
    assert await bibs("/api/results?gender=M") == ["102", "104"]
    assert await bibs("/api/results?division=F35-39") == ["101", "105"]
    assert await bibs("/api/results?gender=F&q=paula") == ["105"]
    body = await api(stub, "/api/results?limit=2&gender=F", race.acme)
    assert body["count"] == 3 and [row["bib"] for row in body["results"]] == ["101", "105"]
    body = await api(stub, "/api/results?division=Masters", race.acme)
    assert [row["place"] for row in body["results"]] == [4]  # filtering keeps the overall place


@pytest_twisted.ensureDeferred
async def test_api_results_is_scoped_to_the_viewers_partner(display, stub, race):
    body = await api(stub, f"/api/results?event={race.zeta_event}", race.acme, code=404)
    assert body["success"] is False and "901" not in json.dumps(body)
    body = await api(stub, "/api/results", race.zeta)
    assert body["event"]["id"] == race.zeta_event and [row["bib"] for row in body["results"]] == ["901"]
    response, body = await fetch(stub, "GET", f"/api/results?event={race.event}", headers=race.acme.bearer)
    assert response.code == 200 and len(json.loads(body)["results"]) == 6  # an API token reads it too
    response, body = await fetch(stub, "GET", f"/api/results?event={race.event}", headers=race.zeta.bearer)
    assert response.code == 404
    response, body = await fetch(StubTreq(display.resource()), "GET", f"/api/results?event={race.event}")  # nobody
    assert response.code == 401
    response, _ = await fetch(stub, "GET", f"/results.csv?event={race.zeta_event}", cookies=race.acme.cookies)
    assert response.code == 404


@pytest.mark.parametrize("params, name", [
    ("event=abc", "event"), ("event=0", "event"), ("event=99999999999999999999", "event"),
    ("gender=M1", "gender"), ("gender=" + "F" * 30, "gender"), ("q=%00ada", "q"), ("q=" + "a" * 101, "q"),
    ("q=%FF", "q"), ("division=" + "x" * 61, "division"), ("limit=0", "limit"), ("limit=x", "limit"),
])
@pytest_twisted.ensureDeferred
async def test_api_results_refuses_bad_parameters_with_400_naming_them(stub, race, params, name):
    body = await api(stub, f"/api/results?{params}", race.acme, code=400)
    assert body == {"success": False, "error": body["error"], "parameter": name}


# Settings


async def post_settings(stub: StubTreq, who, event: int, csrf: str | None = CSRF, **fields):
    data = {"event": str(event), "place_by": "gun", "age_group_years": "5", "duplicate_window_seconds": "60", **fields}
    if csrf is not None:
        data["csrf_token"] = csrf
    return await fetch(stub, "POST", "/results/settings", data=data, cookies=who.cookies)


@pytest_twisted.ensureDeferred
async def test_the_settings_form_moves_the_finish_and_places_by_chip_and_the_results_follow(pg_dsn, stub, race):
    await api(stub, "/api/results", race.acme)  # cached with the defaults first
    response, _ = await post_settings(stub, race.acme, race.event, place_by="chip")
    assert response.code == 303
    assert response.headers.getRawHeaders("location") == [f"/results?event={race.event}"]
    body = await api(stub, "/api/results", race.acme)
    assert body["event"]["settings"]["place_by"] == "chip"
    results = body["results"]
    # By chip time 101 (31:02.29) is ahead of 105 (31:04.41): no tie any more.
    assert [row["bib"] for row in results] == ["102", "101", "105", "104", "103", "777"]
    assert [row["place"] for row in results] == [1, 2, 3, 4, 5, 6]
    assert [row["chip_time_s"] for row in results] == sorted(row["chip_time_s"] for row in results)

    response, _ = await post_settings(stub, race.acme, race.event, finish_location="split5k", place_by="gun")
    assert response.code == 303
    body = await api(stub, "/api/results", race.acme)
    assert body["event"]["finish_location"] == "split5k"
    assert [(row["bib"], row["gun_time"]) for row in body["results"]] == [("101", race_time("08:15:00.000")[1])]

    _, html = await fetch(stub, "GET", f"/results?event={race.event}", cookies=race.acme.cookies)
    assert 'name="finish_location" list="locations" maxlength="100" value="split5k"' in html


@pytest_twisted.ensureDeferred
async def test_the_settings_form_needs_the_csrf_token_a_valid_value_and_ones_own_event(pg_dsn, stub, race):
    response, _ = await post_settings(stub, race.acme, race.event, csrf=None, place_by="chip")
    assert response.code == 403
    response, _ = await post_settings(stub, race.acme, race.event, csrf="wrong" * 8, place_by="chip")
    assert response.code == 403
    response, _ = await post_settings(stub, race.acme, race.zeta_event, place_by="chip")
    assert response.code == 404
    for field, value in (("place_by", "fastest"), ("age_group_years", "7"), ("duplicate_window_seconds", "-1"),
                         ("gun_time", "08:00"), ("gun_time", "2024-05-04 08:00:00")):
        response, html = await post_settings(stub, race.acme, race.event, **{field: value})
        assert response.code == 400 and field in html, (field, value)
    response, _ = await fetch(stub, "POST", "/results/settings", headers=race.acme.bearer,
                              data={"event": str(race.event), "place_by": "chip"})
    assert response.code == 403  # an API token reads, it does not change
    assert query(pg_dsn, "SELECT count(*) FROM event_results_settings") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_a_gun_time_set_by_hand_wins_over_the_guntime_read(stub, race):
    response, _ = await post_settings(stub, race.acme, race.event, gun_time="2024-05-04T08:00:10+00:00",
                                      no_start_mat="on")
    assert response.code == 303
    body = await api(stub, "/api/results", race.acme)
    row = next(row for row in body["results"] if row["bib"] == "102")
    assert row["gun_time"] == race_time(FINISHES["102"], "08:00:10")[1]
    assert row["chip_time"] == row["gun_time"] and row["flags"] == ["no_start_read"]  # no start mat
    assert body["event"]["start_location"] is None


# The cache


@pytest_twisted.ensureDeferred
async def test_a_new_read_reaches_cached_results_through_the_live_feed_without_a_rebuild(pg_dsn, display, stub, race):
    cache = display.results_cache
    first = await api(stub, "/api/results", race.acme)
    assert cache.full_builds == 1 and len(first["results"]) == 6
    insert_runner(pg_dsn, race.event, "106", "Kenenisa", "Bekele", 41, "M")  # the roster changed: rebuilt once
    body = await api(stub, "/api/results", race.acme)
    assert cache.full_builds == 2 and body["unknown_tags"] == ["777"]
    applied = cache.live_reads_applied
    insert_read(pg_dsn, race.session, "106", "finish", "08:29:00.010")
    await wait_until(lambda: cache.live_reads_applied > applied)  # taken in from the live feed, no request
    body = await api(stub, "/api/results", race.acme)
    assert [row["bib"] for row in body["results"][:2]] == ["102", "106"]
    assert body["results"][1]["gun_time"] == race_time("08:29:00.010")[1]
    assert [row["place"] for row in body["results"]] == [1, 2, 3, 3, 5, 6, 7]
    assert cache.full_builds == 2  # not re-scored from scratch


@pytest_twisted.ensureDeferred
async def test_a_read_stored_just_before_a_request_is_in_its_answer_without_a_rebuild(pg_dsn, display, stub, race):
    cache = display.results_cache
    await api(stub, "/api/results", race.acme)
    insert_read(pg_dsn, race.session, "888", "finish", "08:50:00.000")
    body = await api(stub, "/api/results", race.acme)  # whether or not the notify came first
    assert body["results"][-1]["bib"] == "888" and body["unknown_tags"] == ["777", "888"]
    assert cache.full_builds == 1
    await api(stub, f"/api/results?event={race.event}", race.acme)
    assert cache.full_builds == 1


@pytest_twisted.ensureDeferred
async def test_the_cache_keeps_a_few_events_and_builds_each_once(pg_dsn, display, stub, race):
    cache = display.results_cache
    cache.capacity = 1
    await api(stub, "/api/results", race.acme)
    await api(stub, "/api/results", race.zeta)
    assert cache.full_builds == 2 and race.event not in cache and race.zeta_event in cache
    await api(stub, "/api/results", race.zeta)
    assert cache.full_builds == 2


# The page and the CSV


@pytest_twisted.ensureDeferred
async def test_the_results_page_is_server_rendered_searchable_and_has_no_inline_script(stub, race):
    response, html = await fetch(stub, "GET", "/results", cookies=race.acme.cookies)
    assert response.code == 200
    assert html.count('<tr data-bib="') == 6 and "Ada Lovelace" in html and "Zeta" not in html
    assert '<script src="/static/results.js" defer></script>' in html
    assert "<script>" not in html and " style=" not in html and " on" + "click" not in html
    assert '<a href="/results" aria-current="page">Results</a>' in html
    assert f'data-api="/api/results?limit=500&amp;event={race.event}"' in html
    assert "Tags not in the roster" in html and '<li class="mono">777</li>' in html
    assert '<span id="results-gun">2024-05-04 08:00:00.00 UTC</span>' in html
    assert html.count("no start read</span>") == 2  # 104 and 777 of five runners with a start mat
    assert 'name="csrf_token" value="' + CSRF in html  # the settings form, for an operator
    _, html = await fetch(stub, "GET", "/results?q=Hopper&gender=F", cookies=race.acme.cookies)
    assert html.count('<tr data-bib="') == 1 and "Grace Hopper" in html
    response, body = await fetch(stub, "GET", "/static/results.js")
    assert response.code == 200 and "textContent" in body and "innerHTML" not in body


@pytest_twisted.ensureDeferred
async def test_the_results_csv_is_safe_to_open_in_a_spreadsheet(pg_dsn, stub, race):
    insert_runner(pg_dsn, race.event, "777", "=HYPERLINK(\"http://evil.example\")", "@SUM(A1)", 30, "M")
    response, body = await fetch(stub, "GET", f"/results.csv?event={race.event}", cookies=race.acme.cookies)
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type") == ["text/csv; charset=utf-8"]
    assert "attachment" in response.headers.getRawHeaders("content-disposition")[0]
    table = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert [row["bib"] for row in table] == ["102", "101", "105", "104", "103", "777"]
    assert table[1]["gun_time"] == race_time(FINISHES["101"])[1] and table[1]["place"] == "2"
    assert table[-1]["name"] == "'=HYPERLINK(\"http://evil.example\") @SUM(A1)"
    assert not any(value.startswith(("=", "+", "-", "@")) for row in table for value in row.values())


@pytest_twisted.ensureDeferred
async def test_a_public_display_shows_its_events_results_to_anyone_and_nothing_else(pg_dsn, display, race):
    stub = StubTreq(display.resource())  # a browser that never signed in
    slug = rows.display_slug(pg_dsn, race.event, public=True)
    response, html = await fetch(stub, "GET", f"/results?display={slug}")
    assert response.code == 200 and html.count('<tr data-bib="') == 6 and "<nav" not in html
    assert 'data-stream="/stream?display=' + slug in html and "csrf_token" not in html
    response, body = await fetch(stub, "GET", f"/api/results?display={slug}")
    assert response.code == 200 and json.loads(body)["event"]["id"] == race.event
    response, _ = await fetch(stub, "GET", f"/api/results?display={slug}&event={race.zeta_event}")
    assert response.code == 404
    rows.display_slug(pg_dsn, race.event, public=False)
    response, _ = await fetch(stub, "GET", f"/results?display={slug}")
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_before_any_session_the_page_says_there_is_no_event_yet_and_the_api_is_404(database):
    display = DisplayApp(reactor, SimpleNamespace(database=database))
    stub = StubTreq(display.resource())  # open mode, empty hub
    response, html = await fetch(stub, "GET", "/results")
    assert response.code == 200 and "No event yet" in html
    response, body = await fetch(stub, "GET", "/api/results")
    assert response.code == 404 and json.loads(body)["success"] is False
    display.close_streams()


@pytest_twisted.ensureDeferred
async def test_requests_that_come_while_an_event_is_built_wait_for_that_build(display, race, monkeypatch):
    from twisted.internet.defer import Deferred, DeferredList, ensureDeferred

    from web import results_queries

    gate: Deferred = Deferred()
    all_reads = results_queries.event_read_page

    async def slow_reads(database, event, sessions, after_id, size=0):
        if after_id == 0:
            await gate  # the build's first page, held until everyone has asked
        return await all_reads(database, event, sessions, after_id, size)

    monkeypatch.setattr(results_queries, "event_read_page", slow_reads)
    browsers = [StubTreq(display.resource()) for _ in range(3)]
    answers = DeferredList([ensureDeferred(api(browser, "/api/results", race.acme)) for browser in browsers],
                           fireOnOneErrback=True, consumeErrors=True)
    await wait_until(lambda: len(display.results_cache._building.get(race.event, [])) == 2)
    gate.callback(None)
    assert [len(body["results"]) for _, body in await answers] == [6, 6, 6]
    assert display.results_cache.full_builds == 1


@pytest_twisted.ensureDeferred
async def test_a_big_race_shows_its_first_rows_and_asks_for_a_search(stub, race, monkeypatch):
    from web import results_pages

    monkeypatch.setattr(results_pages, "PAGE_ROWS", 2)
    _, html = await fetch(stub, "GET", "/results", cookies=race.acme.cookies)
    assert html.count('<tr data-bib="') == 2 and 'id="results-more">' in html
    assert 'Showing the first 2 of <span id="results-matching">6</span>' in html
    _, html = await fetch(stub, "GET", "/results?q=Hopper", cookies=race.acme.cookies)
    assert html.count('<tr data-bib="') == 1 and 'id="results-more" hidden>' in html


@pytest_twisted.ensureDeferred
async def test_the_per_request_catch_up_starts_above_what_the_live_feed_delivered(pg_dsn, display, stub, race,
                                                                                   monkeypatch):
    """A quiet event on a busy hub: its catch-up query does not walk the other events' new reads."""
    from web import results_queries

    await api(stub, "/api/results", race.acme)
    others = [insert_read(pg_dsn, race.zeta_session, str(950 + n), "finish", "08:21:00") for n in range(5)]
    live = display.live_reads()
    await wait_until(lambda: (live.last_id or 0) >= others[-1])
    asked_after = []
    all_reads = results_queries.event_reads

    async def recording(database, event, after_id=0):
        asked_after.append(after_id)
        return await all_reads(database, event, after_id)

    monkeypatch.setattr(results_queries, "event_reads", recording)
    await api(stub, "/api/results", race.acme)
    body = await api(stub, "/api/results", race.acme)
    assert asked_after[-1] >= others[-1] and len(body["results"]) == 6
    assert display.results_cache.full_builds == 1
