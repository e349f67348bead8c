"""The web layer facing hostile traffic, over a real port through the real Site (HubSite):
security headers on every kind of response, request bodies refused before they are read,
bad query parameters answered with a 400 naming them, and whatever a controller sends shown
as text in pages, JSON and the stream."""

from __future__ import annotations

import io
import json
import select
import socket
from types import SimpleNamespace

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor, threads
from twisted.internet.endpoints import serverFromString
from twisted.web.test.requesthelper import DummyRequest

from tests import rows
from tests.postgres import query
from tests.test_web_stream import open_stream
from web import limits
from web.app import DisplayApp
from web.headers import HeaderPolicy, apply_security_headers
from web.service import WebService
from web.site import HubRequest

HOSTILE_LOCATION = '<script>alert("location")</script>'
HOSTILE_TAG = "\"'><img src=x onerror=alert(1)>"
SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


# Fixtures and helpers


@pytest.fixture
def database(database, pg_dsn):
    """The shared migrated database (conftest), with a session open."""
    rows.insert_session(pg_dsn, event="Spring 10K")
    return database


async def serve(database_source, **site_options):
    display = DisplayApp(reactor, database_source, keepalive_interval=0.1)
    service = WebService(reactor, serverFromString(reactor, "tcp:0:interface=127.0.0.1"), display, **site_options)
    service.startService()
    port = await service.when_listening()
    return service, f"http://127.0.0.1:{port.getHost().port}"


@pytest_twisted.async_yield_fixture
async def base(database):
    service, url = await serve(SimpleNamespace(database=database))
    yield url
    await service.stopService()


@pytest_twisted.async_yield_fixture
async def cors_base(database):
    service, url = await serve(SimpleNamespace(database=database), cors_origins=("https://results.example.org",))
    yield url
    await service.stopService()


@pytest_twisted.async_yield_fixture
async def no_database_base():
    service, url = await serve(SimpleNamespace(database=None))
    yield url
    await service.stopService()


async def fetch(url: str, method: str = "GET", **kwargs):
    response = await treq.request(method, url, persistent=False, **kwargs)
    return response, await response.content()


async def hang_up(events, finished) -> None:
    """Leave like a closed tab, before the fixture stops the server."""
    events.hang_up = True  # the next keepalive finds the tab closed
    await finished


def header(response, name: str) -> str | None:
    values = response.headers.getRawHeaders(name)
    return values[0] if values else None


def assert_security_headers(response, what: str) -> None:
    csp = header(response, "content-security-policy")
    assert csp is not None, f"{what}: no Content-Security-Policy"
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, what
    assert "script-src 'self'" in csp and "style-src 'self'" in csp, what
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, what
    for name, value in SECURITY_HEADERS.items():
        assert header(response, name) == value, f"{what}: {name} is {header(response, name)!r}"
    assert header(response, "strict-transport-security") is None, f"{what}: HSTS over plain HTTP"
    assert header(response, "access-control-allow-origin") is None, f"{what}: CORS without configuration"


# Security headers


@pytest_twisted.ensureDeferred
async def test_every_kind_of_response_carries_the_security_headers(base):
    cases = [
        ("GET", "/", 200), ("GET", "/reads", 200), ("GET", "/sessions", 200), ("GET", "/status", 200),
        ("GET", "/roster", 200), ("GET", "/api/timing/stats", 200), ("GET", "/api/timing/recent-reads", 200),
        ("GET", "/static/display.js", 200), ("GET", "/static/site.css", 200),
        ("GET", "/static/nothing.js", 404), ("GET", "/no/such/page", 404), ("GET", "/api/timing/nothing", 404),
        ("GET", "/api/timing/recent-reads?limit=lots", 400), ("GET", "/reads?location=%00", 400),
        ("POST", "/reads", 405), ("HEAD", "/reads", 200),
    ]
    for method, path, code in cases:
        response, _ = await fetch(base + path, method)
        assert response.code == code, f"{method} {path}: {response.code}"
        assert_security_headers(response, f"{method} {path}")


@pytest_twisted.ensureDeferred
async def test_the_stream_and_refusals_carry_the_security_headers_too(base):
    response, events, finished = await open_stream(base + "/stream")
    assert_security_headers(response, "/stream")
    await hang_up(events, finished)
    refused, _ = await fetch(base + "/api/timing/stats", "POST", data=b"x" * (limits.DEFAULT_BODY_BYTES + 1))
    assert refused.code == 413
    assert_security_headers(refused, "413")


@pytest_twisted.ensureDeferred
async def test_database_unavailable_answers_carry_the_security_headers(no_database_base):
    for path in ("/", "/reads", "/api/timing/stats", "/stream"):
        response, _ = await fetch(no_database_base + path)
        assert response.code == 503, path
        assert_security_headers(response, f"503 {path}")


@pytest_twisted.ensureDeferred
async def test_hsts_only_behind_a_loopback_proxy_that_says_https(base):
    response, _ = await fetch(base + "/reads", headers={"X-Forwarded-Proto": "https"})
    assert header(response, "strict-transport-security") == "max-age=31536000"
    response, _ = await fetch(base + "/reads", headers={"X-Forwarded-Proto": "http"})
    assert header(response, "strict-transport-security") is None


def test_hsts_is_not_sent_for_a_remote_client_claiming_https_but_is_over_tls():
    from twisted.internet.address import IPv4Address

    remote = DummyRequest([b""], client=IPv4Address("TCP", "203.0.113.7", 50000))
    remote.requestHeaders.setRawHeaders(b"X-Forwarded-Proto", [b"https"])
    remote.isSecure = lambda: False
    apply_security_headers(remote, HeaderPolicy())
    assert not remote.responseHeaders.hasHeader(b"Strict-Transport-Security")
    secure = DummyRequest([b""])
    secure.isSecure = lambda: True
    apply_security_headers(secure, HeaderPolicy())
    assert secure.responseHeaders.getRawHeaders(b"Strict-Transport-Security") == [b"max-age=31536000"]


@pytest_twisted.ensureDeferred
async def test_cors_only_for_configured_origins(base, cors_base):
    response, _ = await fetch(base + "/api/timing/stats", headers={"Origin": "https://results.example.org"})
    assert header(response, "access-control-allow-origin") is None  # none configured: none allowed
    response, _ = await fetch(cors_base + "/api/timing/stats", headers={"Origin": "https://results.example.org"})
    assert header(response, "access-control-allow-origin") == "https://results.example.org"
    assert "Origin" in response.headers.getRawHeaders("vary")
    response, _ = await fetch(cors_base + "/api/timing/stats", headers={"Origin": "https://evil.example"})
    assert header(response, "access-control-allow-origin") is None


# Request bodies


def send_body_until_answered(url: str, path: str, total: int, chunked: bool = False,
                             expect_continue: bool = False) -> tuple[bytes, int]:
    """Blocking client (run in a thread): sends a ``total``-byte body as fast as the server
    takes it while watching for an answer, like a browser. Returns (the answer, bytes sent)."""
    host, port = url.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)))
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: text/csv", "Accept: application/json"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    if expect_continue:
        head.append("Expect: 100-continue")
    client.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    client.setblocking(False)
    piece = b"0123456789abcdef" * 4096  # 64 KiB
    framed = b"%x\r\n" % len(piece) + piece + b"\r\n" if chunked else piece
    answer, sent, pending = b"", 0, b""
    try:
        while True:
            wanted_write = [client] if sent < total and not expect_continue else []
            readable, writable, _ = select.select([client], wanted_write, [], 30)
            if not readable and not writable:
                raise AssertionError(f"no answer after sending {sent} bytes")
            if readable:
                data = client.recv(65536)
                if not data:
                    break
                answer += data
                if complete_response(answer):
                    break
                continue
            if not pending:
                pending = framed
            count = client.send(pending)
            pending = pending[count:]
            sent += count
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        client.close()
    return answer, sent


def complete_response(data: bytes) -> bool:
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def parse_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


class BodyCounter:
    """Counts the request-body bytes the server takes in (what it read off the socket)."""

    def __init__(self, monkeypatch) -> None:
        self.received = 0
        original = HubRequest.handleContentChunk

        def counting(request, data):
            self.received += len(data)
            return original(request, data)

        monkeypatch.setattr(HubRequest, "handleContentChunk", counting)


FIFTY_MB = 50 * 1024 * 1024


@pytest_twisted.ensureDeferred
async def test_a_50_mb_roster_upload_is_refused_with_413_before_it_is_read(base, monkeypatch):
    counter = BodyCounter(monkeypatch)
    answer, sent = await threads.deferToThread(send_body_until_answered, base, "/roster", FIFTY_MB)
    code, headers, body = parse_response(answer)
    assert code == 413
    assert headers["connection"] == "close" and headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload["error"] == "payload too large" and "5 MB" in payload["message"]
    # The answer came while the client still had most of the body to send, and the server
    # took in no more than it drops after a refusal.
    assert sent < FIFTY_MB // 2
    assert counter.received <= limits.REFUSED_BODY_DISCARD_BYTES + 256 * 1024


@pytest_twisted.ensureDeferred
async def test_a_chunked_body_without_length_is_stopped_once_past_the_limit(base, monkeypatch):
    counter = BodyCounter(monkeypatch)
    answer, sent = await threads.deferToThread(send_body_until_answered, base, "/api/timing/stats", FIFTY_MB,
                                               True)
    code, headers, body = parse_response(answer)
    assert code == 413 and "64 KB" in json.loads(body)["message"]
    assert sent < FIFTY_MB // 2
    assert counter.received <= limits.DEFAULT_BODY_BYTES + limits.REFUSED_BODY_DISCARD_BYTES + 256 * 1024


@pytest_twisted.ensureDeferred
async def test_an_oversized_body_announced_with_expect_100_continue_gets_413_not_continue(base):
    answer, sent = await threads.deferToThread(send_body_until_answered, base, "/roster", FIFTY_MB, False, True)
    assert answer.startswith(b"HTTP/1.1 413 ") and sent == 0


@pytest_twisted.ensureDeferred
async def test_an_oversized_form_post_gets_an_html_413_naming_the_limit(base):
    response, body = await fetch(base + "/roster", "POST", data=b"x" * (limits.UPLOAD_BODY_BYTES + 1),
                                 headers={"Content-Type": "text/csv", "Accept": "text/html"})
    assert response.code == 413
    assert header(response, "content-type").startswith("text/html")
    assert b"Roster files may be at most 5 MB." in body


@pytest_twisted.ensureDeferred
async def test_a_roster_within_the_limit_is_still_imported(base):
    roster = b"Bib,First Name,Last Name\n" + b"".join(b"%d,Runner,Number %d\n" % (n, n) for n in range(1, 20000))
    assert limits.DEFAULT_BODY_BYTES < len(roster) < limits.ROSTER_FILE_BYTES
    response, body = await fetch(base + "/roster", "POST",
                                 files={"file": ("roster.csv", "text/csv", io.BytesIO(roster))})
    assert response.code == 200, body[:500]
    assert b"Imported 19999 runners" in body


# Query parameters


@pytest_twisted.ensureDeferred
async def test_nul_and_control_characters_in_parameters_are_a_400_naming_the_parameter(base):
    for path, parameter in (("/api/timing/recent-reads?location=%00", "location"),
                            ("/api/timing/recent-reads?bib=10%001", "bib"),
                            ("/api/timing/recent-reads?location=finish%0d%0aSet-Cookie:x", "location"),
                            ("/api/timing/recent-reads?bib=%1b%5b2J", "bib"),
                            ("/api/timing/recent-reads?location=%c2%85", "location"),
                            ("/api/timing/recent-reads?limit=1%00", "limit"),
                            ("/stream?last_event_id=%00", "last_event_id"),
                            ("/api/timing/recent-reads?location=" + "x" * 201, "location")):
        response, body = await fetch(base + path)
        assert response.code == 400, path
        assert header(response, "content-type") == "application/json", path
        payload = json.loads(body)
        assert payload["success"] is False and payload["parameter"] == parameter, path
        assert "database" not in payload["error"] and "Traceback" not in body.decode(), path


@pytest_twisted.ensureDeferred
async def test_control_characters_in_page_parameters_are_a_400_page(base):
    for path, parameter in (("/roster?q=%00", "q"), ("/reads?location=%00", "location"),
                            ("/reads?bib=%07", "bib")):
        response, body = await fetch(base + path)
        assert response.code == 400, path
        text = body.decode("utf-8")
        assert f"{parameter}: must not contain control characters" in text, path
        assert "database unavailable" not in text.lower() and "Traceback" not in text, path


# What a controller sends is shown as text


@pytest_twisted.ensureDeferred
async def test_hostile_tags_and_locations_are_text_in_json_pages_and_the_stream(pg_dsn, base):
    _, events, finished = await open_stream(base + "/stream")
    read_id = query(pg_dsn, f"""
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT {rows.NEWEST_SESSION}, {rows.NEWEST_PARTNER}, 'hostile', 1, %s, %s, '08:01:02.35',
               '2024-05-04 08:01:02.35+00', 1, '0F2A38', 1, 'raw' RETURNING id""",
                    (HOSTILE_LOCATION, HOSTILE_TAG))[0][0]
    from tests.waiting import wait_until

    await wait_until(lambda: events.events)
    event = events.events[0]["data"]
    assert event["id"] == read_id and event["location"] == HOSTILE_LOCATION and event["bib"] == HOSTILE_TAG
    await hang_up(events, finished)

    response, body = await fetch(base + "/api/timing/recent-reads")
    assert header(response, "content-type") == "application/json"
    read = json.loads(body)["reads"][0]
    assert read["location"] == HOSTILE_LOCATION and read["bib"] == HOSTILE_TAG

    for path in ("/", "/reads", f"/reads?location={treq_quote(HOSTILE_LOCATION)}", "/status"):
        response, body = await fetch(base + path)
        assert response.code == 200, path
        page = body.decode("utf-8")
        assert HOSTILE_LOCATION not in page and HOSTILE_TAG not in page, path
        assert "<script>alert" not in page and "<img src=x" not in page, path
    response, body = await fetch(base + "/reads")
    assert "&lt;script&gt;alert(" in body.decode("utf-8")


def treq_quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
