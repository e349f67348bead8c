"""Session downloads from the web layer: an operator (or an API token) gets their own session's reads as
CSV and CT01 attachments, written page by page; another partner's session is not found; anonymous
visitors of a closed hub are sent to sign in; in open mode anyone downloads, as for every page.

Two partners (acme, zeta) as in test_web_partners, through StubTreq in memory.
"""

from __future__ import annotations

import csv
import io
from datetime import timezone
from types import SimpleNamespace

import pytest
import pytest_twisted
import treq
from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.web._newclient import ResponseFailed
from twisted.web.iweb import UNKNOWN_LENGTH

from chronotrack import exports
from chronotrack.ctp01 import parse_tag_line
from tests import rows
from tests.postgres import query
from tests.test_exports import EVENT_DAY, fields, insert_ct01_read, stored_reads
from tests.test_web_access import fetch, location
from tests.test_web_partners import make_partner
from web.app import DisplayApp
from web.service import WebService


@pytest.fixture
def partners(pg_dsn, database):
    acme, zeta = make_partner(pg_dsn, "acme", ["101", "102"]), make_partner(pg_dsn, "zeta", ["901"])
    for me in (acme, zeta):  # reads with the lines a controller sent, beside make_partner's
        for sequence, tag in enumerate(["101", "=1+1", "guntime"], start=100):
            insert_ct01_read(pg_dsn, me.session, sequence, f"{me.slug}-finish", tag)
    return acme, zeta


@pytest.fixture
def stub(database, partners):
    return StubTreq(DisplayApp(reactor, SimpleNamespace(database=database), ("Welcome",)).resource())


def disposition(response) -> str:
    return response.headers.getRawHeaders("content-disposition")[0]


@pytest_twisted.ensureDeferred
async def test_an_operator_downloads_their_sessions_csv(stub, partners, pg_dsn):
    acme, _ = partners
    response, body = await fetch(stub, "GET", f"/sessions/{acme.session}/export.csv", cookies=acme.cookies)
    assert response.code == 200, body
    assert response.headers.getRawHeaders("content-type") == ["text/csv; charset=utf-8"]
    assert disposition(response) == f'attachment; filename="session-{acme.session}-acme-10k.csv"'
    reader = csv.DictReader(io.StringIO(body, newline=""))
    assert tuple(reader.fieldnames) == exports.CSV_COLUMNS
    found = list(reader)
    assert len(found) == len(stored_reads(pg_dsn, [acme.session])) == 5
    assert {row["event_name"] for row in found} == {"Acme 10K"}
    assert {row["location_name"] for row in found} == {"acme-finish"}
    assert [row["runner_name"] for row in found if row["tag_code"] == "101"] == ["Acme Runner", "Acme Runner"]
    assert "'=1+1" in [row["tag_code"] for row in found]  # the formula guard


@pytest_twisted.ensureDeferred
async def test_an_operator_downloads_their_sessions_ct01_lines_as_sent(stub, partners, pg_dsn):
    acme, _ = partners
    response, body = await fetch(stub, "GET", f"/sessions/{acme.session}/export.ct01", cookies=acme.cookies)
    assert response.code == 200, body
    assert response.headers.getRawHeaders("content-type") == ["text/plain; charset=utf-8"]
    assert disposition(response) == f'attachment; filename="session-{acme.session}-acme-10k.ct01.txt"'
    lines = body.split("\r\n")
    assert lines[-1] == "" and lines[:2] == ["raw", "raw"]  # make_partner's reads were stored with raw_data 'raw'
    parsed = [parse_tag_line(line, timezone.utc, EVENT_DAY) for line in lines[2:-1]]
    assert [fields(read) for read in parsed] == stored_reads(pg_dsn, [acme.session])[2:]


@pytest_twisted.ensureDeferred
async def test_an_api_token_downloads_too_and_the_location_filter_applies(stub, partners):
    _, zeta = partners
    response, body = await fetch(stub, "GET", f"/sessions/{zeta.session}/export.csv?location=nowhere",
                                 headers=zeta.bearer)
    assert response.code == 200 and body.splitlines() == [",".join(exports.CSV_COLUMNS)]
    response, body = await fetch(stub, "GET", f"/sessions/{zeta.session}/export.ct01", headers=zeta.bearer)
    assert response.code == 200 and body.count("\r\n") == 4


@pytest_twisted.ensureDeferred
async def test_another_partners_session_is_not_found(stub, partners):
    acme, zeta = partners
    for me, other in (partners, partners[::-1]):
        for credentials in ({"cookies": me.cookies}, {"headers": me.bearer}):
            for suffix in ("csv", "ct01"):
                response, body = await fetch(stub, "GET", f"/sessions/{other.session}/export.{suffix}",
                                             **credentials)
                assert response.code == 404, body
                assert "content-disposition" not in {name.lower() for name, _ in response.headers.getAllRawHeaders()}
                assert other.slug + "-finish" not in body
    response, _ = await fetch(stub, "GET", "/sessions/99999999/export.csv", cookies=acme.cookies)
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_anonymous_visitors_of_a_closed_hub_are_sent_to_sign_in(stub, partners):
    acme, _ = partners
    for suffix in ("csv", "ct01"):
        response, body = await fetch(stub, "GET", f"/sessions/{acme.session}/export.{suffix}")
        assert response.code == 303
        assert location(response).startswith("/login?next=")
        assert "acme-finish" not in body
    response, _ = await fetch(stub, "GET", f"/sessions/{acme.session}/export.csv",
                              headers={"Authorization": "Bearer not-a-real-token"})
    assert response.code == 401


@pytest_twisted.ensureDeferred
async def test_in_open_mode_anyone_downloads(pg_dsn, database):
    session = rows.insert_session(pg_dsn, "Race day", "Open 5K")
    insert_ct01_read(pg_dsn, session, 1, "finish", "7")
    stub = StubTreq(DisplayApp(reactor, SimpleNamespace(database=database), ("Welcome",)).resource())
    response, body = await fetch(stub, "GET", f"/sessions/{session}/export.ct01")
    assert response.code == 200
    assert body == "CT01_33~1~finish~7~08:01:02.35~1~0F2A38~2\r\n"


@pytest_twisted.ensureDeferred
async def test_the_sessions_page_links_each_own_session_to_both_downloads(stub, partners):
    acme, zeta = partners
    _, html = await fetch(stub, "GET", "/sessions", cookies=acme.cookies)
    assert f'href="/sessions/{acme.session}/export.csv"' in html
    assert f'href="/sessions/{acme.session}/export.ct01"' in html
    assert f"/sessions/{zeta.session}/export" not in html


@pytest_twisted.ensureDeferred
async def test_the_download_is_written_a_page_at_a_time(stub, partners, monkeypatch):
    acme, _ = partners
    pages: list[int] = []
    real_page = exports.export_page

    def counted(export_format, reads):
        pages.append(len(reads))
        return real_page(export_format, reads)

    monkeypatch.setattr(exports, "PAGE_SIZE", 2)
    monkeypatch.setattr(exports, "export_page", counted)
    response, body = await fetch(stub, "GET", f"/sessions/{acme.session}/export.ct01", cookies=acme.cookies)
    assert response.code == 200
    assert pages == [2, 2, 1] and body.count("\r\n") == 5


# Over a real port


@pytest_twisted.async_yield_fixture
async def served(database, partners):
    display = DisplayApp(reactor, SimpleNamespace(database=database), ("Welcome",))
    service = WebService(reactor, serverFromString(reactor, "tcp:0:interface=127.0.0.1"), display)
    service.startService()
    port = await service.when_listening()
    yield f"http://127.0.0.1:{port.getHost().port}"
    await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_large_download_arrives_whole_in_chunks_over_a_real_port(pg_dsn, served, partners):
    acme, _ = partners
    query(pg_dsn, """
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT s.id, s.timing_partner_id, 'connection:big', n, 'km-' || (n %% 42), n::text, '09:00:00.00',
               '2024-05-04 09:00:00+00', 0, 'AAAAAA', 1, 'CT01_33~' || n || '~km-' || (n %% 42) || '~' || n
               || '~09:00:00.00~0~AAAAAA~1'
        FROM timing_sessions s, generate_series(1000, 20999) AS n WHERE s.id = %s""", (acme.session,))
    response = await treq.get(f"{served}/sessions/{acme.session}/export.csv", headers=acme.bearer,
                              persistent=False)
    assert response.code == 200
    assert response.length is UNKNOWN_LENGTH  # streamed as it is read: no length known up front
    found = list(csv.DictReader(io.StringIO((await response.content()).decode("utf-8"), newline="")))
    assert len(found) == 20000 + 5
    assert [int(row["sequence_number"]) for row in found[5:]] == list(range(1000, 21000))


@pytest_twisted.ensureDeferred
async def test_a_download_that_fails_part_way_is_cut_off_not_finished(served, partners, monkeypatch):
    acme, _ = partners
    real_page = exports.export_page
    pages = []

    def failing(export_format, reads):
        pages.append(len(reads))
        if len(pages) == 2:
            raise RuntimeError("the database went away")
        return real_page(export_format, reads)

    monkeypatch.setattr(exports, "PAGE_SIZE", 2)
    monkeypatch.setattr(exports, "export_page", failing)
    response = await treq.get(f"{served}/sessions/{acme.session}/export.ct01", headers=acme.bearer,
                              persistent=False)
    assert response.code == 200  # the first page was on its way
    with pytest.raises(ResponseFailed):
        await response.content()  # the client knows the file is incomplete
    assert pages == [2, 2]
