"""Roster pulls from RunSignUp, ChronoTrack Live and Race Roster, against local stubs that answer
like the real APIs, stored in a real PostgreSQL through the CSV upload's upsert.

Each test asserts the rows stored, the progress row, and for the failures its message;
a log observer checks no credential ever reaches the log, and the database is searched for
any credential in plain text.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.logger import formatEvent, globalLogPublisher

from chronotrack.accounts.secret_box import SecretKeyError
from chronotrack.roster_sources.base import SourceRequest
from chronotrack.roster_sources.chronotrack_live import ChronoTrackLive
from chronotrack.roster_sources.credentials import CredentialSeal
from chronotrack.roster_sources.job import RosterPulls
from chronotrack.roster_sources.race_roster import RaceRoster
from chronotrack.roster_sources.runsignup import RunSignUp
from chronotrack.roster_sources import store
from tests import rows
from tests.postgres import query
from tests.stubs.registration_platforms import (CTLIVE_CLIENT, CTLIVE_PASSWORD, CTLIVE_USER, RR_CLIENT, RR_PASSWORD,
                                                RR_SECRET, RR_TOKEN, RR_USER, RUNSIGNUP_KEY, RUNSIGNUP_SECRET,
                                                ChronoTrackLiveStub, RaceRosterStub, Runner, RunSignUpStub,
                                                make_runners)
from web.queries import Scope

ALL_SECRETS = [RUNSIGNUP_KEY, RUNSIGNUP_SECRET, CTLIVE_PASSWORD, RR_SECRET, RR_PASSWORD, RR_TOKEN]


@pytest.fixture
def logged():
    """Every log event of the test, formatted and raw, to search for credentials."""
    events: list[str] = []

    def observe(event):
        events.append(f"{formatEvent(event)} {event!r}")

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


@pytest.fixture
def event(pg_dsn, database):
    rows.insert_partner(pg_dsn, "acme")
    session = rows.insert_session(pg_dsn, "Race day", "Spring 10K", partner="acme")
    return rows.event_of_session(pg_dsn, session)


def partner_id(dsn: str) -> int:
    return query(dsn, "SELECT id FROM timing_partners WHERE slug = 'acme'")[0][0]


def stored(dsn: str, event_id: int) -> dict[str, tuple]:
    return {row[0]: row[1:] for row in query(dsn, """
        SELECT bib, first_name, last_name, age, gender, city, state, division, team FROM participants
        WHERE timing_event_id = %s""", (event_id,))}


def no_secret_anywhere(dsn: str, logged: list[str]) -> None:
    everything = "\n".join(logged)
    dump = json.dumps(query(dsn, """SELECT coalesce(json_agg(i), '[]')::text FROM roster_imports i""")) + \
        json.dumps(query(dsn, """SELECT coalesce(json_agg(c), '[]')::text FROM roster_source_credentials c"""))
    for secret in ALL_SECRETS:
        assert secret not in everything, "a credential reached the log"
        assert secret not in dump, "a credential is in the database in plain text"


async def pull(database, dsn, event_id, source, request) -> store.RosterImport:
    pulls = RosterPulls(reactor, timeout=2)
    import_id = await pulls.start(database, partner_id(dsn), event_id, source, request)
    running = pulls.running.get(import_id)
    if running is not None:
        await running
    return await store.get_import(database, Scope.of_partners([partner_id(dsn)]), import_id)


def runsignup_request(key=RUNSIGNUP_KEY, secret=RUNSIGNUP_SECRET) -> SourceRequest:
    return SourceRequest({"race_id": RunSignUpStub.race_id, "event_id": RunSignUpStub.event_id},
                         {"api_key": key, "api_secret": secret})


def ctlive_request(password=CTLIVE_PASSWORD) -> SourceRequest:
    return SourceRequest({"event_id": ChronoTrackLiveStub.event_id},
                         {"client_id": CTLIVE_CLIENT, "user_id": CTLIVE_USER, "password": password})


def race_roster_request(secret=RR_SECRET, password=RR_PASSWORD) -> SourceRequest:
    return SourceRequest({"event_id": RaceRosterStub.event_id}, {"client_id": RR_CLIENT, "client_secret": secret,
                                                                 "username": RR_USER, "password": password})


@pytest_twisted.async_yield_fixture
async def platforms():
    runners = make_runners(23)
    stubs = {"runsignup": RunSignUpStub(runners).install(), "ctlive": ChronoTrackLiveStub(runners).install(),
             "race_roster": RaceRosterStub(runners).install()}
    for stub in stubs.values():
        stub.server.start()
    yield stubs
    for stub in stubs.values():
        await stub.server.stop()


def sources(platforms, page_size: int = 10):
    made = {"runsignup": RunSignUp(platforms["runsignup"].server.base),
            "ctlive": ChronoTrackLive(platforms["ctlive"].server.base),
            "race_roster": RaceRoster(platforms["race_roster"].server.base)}
    for source in made.values():
        source.page_size = page_size
    return made


REQUESTS = {"runsignup": runsignup_request, "ctlive": ctlive_request, "race_roster": race_roster_request}


@pytest.mark.parametrize("which", ["runsignup", "ctlive", "race_roster"])
@pytest_twisted.ensureDeferred
async def test_every_page_is_pulled_and_stored_with_progress(pg_dsn, database, event, platforms, logged, which):
    source = sources(platforms)[which]
    result = await pull(database, pg_dsn, event, source, REQUESTS[which]())
    assert result.status == "done", result.error
    assert result.pages_done == 3  # 23 runners, 10 a page
    assert (result.rows_done, result.rows_rejected) == (23, 0)
    runners = stored(pg_dsn, event)
    assert len(runners) == 23
    first = platforms[which].runners[0]
    first_name, last_name, age, gender, city, state, _division, team = runners[first.bib]
    assert (first_name, last_name, age, gender, city, state, team) == \
        (first.first, first.last, first.age, first.gender, first.city, first.state, first.team)
    if which != "runsignup":  # RunSignUp does not say how many there are
        assert result.total == 23
    no_secret_anywhere(pg_dsn, logged)


@pytest_twisted.ensureDeferred
async def test_a_pull_updates_existing_bibs_and_keeps_other_runners(pg_dsn, database, event, platforms):
    rows.insert_runner(pg_dsn, "100", "Old", "Name", event_id=event)
    rows.insert_runner(pg_dsn, "999", "Walk", "Up", event_id=event)
    await pull(database, pg_dsn, event, sources(platforms)["runsignup"], runsignup_request())
    runners = stored(pg_dsn, event)
    assert runners["100"][:2] == ("First0", "Last0")
    assert runners["999"][:2] == ("Walk", "Up")
    assert len(runners) == 24


@pytest_twisted.ensureDeferred
async def test_bad_records_are_reported_and_good_ones_kept(pg_dsn, database, event, platforms):
    stub = platforms["runsignup"]
    stub.runners[:] = [Runner("1", "Ann", "A", 30, "F", "X", "CO", None), Runner(None, "No", "Bib", 30, "M", "", "", None),
                       Runner("3", "Old", "Age", 300, "M", "", "", None), Runner("1", "Dup", "Bib", 20, "F", "", "", None),
                       Runner("4", "Dan", "D", "", "M", "", "", None)]
    result = await pull(database, pg_dsn, event, sources(platforms)["runsignup"], runsignup_request())
    assert result.status == "done"
    assert sorted(stored(pg_dsn, event)) == ["1", "4"]
    assert (result.rows_done, result.rows_rejected) == (2, 3)
    assert result.problems == ["page 1 registration 5001: no bib assigned",
                               "page 1 registration 5002: age 300 is not between 0 and 120",
                               "bib 1 appears twice; the first record is kept"]


@pytest.mark.parametrize("which, bad_request, message", [
    ("runsignup", lambda: runsignup_request(secret="wrong-secret-123"), "RunSignUp refused the credentials"),
    ("ctlive", lambda: ctlive_request(password="wrong-password-123"), "ChronoTrack Live refused the credentials (HTTP 401)"),
    ("race_roster", lambda: race_roster_request(secret="wrong-secret-456"), "Race Roster refused the credentials (HTTP 401)"),
    ("race_roster", lambda: race_roster_request(password="wrong-password-789"),
     "Race Roster refused the credentials (HTTP 400)"),
])
@pytest_twisted.ensureDeferred
async def test_bad_credentials_fail_the_import_with_a_clear_message(pg_dsn, database, event, platforms, logged,
                                                                    which, bad_request, message):
    result = await pull(database, pg_dsn, event, sources(platforms)[which], bad_request())
    assert result.status == "failed" and message in result.error
    assert stored(pg_dsn, event) == {}
    assert "wrong-" not in result.error and not any("wrong-" in line for line in logged)
    no_secret_anywhere(pg_dsn, logged)


@pytest_twisted.ensureDeferred
async def test_a_token_that_stops_working_is_a_403_failure(pg_dsn, database, event, platforms):
    stub = platforms["race_roster"]
    stub.server.routes["/api/oauth/authorize"] = lambda request: stub._json({"access_token": "some-other-token-9"})
    result = await pull(database, pg_dsn, event, sources(platforms)["race_roster"], race_roster_request())
    assert result.status == "failed" and "(HTTP 403)" in result.error


@pytest.mark.parametrize("which", ["runsignup", "ctlive", "race_roster"])
@pytest.mark.parametrize("mode, message", [("server_error", "server error (HTTP 500)"),
                                           ("bad_json", "not valid JSON"),
                                           ("slow", "no complete answer within 2 seconds")])
@pytest_twisted.ensureDeferred
async def test_platform_failures_fail_the_import_with_a_reason(pg_dsn, database, event, platforms, logged,
                                                               which, mode, message):
    platforms[which].mode = mode
    result = await pull(database, pg_dsn, event, sources(platforms)[which], REQUESTS[which]())
    assert result.status == "failed"
    assert message in result.error
    assert result.finished_at is not None
    no_secret_anywhere(pg_dsn, logged)


@pytest_twisted.ensureDeferred
async def test_a_failure_on_a_later_page_keeps_the_pages_already_stored(pg_dsn, database, event, platforms):
    platforms["ctlive"].mode = "fail_on_page_2"
    result = await pull(database, pg_dsn, event, sources(platforms)["ctlive"], ctlive_request())
    assert result.status == "failed" and "HTTP 500" in result.error
    assert (result.pages_done, result.rows_done) == (1, 10)
    assert len(stored(pg_dsn, event)) == 10


@pytest_twisted.ensureDeferred
async def test_runsignup_sends_key_and_secret_only_to_runsignup_and_pages_until_a_short_page(
        pg_dsn, database, event, platforms):
    platforms["runsignup"].runners[:] = make_runners(20)  # two full pages, then an empty one
    result = await pull(database, pg_dsn, event, sources(platforms)["runsignup"], runsignup_request())
    pages = [request.args["page"][0] for request in platforms["runsignup"].server.requests]
    assert pages == ["1", "2", "3"] and result.pages_done == 3 and result.rows_done == 20
    assert all(request.args["results_per_page"] == ["10"] for request in platforms["runsignup"].server.requests)


@pytest.mark.parametrize("flat", [False, True], ids=["location object", "location_city fields"])
@pytest_twisted.ensureDeferred
async def test_chronotrack_live_entries_keep_their_age_and_home_town(pg_dsn, database, event, platforms, flat):
    """The fields public clients of the real API read: ``entry_race_age``, and the home town as a
    ``location`` object or as ``location_city``/``location_region``. Before, the age was lost and
    the city stored as the text of the whole object."""
    platforms["ctlive"].flat_location = flat
    result = await pull(database, pg_dsn, event, sources(platforms)["ctlive"], ctlive_request())
    assert result.status == "done", result.error
    runners = stored(pg_dsn, event)
    for runner in platforms["ctlive"].runners:
        _first, _last, age, _gender, city, state, division, team = runners[runner.bib]
        assert (age, city, state, division, team) == (runner.age, runner.city, runner.state, "Overall", runner.team)


@pytest_twisted.ensureDeferred
async def test_race_roster_asks_for_a_token_with_the_accounts_login_and_reads_it_wrapped_or_not(
        pg_dsn, database, event, platforms):
    """POST /api/oauth/authorize, grant ``access_token``, the API client and the account's user name
    and password, as public clients of the real API ask; the token at the top of the answer or
    inside ``data`` (an object, or a list of one)."""
    stub = platforms["race_roster"]
    result = await pull(database, pg_dsn, event, sources(platforms)["race_roster"], race_roster_request())
    assert result.status == "done", result.error
    [authorize] = [request for request in stub.server.requests if request.path == "/api/oauth/authorize"]
    assert authorize.method == "POST"
    assert authorize.headers["content-type"] == "application/x-www-form-urlencoded"  # in the body, not the URL
    assert {name: values[0] for name, values in authorize.args.items()} == {
        "grant_type": "access_token", "client_id": RR_CLIENT, "client_secret": RR_SECRET, "username": RR_USER,
        "password": RR_PASSWORD}
    for answer in ({"access_token": RR_TOKEN}, {"data": [{"access_token": RR_TOKEN, "token_type": "Bearer"}]}):
        stub.server.routes["/api/oauth/authorize"] = lambda request, answer=answer: stub._json(answer)
        result = await pull(database, pg_dsn, event, sources(platforms)["race_roster"], race_roster_request())
        assert result.status == "done", (answer, result.error)
    stub.server.routes["/api/oauth/authorize"] = lambda request: stub._json({"data": []})
    result = await pull(database, pg_dsn, event, sources(platforms)["race_roster"], race_roster_request())
    assert result.status == "failed" and "did not issue an access token" in result.error


@pytest_twisted.ensureDeferred
async def test_chronotrack_live_never_sends_the_password_itself(pg_dsn, database, event, platforms):
    await pull(database, pg_dsn, event, sources(platforms)["ctlive"], ctlive_request())
    for request in platforms["ctlive"].server.requests:
        assert CTLIVE_PASSWORD not in json.dumps(request.args)


def test_remembered_credentials_are_sealed_with_the_server_key(tmp_path):
    seal = CredentialSeal(tmp_path / "secret.key")
    sealed = seal.seal({"api_key": RUNSIGNUP_KEY, "api_secret": RUNSIGNUP_SECRET})
    assert RUNSIGNUP_KEY not in sealed and RUNSIGNUP_SECRET not in sealed
    assert seal.open(sealed) == {"api_key": RUNSIGNUP_KEY, "api_secret": RUNSIGNUP_SECRET}
    with pytest.raises(SecretKeyError, match="cannot be opened"):
        CredentialSeal(tmp_path / "another.key").open(sealed)
    with pytest.raises(SecretKeyError, match="no server key file"):
        CredentialSeal(None).seal({"api_key": "x"})


@pytest_twisted.ensureDeferred
async def test_stopping_the_hub_mid_pull_marks_the_import_failed_and_keeps_stored_pages(
        pg_dsn, database, event, platforms):
    stub = platforms["race_roster"]
    route = f"/api/v1/events/{RaceRosterStub.event_id}/participants"
    answer = stub.server.routes[route]
    stub.server.routes[route] = lambda request: answer(request) if request.args[b"page"] == [b"1"] else None
    pulls = RosterPulls(reactor, timeout=30)
    import_id = await pulls.start(database, partner_id(pg_dsn), event, sources(platforms)["race_roster"],
                                  race_roster_request())
    for _ in range(200):  # until page 1 is stored and page 2 hangs
        found = await store.get_import(database, Scope.of_partners([partner_id(pg_dsn)]), import_id)
        if found.pages_done == 1:
            break
        await task.deferLater(reactor, 0.02, lambda: None)
    running = pulls.running[import_id]
    pulls.stop_all()
    await running
    found = await store.get_import(database, Scope.of_partners([partner_id(pg_dsn)]), import_id)
    assert found.status == "failed" and found.error == "the hub stopped during the import; start it again"
    assert found.rows_done == 10 and len(stored(pg_dsn, event)) == 10
