"""/roster/sources in a real headless Chromium, against ``twistd chronotrack-collector`` (web on)
on a real PostgreSQL, pulling from a RunSignUp stub on 127.0.0.1 that answers each page slowly:
the operator fills the RunSignUp form, the progress display follows the pull to completion
without a reload, nothing breaks the CSP, and on a 390 px phone nothing scrolls sideways.
Screenshots at 1920x1080 and 390x844 go to test-artifacts/."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor, threads

from tests import rows
from tests.browser import ensure_chromium
from tests.postgres import query
from tests.processes import CollectorProcess
from tests.stubs.registration_platforms import RUNSIGNUP_KEY, RUNSIGNUP_SECRET, RunSignUpStub, make_runners
from tests.test_web_browser import ARTIFACTS, CSP_WATCH

pytestmark = pytest.mark.browser

RUNNERS = 600  # the hub asks RunSignUp for 250 a page: 250, 250, 100
PAGE_DELAY = 0.4  # seconds the stub takes per page, so the progress display has something to follow


def slowly(handler):
    def answer_later(request):
        code, headers, body = handler(request)

        def finish():
            request.setResponseCode(code)
            for name, value in headers.items():
                request.setHeader(name.encode(), value.encode())
            request.write(body)
            request.finish()

        reactor.callLater(PAGE_DELAY, finish)
        return None

    return answer_later


def drive_browser(base: str) -> None:
    """Runs in a worker thread: Playwright's sync API must stay off the reactor's thread."""
    from playwright.sync_api import expect, sync_playwright

    from tests.browser import launch

    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                    has_touch=True)
            page.add_init_script(CSP_WATCH)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))

            def fits_the_phone() -> None:
                widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
                assert widths[0] <= widths[1], f"horizontal scroll on a 390 px phone: {widths}"

            page.goto(base + "/roster")
            page.click("text=Pull from RunSignUp, Race Roster or ChronoTrack Live")
            expect(page.locator("h1")).to_contain_text("Pull a roster")
            fits_the_phone()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "roster-sources-390x844.png"), full_page=True)

            form = page.locator("#source-runsignup form").first
            form.locator("input[name=race_id]").fill(RunSignUpStub.race_id)
            form.locator("input[name=event_id]").fill(RunSignUpStub.event_id)
            form.locator("input[name=api_key]").fill(RUNSIGNUP_KEY)
            form.locator("input[name=api_secret]").fill(RUNSIGNUP_SECRET)
            form.locator("button[type=submit]").click()

            progress = page.locator("#progress")
            expect(progress).to_be_visible()
            page.evaluate("window.__not_reloaded = true")
            expect(progress).to_have_attribute("data-status", "done")
            expect(progress.locator('[data-field="summary"]')).to_have_text("Done. 600 runners stored, 3 pages.")
            expect(progress.locator('[data-field="done-link"]')).to_be_visible()
            assert page.evaluate("window.__not_reloaded") is True  # followed by polling, not by reloading
            assert page.evaluate("document.querySelector('.import-bar').value") == 1
            expect(page.locator(".import-list li").first.locator('[data-field="badge"]')).to_have_text("done")
            expect(page.locator(".import-list li").first).to_contain_text("600 stored, 0 rejected")
            fits_the_phone()
            page.screenshot(path=str(ARTIFACTS / "roster-sources-progress-390x844.png"), full_page=True)

            page.set_viewport_size({"width": 1920, "height": 1080})
            page.reload()
            expect(page.locator(".import-list li").first).to_contain_text("done")
            page.screenshot(path=str(ARTIFACTS / "roster-sources-1920x1080.png"), full_page=True)

            page.click("text=See the roster")
            expect(page.locator("h1")).to_contain_text("600 runners")
            assert page.evaluate("window.__violations") == []
            assert errors == [], errors
        finally:
            browser.close()


@pytest_twisted.ensureDeferred
async def test_an_operator_pulls_a_runsignup_roster_and_watches_it_complete(pg_dsn, tmp_path):
    ensure_chromium()
    platform = RunSignUpStub(make_runners(RUNNERS)).install()
    route = f"/Rest/race/{RunSignUpStub.race_id}/participants"
    platform.server.routes[route] = slowly(platform.server.routes[route])
    platform.server.start()
    collector = CollectorProcess(tmp_path / "hub", dsn=pg_dsn, web=True,
                                 extra_args=("--roster-runsignup-url", platform.server.base))
    try:
        await threads.deferToThread(collector.start)  # it applies the schema
        rows.insert_session(pg_dsn, event="Spring 10K")
        base = f"http://127.0.0.1:{collector.web_port}"
        await threads.deferToThread(drive_browser, base)
    finally:
        await threads.deferToThread(collector.stop)
        await platform.server.stop()
    log = collector.log()
    assert RUNSIGNUP_KEY not in log and RUNSIGNUP_SECRET not in log
    assert query(pg_dsn, "SELECT status, pages_done, rows_done FROM roster_imports") == [("done", 3, 600)]
    for name in ("roster-sources-390x844.png", "roster-sources-progress-390x844.png",
                 "roster-sources-1920x1080.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000

