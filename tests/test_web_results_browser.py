"""The results page in a real headless Chromium, against ``twistd chronotrack-display`` as a
separate process on a real PostgreSQL: on a 390 px phone it fits without sideways scrolling,
it loads under the strict CSP with no console error, and a finish stored with SQL (as the
collector would) appears without a reload. Screenshots go to test-artifacts/."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import rows
from tests.postgres import query
from tests.test_web_browser import ARTIFACTS, CSP_WATCH, display_url, insert_read  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser

RUNNERS = [  # bib, first, last, age, gender, team, finish
    ("101", "Ada", "Lovelace", 36, "F", "Analytical Engines Running Club", "08:31:07.42"),
    ("102", "Eliud", "Kipchoge", 39, "M", "NN Running", "08:28:10.45"),
    ("103", "Grace", "Hopper", 45, "F", "Navy", "08:40:12.34"),
    ("104", "Haile", "Gebrselassie", 51, "M", None, None),  # finishes while the page is open
    ("105", "Maximiliana-Wilhelmina", "Featherstonehaugh-Cholmondeley", 38, "F", None, "08:33:02.88"),
]


def prepare_race(dsn: str) -> None:
    rows.insert_session(dsn, event="Spring 10K")
    event = query(dsn, f"SELECT {rows.NEWEST_EVENT}")[0][0]
    for bib, first, last, age, gender, team, _ in RUNNERS:
        query(dsn, """
            INSERT INTO participants (timing_event_id, timing_partner_id, bib, first_name, last_name, age, gender, team)
            SELECT id, timing_partner_id, %s, %s, %s, %s, %s, %s FROM timing_events WHERE id = %s""",
              (bib, first, last, age, gender, team, event))
    insert_read(dsn, "guntime", "start", "08:00:00.00")
    for bib, *_, finish in RUNNERS:
        if finish:
            insert_read(dsn, bib, "finish", finish)
    insert_read(dsn, "4711", "finish", "08:45:00.00")  # not in the roster


def drive_browser(base: str, dsn: str) -> None:
    """Runs in a worker thread: Playwright's sync API must stay off the reactor's thread."""
    from playwright.sync_api import expect, sync_playwright

    from tests.browser import launch

    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                    has_touch=True)
            page.add_init_script(CSP_WATCH)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
            page.on("console", lambda message: message.type in ("error", "warning")
                    and errors.append(f"console {message.type}: {message.text}"))

            response = page.goto(base + "/results")
            assert response.status == 200
            assert "unsafe-inline" not in response.headers["content-security-policy"]
            expect(page.locator("#results-rows tr")).to_have_count(5)
            expect(page.locator("#results-rows tr").first).to_contain_text("Eliud Kipchoge")
            expect(page.locator("#unknown-tags")).to_contain_text("4711")
            expect(page.locator("#results-status")).to_have_text("Live")  # the stream under connect-src

            def fits_the_phone() -> None:
                widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
                assert widths[0] <= widths[1], f"horizontal scroll on a 390 px phone: {widths}"

            fits_the_phone()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "results-390x844.png"), full_page=True)

            # A finish stored by another process shows up without a reload.
            page.evaluate("window.__not_reloaded = true")
            insert_read(dsn, "104", "finish", "08:30:00.00")
            expect(page.locator("#results-rows tr")).to_have_count(6)
            expect(page.locator("#results-rows tr").nth(1)).to_contain_text("Haile Gebrselassie")
            expect(page.locator("#results-rows tr").nth(1).locator(".r-place")).to_have_text("2")
            assert page.evaluate("window.__not_reloaded") is True
            fits_the_phone()

            # Typing a name narrows the table, and the address keeps the search.
            page.fill("input[name=q]", "hopper")
            expect(page.locator("#results-rows tr")).to_have_count(1)
            expect(page.locator("#results-rows tr")).to_contain_text("Grace Hopper")
            assert "q=hopper" in page.url
            page.fill("input[name=q]", "")
            expect(page.locator("#results-rows tr")).to_have_count(6)

            page.set_viewport_size({"width": 1920, "height": 1080})
            page.goto(base + "/results")
            expect(page.locator("#results-rows tr")).to_have_count(6)
            expect(page.locator("#results-status")).to_have_text("Live")
            page.screenshot(path=str(ARTIFACTS / "results-1920x1080.png"), full_page=True)
            assert page.evaluate("window.__violations") == []
            assert errors == [], errors
        finally:
            browser.close()


def test_results_page_fits_a_phone_runs_under_the_csp_and_shows_a_new_finish_live(display_url, pg_dsn):  # noqa: F811
    prepare_race(pg_dsn)
    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(drive_browser, display_url, pg_dsn).result(timeout=300)
    assert (ARTIFACTS / "results-390x844.png").stat().st_size > 10_000
    assert (ARTIFACTS / "results-1920x1080.png").stat().st_size > 10_000
