"""Two timing partners on one hub: each one's operators and tokens see and change only their own
events; anonymous visitors see only the public displays partners switched on.

Two partners (acme, zeta), each with reads in its own event, and one more acme event whose
display goes public. Pages and feeds through StubTreq, /stream over a real port.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import pytest_twisted
import treq
from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString

from tests import rows
from tests.postgres import query
from tests.test_web_access import PASSWORD, fetch, form_token, location, multipart, sign_in
from tests.test_web_stream import open_stream
from tests.waiting import wait_until
from web import queries
from web.app import DisplayApp
from web.queries import Scope
from web.roster import Participant
from web.service import WebService

CSRF = "csrf-token-for-tests-0123456789"


@dataclass
class Partner:
    slug: str
    operator_id: int
    email: str
    token: str  # an API token
    cookie: str  # a signed-in session's cookie token
    session: int  # the active session of its main event
    event: int
    read_ids: list[int]

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def cookies(self) -> dict[str, str]:
        return {"chronotrack_session": self.cookie}


def make_partner(dsn: str, slug: str, bibs: list[str]) -> Partner:
    rows.insert_partner(dsn, slug)
    email = f"ops@{slug}.example"
    operator_id = rows.insert_operator(dsn, email, PASSWORD, partner=slug)
    session = rows.insert_session(dsn, f"{slug} race day", f"{slug.title()} 10K", partner=slug)
    reads = [rows.insert_read(dsn, session, bib, location=f"{slug}-finish") for bib in bibs]
    rows.insert_runner(dsn, bibs[0], slug.title(), "Runner", event_id=rows.event_of_session(dsn, session))
    return Partner(slug, operator_id, email, rows.insert_api_token(dsn, slug),
                   rows.insert_web_session(dsn, operator_id, CSRF), session,
                   rows.event_of_session(dsn, session), reads)


@pytest.fixture
def partners(pg_dsn, database) -> tuple[Partner, Partner]:
    return make_partner(pg_dsn, "acme", ["101", "102"]), make_partner(pg_dsn, "zeta", ["901", "902", "903"])


@pytest.fixture
def display(database, partners):
    return DisplayApp(reactor, SimpleNamespace(database=database), ("Welcome",))


@pytest.fixture
def stub(display):
    return StubTreq(display.resource())


async def get_json(stub: StubTreq, path: str, **kwargs):
    response, body = await fetch(stub, "GET", path, **kwargs)
    assert response.code == 200, (path, body)
    return json.loads(body)


def read_rows(html: str, read_ids: list[int]) -> list[int]:
    return [read_id for read_id in read_ids if f'<tr data-id="{read_id}"' in html]


# Each partner sees its own


@pytest_twisted.ensureDeferred
async def test_each_partners_token_and_operator_get_only_their_reads_from_the_json_feeds(stub, partners):
    for me, other in (partners, partners[::-1]):
        for credentials in ({"headers": me.bearer}, {"cookies": me.cookies}):
            body = await get_json(stub, "/api/timing/recent-reads", **credentials)
            assert [read["id"] for read in body["reads"]] == me.read_ids[::-1]
            body = await get_json(stub, "/api/timing/stats", **credentials)
            assert body["total_reads"] == len(me.read_ids) and body["sessions"] == 1
            assert [location["location"] for location in body["locations"]] == [f"{me.slug}-finish"]
            assert sum(minute["reads"] for minute in body["reads_per_minute"]) == len(me.read_ids)
            body = await get_json(stub, "/api/timing/sessions", **credentials)
            assert [session["id"] for session in body["sessions"]] == [me.session]
            body = await get_json(stub, "/api/timing/database-status", **credentials)
            assert body["current_session"] == me.session


@pytest_twisted.ensureDeferred
async def test_a_partner_cannot_page_filter_or_search_its_way_into_another_partners_reads(stub, partners):
    acme, zeta = partners
    body = await get_json(stub, f"/api/timing/recent-reads?bib=901&before_id={zeta.read_ids[-1] + 1}",
                          headers=acme.bearer)
    assert body["reads"] == []
    body = await get_json(stub, "/api/timing/recent-reads?location=zeta-finish", headers=acme.bearer)
    assert body["reads"] == []


@pytest_twisted.ensureDeferred
async def test_each_operator_sees_only_its_partners_pages(stub, partners):
    for me, other in (partners, partners[::-1]):
        response, html = await fetch(stub, "GET", "/reads", cookies=me.cookies)
        assert response.code == 200
        assert read_rows(html, me.read_ids + other.read_ids) == me.read_ids
        assert f"{me.slug}-finish" in html and f"{other.slug}-finish" not in html  # the location filter too
        _, html = await fetch(stub, "GET", "/sessions", cookies=me.cookies)
        assert f"{me.slug} race day" in html and f"{other.slug} race day" not in html
        assert f"{other.slug.title()} 10K" not in html
        _, html = await fetch(stub, "GET", "/roster", cookies=me.cookies)
        assert f"class=\"wrap lead\">{me.slug.title()}</td>" in html and f">{other.slug.title()}</td>" not in html
        _, html = await fetch(stub, "GET", "/status", cookies=me.cookies)
        assert f"{me.slug}-finish" in html and f"{other.slug}-finish" not in html
        _, html = await fetch(stub, "GET", "/", cookies=me.cookies)
        assert f"{me.slug}-finish" in html and f"{other.slug}-finish" not in html


@pytest_twisted.ensureDeferred
async def test_another_partners_event_roster_is_not_found(pg_dsn, stub, partners):
    acme, zeta = partners
    response, html = await fetch(stub, "GET", f"/roster?event={zeta.event}", cookies=acme.cookies)
    assert response.code == 404 and "Zeta" not in html
    response, _ = await fetch(stub, "GET", f"/roster?event={acme.event}", cookies=acme.cookies)
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_controllers_of_another_partner_are_not_listed_on_status(pg_dsn, stub, partners):
    acme, zeta = partners
    query(pg_dsn, """INSERT INTO controller_connections (peer, stream_id, timing_partner_id)
                     SELECT '10.9.9.9:5000', 'connection:9', id FROM timing_partners WHERE slug = 'zeta'""")
    _, html = await fetch(stub, "GET", "/status", cookies=acme.cookies)
    assert "10.9.9.9" not in html
    _, html = await fetch(stub, "GET", "/status", cookies=zeta.cookies)
    assert "10.9.9.9" in html


# Changes only to one's own events


@pytest_twisted.ensureDeferred
async def test_roster_upload_goes_to_the_chosen_event_of_ones_own_partner(pg_dsn, stub, partners):
    acme, zeta = partners
    second = rows.insert_event(pg_dsn, "acme-half", "Acme Half", partner="acme")
    browser = stub
    _, html = await fetch(browser, "GET", "/roster", cookies=acme.cookies)
    assert f'<option value="{second}"' in html and f'<option value="{zeta.event}"' not in html
    body, headers = multipart({"csrf_token": CSRF, "event": str(second)}, b"bib,first_name,last_name\n5,Mo,Farah\n")
    response, html = await fetch(browser, "POST", "/roster", data=body, headers=headers, cookies=acme.cookies)
    assert response.code == 200 and "Imported 1 runner<" in html
    assert query(pg_dsn, "SELECT timing_event_id FROM participants WHERE bib = '5'") == [(second,)]
    body, headers = multipart({"csrf_token": CSRF, "event": str(zeta.event)}, b"bib,first_name\n6,Evil\n")
    response, _ = await fetch(browser, "POST", "/roster", data=body, headers=headers, cookies=acme.cookies)
    assert response.code == 404
    assert query(pg_dsn, "SELECT count(*) FROM participants WHERE bib = '6'") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_an_operator_closes_its_own_session_but_not_another_partners(pg_dsn, stub, partners):
    acme, zeta = partners
    response, _ = await fetch(stub, "POST", f"/sessions/{zeta.session}/close", data={"csrf_token": CSRF},
                              cookies=acme.cookies)
    assert response.code == 404
    response, _ = await fetch(stub, "POST", f"/sessions/{acme.session}/close", data={"csrf_token": "wrong" * 8},
                              cookies=acme.cookies)
    assert response.code == 403
    assert query(pg_dsn, "SELECT status FROM timing_sessions ORDER BY id") == [("active",), ("active",)]
    response, _ = await fetch(stub, "POST", f"/sessions/{acme.session}/close", data={"csrf_token": CSRF},
                              cookies=acme.cookies)
    assert response.code == 303 and location(response) == "/sessions"
    assert query(pg_dsn, "SELECT id, status, closed_at IS NOT NULL FROM timing_sessions ORDER BY id") == [
        (acme.session, "closed", True), (zeta.session, "active", False)]
    response, _ = await fetch(stub, "POST", "/sessions/99999999999999999999/close", data={"csrf_token": CSRF},
                              cookies=acme.cookies)
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_an_operator_switches_its_events_public_display_and_sees_its_link(pg_dsn, stub, partners):
    acme, zeta = partners
    response, _ = await fetch(stub, "POST", f"/events/{zeta.event}/public-display",
                              data={"csrf_token": CSRF, "public": "on"}, cookies=acme.cookies)
    assert response.code == 404
    response, _ = await fetch(stub, "POST", f"/events/{acme.event}/public-display",
                              data={"public": "on"}, cookies=acme.cookies)
    assert response.code == 403  # no CSRF token
    assert query(pg_dsn, "SELECT count(*) FROM timing_events WHERE public_display") == [(0,)]
    response, _ = await fetch(stub, "POST", f"/events/{acme.event}/public-display",
                              data={"csrf_token": CSRF, "public": "on"}, cookies=acme.cookies)
    assert response.code == 303
    slug = rows.display_slug(pg_dsn, acme.event)
    _, html = await fetch(stub, "GET", "/sessions", cookies=acme.cookies)
    assert f'href="/display/{slug}"' in html
    response, _ = await fetch(stub, "GET", f"/display/{slug}")
    assert response.code == 200
    await fetch(stub, "POST", f"/events/{acme.event}/public-display",
                data={"csrf_token": CSRF, "public": "off"}, cookies=acme.cookies)
    response, _ = await fetch(stub, "GET", f"/display/{slug}")
    assert response.code == 404


# Anonymous visitors in closed mode: public displays only


@pytest_twisted.ensureDeferred
async def test_the_public_display_of_a_public_event_shows_that_events_reads_only(pg_dsn, stub, partners):
    acme, zeta = partners
    other_session = rows.insert_session(pg_dsn, "acme other", "Acme Trail", partner="acme")
    other_read = rows.insert_read(pg_dsn, other_session, "555", location="trail-finish")
    slug = rows.display_slug(pg_dsn, acme.event, public=True)
    response, html = await fetch(stub, "GET", f"/display/{slug}")
    assert response.code == 200
    assert "Acme Runner" in html and "acme-finish" in html
    assert "trail-finish" not in html and "zeta-finish" not in html and f'data-id="{other_read}"' not in html
    assert f'data-stream="/stream?display={slug}"' in html
    assert "<nav" not in html  # no way into the back office from here
    # The rest stays closed to the same anonymous visitor.
    response, _ = await fetch(stub, "GET", "/")
    assert response.code == 303


@pytest.mark.parametrize("which", ["not public", "unknown", "hostile"])
@pytest_twisted.ensureDeferred
async def test_a_display_that_is_not_public_is_404(pg_dsn, stub, partners, which):
    slug = {"not public": rows.display_slug(pg_dsn, partners[1].event, public=False),
            "unknown": "0" * 32, "hostile": "%3Cscript%3E"}[which]
    response, html = await fetch(stub, "GET", f"/display/{slug}")
    assert response.code == 404 and "zeta-finish" not in html
    response, body = await fetch(stub, "GET", f"/stream?display={slug}")
    assert response.code == 404 and json.loads(body)["success"] is False


# /stream over a real port


@pytest_twisted.async_yield_fixture
async def served(database, partners):
    display = DisplayApp(reactor, SimpleNamespace(database=database), keepalive_interval=0.1)
    service = WebService(reactor, serverFromString(reactor, "tcp:0:interface=127.0.0.1"), display)
    service.startService()
    port = await service.when_listening()
    yield SimpleNamespace(url=f"http://127.0.0.1:{port.getHost().port}", display=display)
    await service.stopService()


@pytest_twisted.ensureDeferred
async def test_each_partners_stream_carries_only_its_own_live_reads(pg_dsn, served, partners):
    acme, zeta = partners
    served = served.url
    streams = {}
    for me in partners:
        streams[me.slug, "token"] = await open_stream(served + "/stream", headers=me.bearer)
        streams[me.slug, "cookie"] = await open_stream(
            served + "/stream", headers={"Cookie": f"chronotrack_session={me.cookie}"})
    new_zeta = rows.insert_read(pg_dsn, zeta.session, "904", location="zeta-finish")
    new_acme = rows.insert_read(pg_dsn, acme.session, "103", location="acme-finish")
    for (slug, _), (response, events, finished) in streams.items():
        await wait_until(lambda: events.events)
        assert events.ids == ([new_acme] if slug == "acme" else [new_zeta])
    # Resuming from before everything: the catch-up is scoped too.
    response, events, finished = await open_stream(served + "/stream?last_event_id=0", headers=acme.bearer)
    await wait_until(lambda: len(events.events) >= 3)
    assert events.ids == [*acme.read_ids, new_acme]


@pytest_twisted.ensureDeferred
async def test_the_public_display_stream_carries_only_that_events_reads(pg_dsn, served, partners):
    acme, zeta = partners
    served = served.url
    other_session = rows.insert_session(pg_dsn, "acme other", "Acme Trail", partner="acme")
    slug = rows.display_slug(pg_dsn, acme.event, public=True)
    response, events, finished = await open_stream(f"{served}/stream?display={slug}&last_event_id=0")
    assert response.code == 200
    rows.insert_read(pg_dsn, other_session, "555", location="trail-finish")
    rows.insert_read(pg_dsn, zeta.session, "905", location="zeta-finish")
    live = rows.insert_read(pg_dsn, acme.session, "104", location="acme-finish")
    await wait_until(lambda: live in events.ids)
    assert events.ids == [*acme.read_ids, live]


@pytest_twisted.ensureDeferred
async def test_anonymous_stream_in_closed_mode_is_401(served, partners):
    response = await treq.get(served.url + "/stream", persistent=False)
    assert response.code == 401
    assert (await response.json())["success"] is False


# Signing in through the form, as a partner's operator


@pytest_twisted.ensureDeferred
async def test_signing_in_through_the_form_scopes_the_session_to_the_operators_partner(display, partners):
    acme, zeta = partners
    browser = StubTreq(display.resource())
    response, _ = await sign_in(browser, zeta.email, next_path="/reads")
    assert response.code == 303 and location(response) == "/reads"
    _, html = await fetch(browser, "GET", "/reads")
    assert read_rows(html, acme.read_ids + zeta.read_ids) == zeta.read_ids
    assert form_token(html)  # the sign-out form carries this session's CSRF token


@pytest_twisted.ensureDeferred
async def test_switching_a_display_off_ends_its_open_streams(pg_dsn, served, partners):
    acme, _ = partners
    slug = rows.display_slug(pg_dsn, acme.event, public=True)
    response, events, finished = await open_stream(f"{served.url}/stream?display={slug}")
    own = await open_stream(served.url + "/stream", headers=acme.bearer)
    response, _ = await fetch(StubTreq(served.display.resource()), "POST", f"/events/{acme.event}/public-display",
                              data={"csrf_token": CSRF, "public": "off"}, cookies=acme.cookies)
    assert response.code == 303
    await finished  # the screen's stream ended; its reconnect gets a 404
    assert served.display.open_streams == 1  # the operator's own stream goes on


@pytest_twisted.ensureDeferred
async def test_signing_out_ends_that_sessions_open_streams(pg_dsn, served, partners):
    acme, zeta = partners
    response, events, finished = await open_stream(
        served.url + "/stream", headers={"Cookie": f"chronotrack_session={acme.cookie}"})
    other = await open_stream(served.url + "/stream", headers={"Cookie": f"chronotrack_session={zeta.cookie}"})
    response, _ = await fetch(StubTreq(served.display.resource()), "POST", "/logout",
                              data={"csrf_token": CSRF}, cookies=acme.cookies)
    assert response.code == 303
    await finished
    assert served.display.open_streams == 1


@pytest_twisted.ensureDeferred
async def test_streams_whose_token_session_or_display_went_elsewhere_are_ended_at_the_next_check(
        pg_dsn, served, partners):
    acme, zeta = partners
    slug = rows.display_slug(pg_dsn, acme.event, public=True)
    screen = await open_stream(f"{served.url}/stream?display={slug}")
    tool = await open_stream(served.url + "/stream", headers=acme.bearer)
    browser = await open_stream(served.url + "/stream", headers={"Cookie": f"chronotrack_session={zeta.cookie}"})
    untouched = await open_stream(served.url + "/stream", headers=zeta.bearer)
    assert await served.display._streams.check() == 0  # all still good
    # Changed by another process (psql, another display, the clock): seen at the next check.
    query(pg_dsn, "UPDATE timing_events SET public_display = false")
    query(pg_dsn, "UPDATE api_tokens SET revoked_at = now() WHERE timing_partner_id = "
                  "(SELECT id FROM timing_partners WHERE slug = 'acme')")
    query(pg_dsn, "UPDATE web_sessions SET expires_at = now()")
    assert await served.display._streams.check() == 3
    for _, _, finished in (screen, tool, browser):
        await finished
    assert served.display.open_streams == 1
    served.display.close_streams()
    await untouched[2]


@pytest_twisted.ensureDeferred
async def test_roster_queries_themselves_refuse_another_partners_event(pg_dsn, database, partners):
    """Defence in depth: even a caller that skipped the event check reads and writes nothing of another partner."""
    acme, zeta = partners
    acme_only = Scope.of_partners([query(pg_dsn, "SELECT id FROM timing_partners WHERE slug = 'acme'")[0][0]])
    assert await queries.participants(database, zeta.event, scope=acme_only) == ([], 0)
    assert await queries.participant_count(database, zeta.event, acme_only) == 0
    assert await queries.upsert_participants(database, zeta.event, [Participant("66", "Evil")], acme_only) == 0
    assert query(pg_dsn, "SELECT count(*) FROM participants WHERE bib = '66'") == [(0,)]
    assert await queries.participant_count(database, acme.event, acme_only) == 1
