"""Who may do what on the web layer: sign-in, sessions, CSRF, API tokens, open and closed mode.

StubTreq in memory against a real PostgreSQL; operators and tokens are rows made in SQL with
the product's own hashing (argon2id passwords, SHA-256 token hashes). Each StubTreq keeps
its own cookies, like one browser.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet import reactor, task
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent, globalLogPublisher
from twisted.internet.address import IPv4Address
from twisted.web.test.requesthelper import DummyRequest

from chronotrack.accounts.tokens import token_hash
from tests import rows
from tests.postgres import query
from tests.test_web_routes import settle
from web.access import Access, client_address, is_secure
from web.app import DisplayApp
from web.errors import Forbidden
from web.sign_in import refuse_cross_site, safe_next
from web.stream_guard import StreamGuard, StreamRight

BASE = "http://display.test"
PASSWORD = "correct horse battery staple"
LOGIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


# Helpers


async def fetch(browser: StubTreq, method: str, path: str, **kwargs):
    response = await settle(browser, browser.request(method, BASE + path, allow_redirects=False, **kwargs))
    return response, (await settle(browser, browser.content(response))).decode("utf-8")


def location(response) -> str:
    return response.headers.getRawHeaders("location")[0]


def set_cookies(response) -> list[str]:
    return response.headers.getRawHeaders("set-cookie") or []


def session_cookie(response) -> str:
    return next(cookie for cookie in set_cookies(response) if cookie.startswith("chronotrack_session="))


def form_token(html: str) -> str:
    return LOGIN_TOKEN.search(html).group(1)


async def sign_in(browser: StubTreq, email: str, password: str = PASSWORD, headers: dict | None = None,
                  next_path: str = "/"):
    """What a browser does: load the form (its cookie and hidden token), then post it."""
    _, html = await fetch(browser, "GET", "/login", headers=headers)
    return await fetch(browser, "POST", "/login", headers=headers,
                       data={"email": email, "password": password, "csrf_token": form_token(html),
                             "next": next_path})


async def page_token(browser: StubTreq, path: str = "/roster") -> str:
    """The CSRF token a signed-in page carries in its forms."""
    _, html = await fetch(browser, "GET", path)
    return form_token(html)


def multipart(fields: dict[str, str], file_content: bytes) -> tuple[bytes, dict]:
    boundary = "chronotrackboundary"
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
             for name, value in fields.items()]
    parts.append((f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"roster.csv\"\r\n"
                  "Content-Type: text/csv\r\n\r\n").encode() + file_content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {b"Content-Type": [f"multipart/form-data; boundary={boundary}".encode()]}


def request(peer: str, headers: dict[bytes, bytes]) -> DummyRequest:
    """A plain-http request from ``peer`` with ``headers``, for the header rules alone."""
    dummy = DummyRequest([b""])
    dummy.client = IPv4Address("TCP", peer, 40000)
    dummy.isSecure = lambda: False
    for name, value in headers.items():
        dummy.requestHeaders.setRawHeaders(name, [value])
    return dummy


def log_lines(observer: EventLoggingObserver) -> list[str]:
    return [formatEvent(event) for event in observer]


@pytest.fixture
def display(database):
    return DisplayApp(reactor, SimpleNamespace(database=database), ("Welcome",))


@pytest.fixture
def new_browser(display):
    return lambda: StubTreq(display.resource())


@pytest.fixture
def operator(pg_dsn, database):
    """Closed mode: one operator of the default partner."""
    return rows.insert_operator(pg_dsn, "ada@example.com", PASSWORD)


@pytest.fixture
def log_observer():
    observer = EventLoggingObserver()
    globalLogPublisher.addObserver(observer)
    yield observer
    globalLogPublisher.removeObserver(observer)


# Signing in


@pytest_twisted.ensureDeferred
async def test_sign_in_with_the_right_password_starts_a_session_and_goes_to_next(pg_dsn, operator, new_browser):
    browser = new_browser()
    response, _ = await sign_in(browser, "Ada@Example.com", next_path="/reads?bib=101")
    assert response.code == 303 and location(response) == "/reads?bib=101"
    token = session_cookie(response).split(";", 1)[0].split("=", 1)[1]
    # Only the token's hash is stored, with a 12 hour lifetime.
    assert query(pg_dsn, """SELECT operator_id, token_hash, round(extract(epoch FROM expires_at - created_at))
                            FROM web_sessions""") == [(operator, token_hash(token), 43200)]
    response, html = await fetch(browser, "GET", "/reads")
    assert response.code == 200 and "ada@example.com" in html and "Sign out" in html


@pytest_twisted.ensureDeferred
async def test_session_cookie_is_httponly_samesite_lax_path_root_and_secure_only_over_tls(operator, new_browser):
    response, _ = await sign_in(new_browser(), "ada@example.com")
    flags = [part.strip().lower() for part in session_cookie(response).split(";")[1:]]
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags and "max-age=43200" in flags
    assert "secure" not in flags  # plain http: a Secure cookie would never come back
    # Behind the TLS proxy on this machine (StubTreq's peer is 127.0.0.1). The browser here
    # speaks plain http to the stub, so it is handed the (Secure) form cookie by hand.
    browser, tls = new_browser(), {"X-Forwarded-Proto": "https"}
    response, html = await fetch(browser, "GET", "/login", headers=tls)
    assert all("secure" in cookie.lower() for cookie in set_cookies(response))
    token = form_token(html)
    response, _ = await fetch(browser, "POST", "/login", headers=tls, cookies={"chronotrack_login_csrf": token},
                              data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token})
    flags = [part.strip().lower() for part in session_cookie(response).split(";")[1:]]
    assert "secure" in flags and "httponly" in flags and "samesite=lax" in flags


def test_forwarded_headers_count_only_from_a_proxy_on_this_machine():
    forwarded = {b"X-Forwarded-Proto": b"https", b"X-Forwarded-For": b"203.0.113.9, 198.51.100.7"}
    assert is_secure(request("127.0.0.1", forwarded))
    assert client_address(request("127.0.0.1", forwarded)) == "198.51.100.7"  # the hop our proxy added
    assert not is_secure(request("198.51.100.50", forwarded))  # anyone else may claim anything
    assert client_address(request("198.51.100.50", forwarded)) == "198.51.100.50"
    assert client_address(request("127.0.0.1", {b"X-Forwarded-For": b"not an address"})) == "127.0.0.1"


@pytest.mark.parametrize("email,password", [("ada@example.com", "wrong password!"),
                                            ("nobody@example.com", PASSWORD)])
@pytest_twisted.ensureDeferred
async def test_wrong_password_or_unknown_email_is_refused_and_logged_without_the_password(
        pg_dsn, operator, new_browser, log_observer, email, password):
    response, html = await sign_in(new_browser(), email, password)
    assert response.code == 200  # the form again, saying why
    assert "do not match" in html
    assert not any(cookie.startswith("chronotrack_session=") for cookie in set_cookies(response))
    assert query(pg_dsn, "SELECT count(*) FROM web_sessions") == [(0,)]
    lines = log_lines(log_observer)
    assert any("failed sign-in" in line and email in line for line in lines), lines
    assert not any(password in line for line in lines)


@pytest_twisted.ensureDeferred
async def test_a_disabled_operator_cannot_sign_in_and_its_sessions_stop_working(pg_dsn, operator, new_browser):
    browser = new_browser()
    response, _ = await sign_in(browser, "ada@example.com")
    assert response.code == 303
    query(pg_dsn, "UPDATE operators SET disabled_at = now()")
    response, _ = await fetch(browser, "GET", "/reads")
    assert response.code == 303 and location(response).startswith("/login")
    response, html = await sign_in(new_browser(), "ada@example.com")
    assert response.code == 200 and "do not match" in html


@pytest_twisted.ensureDeferred
async def test_an_expired_session_is_no_session(pg_dsn, operator, new_browser):
    browser = new_browser()
    await sign_in(browser, "ada@example.com")
    query(pg_dsn, "UPDATE web_sessions SET expires_at = now() - interval '1 second'")
    response, _ = await fetch(browser, "GET", "/sessions")
    assert response.code == 303 and location(response) == "/login?next=/sessions"


@pytest_twisted.ensureDeferred
async def test_repeated_failures_for_one_email_block_it_with_429_and_retry_after(operator, new_browser):
    browser = new_browser()
    codes = []
    for attempt in range(6):
        response, _ = await sign_in(browser, "ada@example.com", f"wrong password {attempt}",
                                    headers={"X-Forwarded-For": f"198.51.100.{attempt}"})  # a new address each time
        codes.append(response.code)
    assert codes == [200] * 5 + [429]
    assert int(response.headers.getRawHeaders("retry-after")[0]) > 0
    # Blocked means blocked: the right password does not get through either, from anywhere.
    response, _ = await sign_in(browser, "ada@example.com", headers={"X-Forwarded-For": "192.0.2.77"})
    assert response.code == 429


@pytest_twisted.ensureDeferred
async def test_repeated_failures_from_one_address_block_it_for_every_email(operator, new_browser):
    browser = new_browser()
    headers = {"X-Forwarded-For": "203.0.113.5"}
    for attempt in range(10):
        response, html = await sign_in(browser, f"guess{attempt}@example.com", "wrong password!", headers=headers)
        assert response.code == 200 and "do not match" in html
    response, _ = await sign_in(browser, "ada@example.com", headers=headers)
    assert response.code == 429 and response.headers.getRawHeaders("retry-after")
    response, _ = await sign_in(browser, "ada@example.com", headers={"X-Forwarded-For": "203.0.113.6"})
    assert response.code == 303  # another address still may


@pytest_twisted.ensureDeferred
async def test_sign_in_post_without_or_with_a_wrong_form_token_is_403(pg_dsn, operator, new_browser):
    browser = new_browser()
    await fetch(browser, "GET", "/login")  # the form token cookie is there, but the field is not
    response, _ = await fetch(browser, "POST", "/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert response.code == 403
    response, _ = await fetch(browser, "POST", "/login",
                              data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": "x" * 43})
    assert response.code == 403
    fresh = new_browser()  # a field but no cookie: a page on another site cannot set ours
    response, _ = await fetch(fresh, "POST", "/login",
                              data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": "y" * 43})
    assert response.code == 403
    assert query(pg_dsn, "SELECT count(*) FROM web_sessions") == [(0,)]


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "null"}])
@pytest_twisted.ensureDeferred
async def test_sign_in_posted_from_another_site_is_403(pg_dsn, operator, new_browser, headers):
    browser = new_browser()
    _, html = await fetch(browser, "GET", "/login")
    response, _ = await fetch(browser, "POST", "/login", headers=headers,
                              data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": form_token(html)})
    assert response.code == 403
    assert query(pg_dsn, "SELECT count(*) FROM web_sessions") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_same_origin_post_is_accepted(operator, new_browser):
    response, _ = await sign_in(new_browser(), "ada@example.com",
                                headers={"Origin": BASE, "Sec-Fetch-Site": "same-origin"})
    assert response.code == 303


@pytest.mark.parametrize("raw,expected", [("/reads?bib=1", "/reads?bib=1"), ("//evil.example/x", "/"),
                                          ("https://evil.example", "/"), ("/\\evil.example", "/"),
                                          ("/logout", "/"), ("", "/"), ("/a\r\nSet-Cookie: x", "/")])
def test_next_after_sign_in_is_always_a_path_on_this_site(raw, expected):
    assert safe_next(raw) == expected


@pytest_twisted.ensureDeferred
async def test_sign_out_needs_the_form_token_then_deletes_the_session(pg_dsn, operator, new_browser):
    browser = new_browser()
    await sign_in(browser, "ada@example.com")
    token = await page_token(browser)
    response, _ = await fetch(browser, "POST", "/logout", data={"csrf_token": "wrong" * 9})
    assert response.code == 403
    assert query(pg_dsn, "SELECT count(*) FROM web_sessions") == [(1,)]
    response, _ = await fetch(browser, "POST", "/logout", data={"csrf_token": token})
    assert response.code == 303 and location(response) == "/login"
    assert "max-age=0" in session_cookie(response).lower()
    assert query(pg_dsn, "SELECT count(*) FROM web_sessions") == [(0,)]
    response, _ = await fetch(browser, "GET", "/reads")
    assert response.code == 303


# CSRF on state-changing forms


@pytest_twisted.ensureDeferred
async def test_roster_upload_without_or_with_a_wrong_csrf_token_is_403_and_changes_nothing(
        pg_dsn, operator, new_browser):
    browser = new_browser()
    await sign_in(browser, "ada@example.com")
    for fields in ({}, {"csrf_token": "not-the-token-of-this-session"}):
        body, headers = multipart(fields, b"bib,first_name\n7,Mo\n")
        response, _ = await fetch(browser, "POST", "/roster", data=body, headers=headers)
        assert response.code == 403
    assert query(pg_dsn, "SELECT count(*) FROM participants") == [(0,)]
    body, headers = multipart({"csrf_token": await page_token(browser)}, b"bib,first_name\n7,Mo\n")
    response, html = await fetch(browser, "POST", "/roster", data=body, headers=headers)
    assert response.code == 200 and "Imported 1 runner<" in html
    assert query(pg_dsn, "SELECT bib FROM participants") == [("7",)]


@pytest_twisted.ensureDeferred
async def test_a_form_with_the_right_token_from_another_site_is_still_403(pg_dsn, operator, new_browser):
    browser = new_browser()
    await sign_in(browser, "ada@example.com")
    body, headers = multipart({"csrf_token": await page_token(browser)}, b"bib\n7\n")
    headers[b"Origin"] = [b"https://evil.example"]
    response, _ = await fetch(browser, "POST", "/roster", data=body, headers=headers)
    assert response.code == 403
    assert query(pg_dsn, "SELECT count(*) FROM participants") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_another_sessions_csrf_token_does_not_work(pg_dsn, operator, new_browser):
    mine, theirs = new_browser(), new_browser()
    await sign_in(mine, "ada@example.com")
    await sign_in(theirs, "ada@example.com")
    body, headers = multipart({"csrf_token": await page_token(theirs)}, b"bib\n7\n")
    response, _ = await fetch(mine, "POST", "/roster", data=body, headers=headers)
    assert response.code == 403


# API tokens


@pytest_twisted.ensureDeferred
async def test_a_good_api_token_reads_the_feeds_and_is_marked_used(pg_dsn, operator, new_browser):
    token = rows.insert_api_token(pg_dsn)
    rows.insert_read(pg_dsn, rows.insert_session(pg_dsn), "101")
    response, body = await fetch(new_browser(), "GET", "/api/timing/recent-reads",
                                 headers={"Authorization": f"Bearer {token}"})
    assert response.code == 200 and [read["bib"] for read in json.loads(body)["reads"]] == ["101"]
    assert query(pg_dsn, "SELECT last_used_at IS NOT NULL FROM api_tokens") == [(True,)]


@pytest.mark.parametrize("authorization", ["Bearer ctk_not-a-token-of-ours", "Bearer ", "Bearer " + "x" * 500,
                                           "Bearer revoked"])
@pytest_twisted.ensureDeferred
async def test_a_bad_or_revoked_token_is_a_401_json_with_www_authenticate(pg_dsn, new_browser, authorization):
    if authorization == "Bearer revoked":
        authorization = "Bearer " + rows.insert_api_token(pg_dsn, revoked=True)
    for path in ("/api/timing/recent-reads", "/api/timing/stats", "/stream"):
        response, body = await fetch(new_browser(), "GET", path, headers={"Authorization": authorization})
        assert response.code == 401, path
        assert response.headers.getRawHeaders("content-type") == ["application/json"]
        assert json.loads(body)["success"] is False and "token" in json.loads(body)["error"]
        assert response.headers.getRawHeaders("www-authenticate")[0].startswith("Bearer")


@pytest_twisted.ensureDeferred
async def test_an_api_token_can_read_but_not_change(pg_dsn, operator, new_browser):
    token = rows.insert_api_token(pg_dsn)
    body, headers = multipart({}, b"bib\n7\n")
    headers[b"Authorization"] = [f"Bearer {token}".encode()]
    response, _ = await fetch(new_browser(), "POST", "/roster", data=body, headers=headers)
    assert response.code == 403
    assert query(pg_dsn, "SELECT count(*) FROM participants") == [(0,)]


# Open and closed mode


CLOSED_PAGES = ["/", "/reads", "/sessions", "/status", "/roster", "/reads?bib=101&limit=5"]
CLOSED_FEEDS = ["/api/timing/database-status", "/api/timing/stats", "/api/timing/recent-reads",
                "/api/timing/sessions", "/stream"]


@pytest_twisted.ensureDeferred
async def test_closed_mode_sends_anonymous_pages_to_sign_in_and_feeds_answer_401(pg_dsn, operator, new_browser):
    rows.insert_read(pg_dsn, rows.insert_session(pg_dsn), "101")
    for path in CLOSED_PAGES:
        response, html = await fetch(new_browser(), "GET", path)
        assert response.code == 303, path
        assert location(response) == "/login?next=" + quote(path, safe="/"), path
        assert "101" not in html
    for path in CLOSED_FEEDS:
        response, body = await fetch(new_browser(), "GET", path)
        assert response.code == 401, path
        assert json.loads(body)["success"] is False
        assert response.headers.getRawHeaders("www-authenticate")[0].startswith("Bearer")


@pytest_twisted.ensureDeferred
async def test_closed_mode_refuses_anonymous_changes(pg_dsn, operator, new_browser):
    session = rows.insert_session(pg_dsn)
    body, headers = multipart({}, b"bib\n7\n")
    response, _ = await fetch(new_browser(), "POST", "/roster", data=body, headers=headers)
    assert response.code == 303 and location(response).startswith("/login")
    response, _ = await fetch(new_browser(), "POST", f"/sessions/{session}/close")
    assert response.code == 303 and location(response).startswith("/login")
    assert query(pg_dsn, "SELECT count(*) FROM participants") == [(0,)]
    assert query(pg_dsn, "SELECT status FROM timing_sessions") == [("active",)]


@pytest_twisted.ensureDeferred
async def test_open_mode_serves_everything_and_takes_rosters_without_an_account(pg_dsn, new_browser):
    rows.insert_read(pg_dsn, rows.insert_session(pg_dsn), "101")
    for path in CLOSED_PAGES:
        response, _ = await fetch(new_browser(), "GET", path)
        assert response.code == 200, path
    for path in CLOSED_FEEDS[:-1]:
        response, _ = await fetch(new_browser(), "GET", path)
        assert response.code == 200, path
    body, headers = multipart({}, b"bib,first_name\n7,Mo\n")
    response, _ = await fetch(new_browser(), "POST", "/roster", data=body, headers=headers)
    assert response.code == 200
    _, html = await fetch(new_browser(), "GET", "/login")
    assert "chronotrack operator add" in html


@pytest_twisted.ensureDeferred
async def test_open_mode_is_asked_of_the_database_once_per_few_seconds(pg_dsn, database):
    clock = task.Clock()
    access = Access(clock, cache_seconds=5)
    asked = []
    real = database.run_query

    def counting(sql, params=None):
        if "operators" in sql:
            asked.append(sql)
        return real(sql, params)

    database.run_query = counting
    assert await access.open_mode(database) is True
    rows.insert_operator(pg_dsn, "ada@example.com", PASSWORD)
    assert await access.open_mode(database) is True  # still the remembered answer
    assert len(asked) == 1
    clock.advance(5)
    assert await access.open_mode(database) is False
    assert len(asked) == 2


@pytest_twisted.ensureDeferred
async def test_start_up_says_pages_are_open_and_how_to_create_the_first_account(database, log_observer):
    await DisplayApp(reactor, SimpleNamespace(database=database)).database_ready(database)
    assert any("chronotrack operator add default you@example.com" in line for line in log_lines(log_observer))


@pytest_twisted.ensureDeferred
async def test_a_burst_of_parallel_guesses_for_one_email_is_checked_two_at_a_time(operator, new_browser):
    browser = new_browser()
    _, html = await fetch(browser, "GET", "/login")
    token = form_token(html)
    attempts = [browser.request("POST", BASE + "/login", allow_redirects=False,
                                headers={"X-Forwarded-For": f"198.51.100.{n}"},
                                data={"email": "ada@example.com", "password": f"guess {n}", "csrf_token": token})
                for n in range(6)]
    responses = [await settle(browser, attempt) for attempt in attempts]
    assert sorted(response.code for response in responses) == [200, 200, 429, 429, 429, 429]


@pytest_twisted.ensureDeferred
async def test_an_address_sending_wrong_tokens_is_paused_without_a_query_per_guess(pg_dsn, operator, new_browser):
    good = rows.insert_api_token(pg_dsn)
    guesser = {"X-Forwarded-For": "203.0.113.66"}
    for n in range(20):
        response, _ = await fetch(new_browser(), "GET", "/api/timing/stats",
                                  headers={**guesser, "Authorization": f"Bearer ctk_guess{n}"})
        assert response.code == 401
    response, body = await fetch(new_browser(), "GET", "/api/timing/stats",
                                 headers={**guesser, "Authorization": f"Bearer {good}"})
    assert response.code == 429 and json.loads(body)["success"] is False
    assert response.headers.getRawHeaders("retry-after")
    response, _ = await fetch(new_browser(), "GET", "/api/timing/stats",
                              headers={"X-Forwarded-For": "203.0.113.67", "Authorization": f"Bearer {good}"})
    assert response.code == 200


def test_origin_is_compared_with_the_host_the_browser_asked_for():
    refuse_cross_site(request("203.0.113.1", {b"Host": b"timing.example", b"Origin": b"https://timing.example"}))
    refuse_cross_site(request("127.0.0.1", {b"Host": b"127.0.0.1:5000", b"Origin": b"https://timing.example",
                                            b"X-Forwarded-Host": b"timing.example"}))
    for peer, headers in (
            ("203.0.113.1", {b"Host": b"timing.example", b"Origin": b"https://timing.example.evil"}),
            ("203.0.113.1", {b"Host": b"127.0.0.1:5000", b"Origin": b"https://timing.example",
                             b"X-Forwarded-Host": b"timing.example"}),  # only our own proxy may say so
            ("203.0.113.1", {b"Host": b"timing.example", b"Sec-Fetch-Site": b"cross-site"})):
        with pytest.raises(Forbidden):
            refuse_cross_site(request(peer, headers))


def test_requests_arriving_together_share_one_probe_and_one_leaving_does_not_fail_the_others():
    class SlowDatabase:
        connected = True

        def __init__(self) -> None:
            self.pending: list[Deferred] = []

        def run_query(self, sql, params=None):
            self.pending.append(Deferred())
            return self.pending[-1]

    access, slow = Access(task.Clock()), SlowDatabase()
    leaving = ensureDeferred(access.open_mode(slow))
    staying = ensureDeferred(access.open_mode(slow))
    assert len(slow.pending) == 1
    leaving.cancel()  # that browser closed its tab
    slow.pending[0].callback([(False,)])
    assert staying.result is True
    assert leaving.result.check(CancelledError)
    leaving.addErrback(lambda failure: None)


def test_streams_with_nothing_to_lose_need_no_periodic_recheck():
    clock = task.Clock()
    guard = StreamGuard(clock, lambda: None)
    open_mode, with_token = object(), object()
    guard.add(open_mode, StreamRight())
    assert not clock.getDelayedCalls()  # open mode: no timer, no queries
    guard.add(with_token, StreamRight(api_token=7))
    assert len(clock.getDelayedCalls()) == 1
    guard.remove(with_token)
    assert not clock.getDelayedCalls() and len(guard) == 1
