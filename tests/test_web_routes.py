"""Every route of the race display, in memory (StubTreq) and over a real port (treq),
against a real PostgreSQL with rows inserted by plain SQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytest_twisted
import treq
from treq.testing import StubTreq
from twisted.internet import reactor, task
from twisted.internet.defer import succeed

from chronotrack.storage.database import Database
from tests import rows
from tests.postgres import query
from web.app import DisplayApp
from web.service import make_web_service

REPO = Path(__file__).resolve().parent.parent
CHRONOTRACK = str(Path(sys.executable).parent / "chronotrack")  # the installed console script
XSS = "<script>window.__xss=1</script>"
COLLECTOR_STATUS = {"service": "timing-collector", "status": "running", "tcp_port": 61611, "connections": 3,
                    "total_reads": 1234, "current_session": 1, "timestamp": "2024-05-04T08:00:00+00:00",
                    "database_connected": True}


# Helpers


def insert_session(dsn: str, name: str = "Race day", event: str = "Spring 10K", status: str = "active") -> int:
    return rows.insert_session(dsn, name, event, status, event_key=f"{event}/{name}")


def insert_read(dsn: str, session_id: int, tag: str, location: str = "finish", sequence: int | None = None,
                time: str = "08:01:02.35", timestamp: str = "2024-05-04 08:01:02.35+00", lap: int = 1,
                reader: str = "0F2A38", gator: int = 1) -> int:
    if sequence is None:
        sequence = query(dsn, "SELECT coalesce(max(sequence_number), 0) + 1 FROM timing_reads")[0][0]
    raw = f"CT01_33~{sequence}~{location}~{tag}~{time}~{lap}~{reader}~{gator}"
    return query(dsn, """
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT id, timing_partner_id, 'connection:test', %s, %s, %s, %s, %s, %s, %s, %s, %s
        FROM timing_sessions WHERE id = %s RETURNING id""",
                 (sequence, location, tag, time, timestamp, lap, reader, gator, raw, session_id))[0][0]


def insert_runner(dsn: str, bib: str, first: str, last: str, **extra) -> None:
    rows.insert_runner(dsn, bib, first, last, extra.get("team"))


async def settle(stub: StubTreq, deferred):
    """Pump StubTreq's in-memory connection until ``deferred`` has a result (the resource
    answers asynchronously, after its database queries)."""
    done = []
    deferred.addBoth(lambda result: done.append(True) or result)
    while not done:
        stub.flush()
        await task.deferLater(reactor, 0.005, lambda: None)
    return await deferred


async def fetch(stub: StubTreq, method: str, path: str, **kwargs):
    response = await settle(stub, stub.request(method, "http://display.test" + path, **kwargs))
    return response, await settle(stub, stub.content(response))


async def get_json(stub: StubTreq, path: str):
    response, body = await fetch(stub, "GET", path)
    assert response.headers.getRawHeaders("content-type") == ["application/json"]
    return response.code, json.loads(body)


async def get_html(stub: StubTreq, path: str):
    response, body = await fetch(stub, "GET", path)
    assert response.headers.getRawHeaders("content-type")[0].startswith("text/html")
    return response.code, body.decode("utf-8")


@pytest.fixture
def display(database):
    return DisplayApp(reactor, SimpleNamespace(database=database), ("Welcome to Race Display", "Live race results"),
                      lambda: succeed(dict(COLLECTOR_STATUS)))


@pytest.fixture
def stub(display):
    return StubTreq(display.resource())


@pytest_twisted.async_yield_fixture
async def down_database():
    """A Database pointed where nothing listens: a server that is down."""
    database = Database(reactor, "host=/nonexistent-chronotrack-socket-dir port=5432 dbname=nothing user=nobody")
    assert await database.start() is False
    yield database
    database.close()


# JSON feeds


@pytest_twisted.ensureDeferred
async def test_database_status_reports_connected_and_the_active_session(pg_dsn, stub):
    insert_session(pg_dsn, "Old", status="closed")
    session = insert_session(pg_dsn, "Race day")
    code, body = await get_json(stub, "/api/timing/database-status")
    assert code == 200
    assert body["connected"] is True
    assert body["current_session"] == session
    assert body["session_name"] == "Race day"
    assert body["server_time"]


@pytest_twisted.ensureDeferred
async def test_database_status_without_an_active_session_says_none(stub):
    code, body = await get_json(stub, "/api/timing/database-status")
    assert code == 200 and body["connected"] is True and body["current_session"] is None


@pytest_twisted.ensureDeferred
async def test_stats_count_reads_unique_tags_and_locations(pg_dsn, stub):
    session = insert_session(pg_dsn)
    insert_read(pg_dsn, session, "101", "start")
    insert_read(pg_dsn, session, "101", "finish")
    last = insert_read(pg_dsn, session, "102", "finish", time="08:05:00.00")
    code, body = await get_json(stub, "/api/timing/stats")
    assert code == 200
    assert body["total_reads"] == 3
    assert body["unique_tags"] == 2
    locations = {location["location"]: location for location in body["locations"]}
    assert locations["start"]["reads"] == 1
    assert locations["finish"]["reads"] == 2
    assert locations["finish"]["latest_read"] == {"id": last, "bib": "102", "time": "08:05:00.00",
                                                  "timestamp": locations["finish"]["latest_read"]["timestamp"],
                                                  "gun_time": False}
    assert len(body["reads_per_minute"]) == 60
    assert sum(minute["reads"] for minute in body["reads_per_minute"]) == 3  # all just received


@pytest_twisted.ensureDeferred
async def test_stats_do_not_count_the_gun_time_as_a_runner(pg_dsn, stub):
    session = insert_session(pg_dsn)
    insert_read(pg_dsn, session, "guntime", "start", gator=0, lap=0)
    insert_read(pg_dsn, session, "101", "finish")
    code, body = await get_json(stub, "/api/timing/stats")
    assert body["total_reads"] == 2
    assert body["unique_tags"] == 1
    assert body["gun_times"] == 1


@pytest_twisted.ensureDeferred
async def test_recent_reads_newest_first_with_runner_names_and_all_fields(pg_dsn, stub):
    session = insert_session(pg_dsn)
    insert_runner(pg_dsn, "101", "Ada", "Lovelace")
    first = insert_read(pg_dsn, session, "101", "start", time="08:00:01.00", lap=1, reader="0F2A38", gator=2)
    second = insert_read(pg_dsn, session, "999", "finish", time="08:30:00.50")
    code, body = await get_json(stub, "/api/timing/recent-reads")
    assert code == 200 and body["success"] is True
    assert [read["id"] for read in body["reads"]] == [second, first]
    older = body["reads"][1]
    assert older == {"id": first, "session_id": session, "bib": "101", "name": "Ada Lovelace",
                     "location": "start", "time": "08:00:01.00", "clock": "08:00:01.00",
                     "timestamp": older["timestamp"], "lap": 1, "reader": "0F2A38", "gator": 2, "gun_time": False}
    assert older["timestamp"].startswith("2024-05-04")
    assert body["reads"][0]["name"] is None  # bib 999 is not in the roster


@pytest_twisted.ensureDeferred
async def test_recent_reads_limit_filters_and_paging(pg_dsn, stub):
    session = insert_session(pg_dsn)
    ids = [insert_read(pg_dsn, session, str(100 + n), "finish" if n % 2 else "start") for n in range(6)]
    _, body = await get_json(stub, "/api/timing/recent-reads?limit=2")
    assert [read["id"] for read in body["reads"]] == ids[:-3:-1]
    _, body = await get_json(stub, f"/api/timing/recent-reads?limit=2&before_id={ids[4]}")
    assert [read["id"] for read in body["reads"]] == [ids[3], ids[2]]
    _, body = await get_json(stub, "/api/timing/recent-reads?location=start")
    assert {read["location"] for read in body["reads"]} == {"start"} and len(body["reads"]) == 3
    _, body = await get_json(stub, "/api/timing/recent-reads?bib=103")
    assert [read["id"] for read in body["reads"]] == [ids[3]]


@pytest.mark.parametrize("limit", ["0", "1001", "abc", "-1", "2.5"])
@pytest_twisted.ensureDeferred
async def test_recent_reads_limit_out_of_bounds_is_a_400_json_error_naming_limit(stub, limit):
    code, body = await get_json(stub, f"/api/timing/recent-reads?limit={limit}")
    assert code == 400
    assert body["success"] is False and body["parameter"] == "limit"
    assert "limit" in body["error"]


@pytest_twisted.ensureDeferred
async def test_recent_reads_limit_bounds_themselves_are_accepted(pg_dsn, stub):
    session = insert_session(pg_dsn)
    insert_read(pg_dsn, session, "101")
    for limit in ("1", "1000"):
        code, body = await get_json(stub, f"/api/timing/recent-reads?limit={limit}")
        assert code == 200 and len(body["reads"]) == 1


@pytest_twisted.ensureDeferred
async def test_sessions_with_their_read_counts(pg_dsn, stub):
    old = insert_session(pg_dsn, "Friday test", status="closed")
    new = insert_session(pg_dsn, "Race day")
    insert_read(pg_dsn, old, "1")
    insert_read(pg_dsn, new, "101")
    insert_read(pg_dsn, new, "102")
    code, body = await get_json(stub, "/api/timing/sessions")
    assert code == 200 and body["success"] is True
    assert [(s["id"], s["session_name"], s["status"], s["read_count"]) for s in body["sessions"]] == [
        (new, "Race day", "active", 2), (old, "Friday test", "closed", 1)]


# The database being down or not there yet


JSON_ROUTES = ["/api/timing/database-status", "/api/timing/stats", "/api/timing/recent-reads",
               "/api/timing/sessions", "/stream"]
PAGE_ROUTES = ["/", "/reads", "/sessions", "/status", "/roster"]


@pytest_twisted.ensureDeferred
async def test_database_down_gives_503_json_and_pages_say_database_unavailable(down_database):
    stub = StubTreq(DisplayApp(reactor, SimpleNamespace(database=down_database)).resource())
    for path in JSON_ROUTES:
        code, body = await get_json(stub, path)
        assert code == 503, path
        assert body == {"success": False, "error": "database unavailable", "connected": False}
    for path in PAGE_ROUTES:
        code, html = await get_html(stub, path)
        assert code == 503, path
        assert "Database unavailable" in html
        assert "Traceback" not in html


@pytest_twisted.ensureDeferred
async def test_database_not_started_yet_is_unavailable_too():
    stub = StubTreq(DisplayApp(reactor, SimpleNamespace(database=None)).resource())
    code, body = await get_json(stub, "/api/timing/stats")
    assert code == 503 and body["error"] == "database unavailable"
    code, html = await get_html(stub, "/")
    assert code == 503 and "Database unavailable" in html


@pytest_twisted.ensureDeferred
async def test_a_failing_query_is_a_503_not_a_traceback(pg_dsn, database, stub):
    query(pg_dsn, "DROP TABLE participants CASCADE")  # every read query joins the roster
    code, body = await get_json(stub, "/api/timing/recent-reads")
    assert code == 503 and body["error"] == "database unavailable"
    code, html = await get_html(stub, "/reads")
    assert code == 503 and "Database unavailable" in html and "participants" not in html


@pytest_twisted.ensureDeferred
async def test_bad_page_parameter_is_a_400_naming_it(stub):
    code, html = await get_html(stub, "/reads?before=xyz")
    assert code == 400 and "before" in html


@pytest_twisted.ensureDeferred
async def test_unknown_paths_are_404_without_a_traceback(stub):
    code, body = await get_json(stub, "/api/timing/nothing")
    assert code == 404 and body["success"] is False
    code, html = await get_html(stub, "/nothing")
    assert code == 404 and "Traceback" not in html


# Pages


@pytest_twisted.ensureDeferred
async def test_display_page_shows_runner_unknown_bib_and_rotating_messages(pg_dsn, stub):
    session = insert_session(pg_dsn)
    insert_runner(pg_dsn, "101", "Ada", "Lovelace")
    insert_read(pg_dsn, session, "101", "finish", time="08:10:00.00")
    last = insert_read(pg_dsn, session, "1234", "finish", time="08:11:00.00", timestamp="2024-05-04 08:11:00+00")
    code, html = await get_html(stub, "/")
    assert code == 200
    assert "Ada Lovelace" in html
    assert "Bib 1234" in html
    assert f'data-last-id="{last}"' in html
    assert "Welcome to Race Display" in html and "Live race results" in html
    assert '<script src="/static/display.js"' in html


@pytest_twisted.ensureDeferred
async def test_display_page_shows_the_gun_time_as_race_start(pg_dsn, stub):
    session = insert_session(pg_dsn)
    insert_read(pg_dsn, session, "guntime", "start", time="08:00:00.00", gator=0, lap=0)
    code, html = await get_html(stub, "/")
    assert "Race start — start 08:00:00.00" in html
    assert "Bib guntime" not in html
    _, body = await get_json(stub, "/api/timing/recent-reads")
    assert body["reads"][0]["gun_time"] is True and body["reads"][0]["name"] is None


@pytest_twisted.ensureDeferred
async def test_display_shows_one_crossing_for_repeat_reads_of_a_chip(pg_dsn, stub):
    session = insert_session(pg_dsn)
    insert_runner(pg_dsn, "101", "Ada", "Lovelace")
    for gator, second in ((1, "02"), (2, "03"), (3, "05")):
        insert_read(pg_dsn, session, "101", "finish", time=f"08:10:{second}.00",
                    timestamp=f"2024-05-04 08:10:{second}+00", gator=gator)
    _, html = await get_html(stub, "/")
    assert html.count(">Ada Lovelace<") == 1
    assert "08:10:02.00" in html  # the first read of the crossing


@pytest_twisted.ensureDeferred
async def test_script_in_tag_or_location_is_escaped_on_reads_and_display(pg_dsn, stub):
    session = insert_session(pg_dsn)
    insert_read(pg_dsn, session, XSS, XSS)
    for path in ("/", "/reads", "/status"):
        code, html = await get_html(stub, path)
        assert code == 200
        assert XSS not in html, path
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html, path


@pytest_twisted.ensureDeferred
async def test_reads_page_filters_by_location_and_bib_and_pages(pg_dsn, stub):
    def row(read_id):
        return f'<tr data-id="{read_id}"'

    session = insert_session(pg_dsn)
    insert_runner(pg_dsn, "101", "Ada", "Lovelace")
    ids = [insert_read(pg_dsn, session, "101" if n % 2 else "102", "finish" if n % 2 else "start")
           for n in range(5)]
    code, html = await get_html(stub, "/reads?bib=101")
    assert code == 200 and "Ada Lovelace" in html
    assert row(ids[1]) in html and row(ids[0]) not in html
    _, html = await get_html(stub, "/reads?location=start")
    assert row(ids[4]) in html and row(ids[3]) not in html
    _, html = await get_html(stub, "/reads?limit=2")
    assert row(ids[4]) in html and row(ids[2]) not in html
    assert f"before={ids[3]}" in html  # the link to older reads
    _, html = await get_html(stub, f"/reads?limit=2&before={ids[3]}")
    assert row(ids[2]) in html and row(ids[1]) in html and row(ids[4]) not in html


@pytest_twisted.ensureDeferred
async def test_reads_page_shows_gun_time_as_race_start(pg_dsn, stub):
    session = insert_session(pg_dsn)
    insert_read(pg_dsn, session, "guntime", "start", time="08:00:00.00", gator=0, lap=0)
    _, html = await get_html(stub, "/reads")
    assert "<strong>Race start</strong> — start 08:00:00.00" in html


@pytest_twisted.ensureDeferred
async def test_sessions_page_lists_sessions_with_read_counts(pg_dsn, stub):
    session = insert_session(pg_dsn, "Race day", event="Spring 10K")
    insert_read(pg_dsn, session, "101")
    code, html = await get_html(stub, "/sessions")
    assert code == 200 and "Race day" in html and "Spring 10K" in html
    assert 'data-label="Reads">1</td>' in html


@pytest_twisted.ensureDeferred
async def test_status_page_shows_collector_health_locations_and_chart(pg_dsn, stub):
    session = insert_session(pg_dsn)
    insert_read(pg_dsn, session, "101", "finish")
    query(pg_dsn, "INSERT INTO controller_connections (peer, stream_id) VALUES ('10.0.0.7:51000', 'connection:7')")
    code, html = await get_html(stub, "/status")
    assert code == 200
    assert "running" in html
    assert 'id="collector-connections" class="figure">3</dd>' in html  # open connections, from the collector
    assert "10.0.0.7:51000" in html  # open connections, as the database records them
    assert "<svg class=\"chart\"" in html and html.count('class="chart-bar"') == 60
    assert "finish" in html


@pytest_twisted.ensureDeferred
async def test_status_page_when_the_collector_does_not_answer_or_is_not_configured(database):
    unreachable = StubTreq(DisplayApp(reactor, SimpleNamespace(database=database), (), lambda: succeed(None))
                           .resource())
    code, html = await get_html(unreachable, "/status")
    assert code == 200 and "not reachable" in html
    unconfigured = StubTreq(DisplayApp(reactor, SimpleNamespace(database=database)).resource())
    code, html = await get_html(unconfigured, "/status")
    assert code == 200 and "not configured" in html


@pytest_twisted.ensureDeferred
async def test_static_assets_are_served_and_nothing_else(stub):
    response, body = await fetch(stub, "GET", "/static/display.js")
    assert response.code == 200 and b"EventSource" in body
    assert response.headers.getRawHeaders("content-type")[0].startswith("text/javascript")
    response, _ = await fetch(stub, "GET", "/static/display.css")
    assert response.code == 200
    response, _ = await fetch(stub, "GET", "/static/..%2Fweb%2Fapp.py")
    assert response.code == 404


def test_display_script_never_puts_data_in_the_page_as_html():
    script = (REPO / "templates" / "display.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script
    assert "textContent" in script


# Roster


ROSTER_CSV = (
    "Bib,First Name,Last Name,Age,Gender,City,State,Division,Team\n"
    "101,Ada,Lovelace,36,F,London,,F35-39,Analytical\n"
    "102,Alan,Turing,abc,M,Wilmslow,,M40-44,\n"
    ",Nobody,Atall,,,,,,\n"
    "103,Grace,Hopper,,F,Arlington,VA,,Navy\n"
)


def multipart(field: str, filename: str, content: bytes) -> tuple[bytes, dict]:
    boundary = "chronotrackboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, {b"Content-Type": [f"multipart/form-data; boundary={boundary}".encode()]}


@pytest_twisted.ensureDeferred
async def test_roster_upload_imports_good_rows_and_reports_bad_lines(pg_dsn, stub):
    body, headers = multipart("file", "roster.csv", ROSTER_CSV.encode())
    response, html = await fetch(stub, "POST", "/roster", data=body, headers=headers)
    html = html.decode()
    assert response.code == 200
    assert "Imported 2 runners, rejected 2 lines" in html
    assert "line 3: age &#39;abc&#39; is not a whole number" in html
    assert "line 4: bib is missing" in html
    assert query(pg_dsn, "SELECT bib, first_name, last_name, age, state, team FROM participants ORDER BY bib") == [
        ("101", "Ada", "Lovelace", 36, None, "Analytical"), ("103", "Grace", "Hopper", None, "VA", "Navy")]
    _, page = await get_html(stub, "/roster")
    assert "Lovelace" in page and "Hopper" in page and "2 runners" in page


@pytest_twisted.ensureDeferred
async def test_roster_upload_updates_a_known_bib(pg_dsn, stub):
    insert_runner(pg_dsn, "101", "Ada", "Byron")
    body, headers = multipart("file", "roster.csv", b"bib,first_name,last_name\n101,Ada,Lovelace\n")
    response, _ = await fetch(stub, "POST", "/roster", data=body, headers=headers)
    assert response.code == 200
    assert query(pg_dsn, "SELECT last_name FROM participants WHERE bib = '101'") == [("Lovelace",)]


@pytest_twisted.ensureDeferred
async def test_roster_upload_without_a_file_is_a_400_naming_file(stub):
    body, headers = multipart("other", "x.csv", b"bib\n1\n")
    response, html = await fetch(stub, "POST", "/roster", data=body, headers=headers)
    assert response.code == 400 and b"file" in html


@pytest_twisted.ensureDeferred
async def test_roster_upload_from_another_site_is_refused(pg_dsn, stub):
    body, headers = multipart("file", "roster.csv", b"bib\n1\n")
    headers[b"Sec-Fetch-Site"] = [b"cross-site"]
    response, _ = await fetch(stub, "POST", "/roster", data=body, headers=headers)
    assert response.code == 403
    assert query(pg_dsn, "SELECT count(*) FROM participants") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_roster_search_finds_by_name_and_bib(pg_dsn, stub):
    insert_runner(pg_dsn, "101", "Ada", "Lovelace")
    insert_runner(pg_dsn, "7", "Alan", "Turing")
    _, html = await get_html(stub, "/roster?q=love")
    assert "Lovelace" in html and "Turing" not in html
    _, html = await get_html(stub, "/roster")
    assert html.index("Turing") < html.index("Lovelace")  # bib 7 before bib 101


def test_roster_command_imports_a_csv_and_reports_rejected_lines(pg_dsn, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER_CSV)
    result = subprocess.run([CHRONOTRACK, "roster", "import", str(roster), "--dsn", pg_dsn],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 1, result.stderr  # some lines were rejected
    assert "imported 2 runners; 2 lines rejected" in result.stdout
    assert "rejected line 3: age 'abc' is not a whole number" in result.stderr
    assert query(pg_dsn, "SELECT bib FROM participants ORDER BY bib") == [("101",), ("103",)]


def test_roster_command_on_a_clean_file_exits_zero_and_creates_the_schema(pg_dsn, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("bib;first name;last name\n5;Mo;Farah\n")
    result = subprocess.run([CHRONOTRACK, "roster", "import", str(roster), "--dsn", pg_dsn],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert query(pg_dsn, "SELECT bib, first_name, last_name FROM participants") == [("5", "Mo", "Farah")]


@pytest_twisted.ensureDeferred
async def test_a_runner_imported_with_the_command_is_named_on_the_display(pg_dsn, stub, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("bib,first_name,last_name\n4242,Eliud,Kipchoge\n")
    session = insert_session(pg_dsn, event="Spring 10K")
    process = await _run_async([CHRONOTRACK, "roster", "import", str(roster),
                                "--event", "Spring 10K/Race day", "--dsn", pg_dsn])
    assert process == 0
    insert_read(pg_dsn, session, "4242")
    _, html = await get_html(stub, "/")
    assert "Eliud Kipchoge" in html


async def _run_async(argv: list[str]) -> int:
    from twisted.internet.utils import getProcessValue
    return await getProcessValue(argv[0], argv[1:], path=str(REPO), env=None)


# Over a real port


@pytest_twisted.async_yield_fixture
async def served(database):
    service = make_web_service(reactor, "tcp:0:interface=127.0.0.1", SimpleNamespace(database=database),
                               ("Welcome to Race Display",), lambda: succeed(dict(COLLECTOR_STATUS)))
    service.startService()
    port = await service.when_listening()
    yield f"http://127.0.0.1:{port.getHost().port}"
    await service.stopService()


@pytest_twisted.ensureDeferred
async def test_real_port_json_feeds(pg_dsn, served):
    session = insert_session(pg_dsn)
    insert_read(pg_dsn, session, "101")
    response = await treq.get(served + "/api/timing/stats")
    assert response.code == 200 and (await response.json())["total_reads"] == 1
    response = await treq.get(served + "/api/timing/recent-reads?limit=5")
    assert (await response.json())["reads"][0]["bib"] == "101"
    response = await treq.get(served + "/api/timing/database-status")
    assert (await response.json())["current_session"] == session
    response = await treq.get(served + "/api/timing/sessions")
    assert (await response.json())["sessions"][0]["read_count"] == 1
    response = await treq.get(served + "/api/timing/recent-reads?limit=0")
    assert response.code == 400 and (await response.json())["parameter"] == "limit"


@pytest_twisted.ensureDeferred
async def test_real_port_pages(pg_dsn, served):
    insert_read(pg_dsn, insert_session(pg_dsn), XSS, "finish")
    for path in ("/", "/reads", "/sessions", "/status", "/roster"):
        response = await treq.get(served + path)
        html = await response.text()
        assert response.code == 200, path
        assert XSS not in html
    response = await treq.get(served + "/static/site.css")
    assert response.code == 200 and "text/css" in response.headers.getRawHeaders("content-type")[0]


@pytest_twisted.ensureDeferred
async def test_real_port_roster_upload(pg_dsn, served):
    response = await treq.post(served + "/roster", files={"file": ("roster.csv", "text/csv",
                                                                    __import__("io").BytesIO(b"bib,first\n9,Zola\n"))})
    assert response.code == 200
    assert "Imported 1 runner<" in await response.text()
    assert query(pg_dsn, "SELECT first_name FROM participants WHERE bib = '9'") == [("Zola",)]


@pytest_twisted.ensureDeferred
async def test_collector_status_over_http_returns_the_dict_or_none():
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    from web.collector_status import http_collector_status

    class Status(Resource):
        isLeaf = True

        def render_GET(self, request):
            if request.path == b"/broken":
                request.setResponseCode(500)
                return b"oops"
            request.setHeader(b"Content-Type", b"application/json")
            return json.dumps(COLLECTOR_STATUS).encode()

    port = reactor.listenTCP(0, Site(Status()), interface="127.0.0.1")
    try:
        base = f"http://127.0.0.1:{port.getHost().port}"
        assert await http_collector_status(reactor, base + "/status")() == COLLECTOR_STATUS
        assert await http_collector_status(reactor, base + "/broken")() is None
    finally:
        await port.stopListening()
    assert await http_collector_status(reactor, base + "/status", timeout=5)() is None  # nothing listens now
