"""Signing in and working as an operator in a real headless Chromium, under the pages' strict CSP,
against ``twistd chronotrack-display`` in closed mode (an operator account exists): sign in
through the form, import a roster into a chosen event (the form carries the session's CSRF
token), make that event's display public and watch a runner arrive there as an anonymous
visitor, sign out. No console error on any page."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import rows
from tests.browser import ensure_chromium, launch
from tests.postgres import query
from tests.test_web_browser import ARTIFACTS, ROSTER, DisplayProcess

pytestmark = pytest.mark.browser

EMAIL = "timer@example.com"
PASSWORD = "finish line 2024!"


def wait_until_serving(display: DisplayProcess, timeout: float = 60) -> str:
    """The sign-in page answers once the schema is there (feeds need a sign-in in closed mode)."""
    if not display._found.wait(timeout) or display.url is None:
        raise AssertionError("the display did not start:\n" + "".join(display.output))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(display.url + "/login", timeout=5) as response:
                if response.status == 200:
                    return display.url
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the display never reached its database:\n" + "".join(display.output))
        time.sleep(0.1)


@pytest.fixture
def display_url(pg_dsn, tmp_path):
    ensure_chromium()
    display = DisplayProcess(pg_dsn, tmp_path)
    try:
        yield wait_until_serving(display)
    finally:
        display.stop()


def insert_read(dsn: str, session_id: int, tag: str, read_time: str) -> int:
    return rows.insert_read(dsn, session_id, tag, "finish", read_time)


def drive_browser(base: str, dsn: str, roster_file: Path, session_id: int, event_id: int) -> None:
    """Runs in a worker thread: Playwright's sync API must stay off the reactor's thread."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))

            # Closed mode (the page may remember "open" for a few seconds): the roster needs a sign-in.
            deadline = time.monotonic() + 20
            while True:
                page.goto(base + "/roster")
                if "/login" in page.url or time.monotonic() > deadline:
                    break
                page.wait_for_timeout(500)
            assert "/login?next=/roster" in page.url, page.url

            page.fill("input[name=email]", EMAIL)
            page.fill("input[name=password]", "not the password")
            page.click("form.login button[type=submit]")
            expect(page.locator(".notice-bad")).to_contain_text("do not match")
            page.fill("input[name=password]", PASSWORD)
            page.click("form.login button[type=submit]")
            page.wait_for_url(base + "/roster")
            expect(page.locator(".sign-out")).to_contain_text(EMAIL)

            # The upload form carries this session's CSRF token and names the event.
            assert len(page.locator("form.upload input[name=csrf_token]").get_attribute("value")) >= 20
            page.select_option("form.upload select[name=event]", str(event_id))
            page.set_input_files("form.upload input[name=file]", str(roster_file))
            page.click("form.upload button[type=submit]")
            expect(page.locator(".notice h2")).to_have_text("Imported 4 runners")
            expect(page.locator("table.data")).to_contain_text("Kipchoge")
            assert query(dsn, "SELECT DISTINCT timing_event_id FROM participants") == [(event_id,)]
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "roster-signed-in.png"), full_page=True)

            # Make the event's display public and open its link as an anonymous visitor.
            page.goto(base + "/sessions")
            page.locator(f'tr[data-event="{event_id}"] button').click()
            link = page.locator(f'tr[data-event="{event_id}"] a.display-link')
            expect(link).to_be_visible()
            public_path = link.get_attribute("href")
            page.screenshot(path=str(ARTIFACTS / "sessions-signed-in.png"), full_page=True)

            anonymous = browser.new_context(viewport={"width": 1920, "height": 1080})
            screen = anonymous.new_page()
            screen.on("pageerror", lambda error: errors.append(str(error)))
            screen.on("console", lambda message: message.type == "error" and errors.append(message.text))
            screen.goto(base + public_path)
            expect(screen.locator("#connection")).to_have_text("Live")
            insert_read(dsn, session_id, "102", "08:34:45.12")
            expect(screen.locator("#hero-name")).to_have_text("Eliud Kipchoge")
            screen.screenshot(path=str(ARTIFACTS / "public-display.png"))
            screen.goto(base + "/reads")  # the back office stays closed to the anonymous visitor
            assert "/login" in screen.url

            # Sign out: the session is gone, the pages closed again.
            page.click(".sign-out button[type=submit]")
            page.wait_for_url(base + "/login")
            page.goto(base + "/reads")
            assert "/login?next=/reads" in page.url
            assert query(dsn, "SELECT count(*) FROM web_sessions") == [(0,)]
            assert errors == [], errors
        finally:
            browser.close()


def test_an_operator_signs_in_uploads_a_roster_and_publishes_a_display(display_url, pg_dsn, tmp_path):
    rows.insert_operator(pg_dsn, EMAIL, PASSWORD)
    rows.insert_session(pg_dsn, "Old race", "Winter 5K", status="closed")
    session_id = rows.insert_session(pg_dsn, "Race day", "Spring 10K")
    event_id = rows.event_of_session(pg_dsn, session_id)
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text(ROSTER)
    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(drive_browser, display_url, pg_dsn, roster_file, session_id, event_id).result(timeout=300)
