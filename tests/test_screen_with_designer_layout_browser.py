"""A template made in the display designer, used by a finish screen, in a real headless Chromium
against the real ``twistd chronotrack-collector`` (web on the same reactor) on a real PostgreSQL,
fed by the controller simulator over CTP01/TCP:

the operator moves the time field and colours the name in /designer and saves the template, picks
it for a screen on /screens, and the open screen draws the next finisher with that template: the
name in the chosen colour, the time where it was dropped, the event's logo image in its field.
Screenshots of the screen at 1920x1080 and 390x844 go to test-artifacts/.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from tests.browser import ensure_chromium, launch
from tests.postgres import query
from tests.processes import CollectorProcess
from tests.rows import insert_event, insert_runner
from tests.test_display_screens_browser import fits_the_phone, simulate
from tests.test_web_browser import ARTIFACTS, CSP_WATCH

pytestmark = pytest.mark.browser

BIB = 2024


def a_logo(path: Path) -> Path:
    image = Image.new("RGB", (240, 120), (200, 16, 46))
    out = io.BytesIO()
    image.save(out, "PNG")
    path.write_bytes(out.getvalue())
    return path


def drive_browser(base: str, port: int, event: int, logo: Path) -> None:
    """Runs in a worker thread: Playwright's sync API must stay off the reactor's thread."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            errors: list[str] = []

            def new_page():
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                page.add_init_script(CSP_WATCH)
                page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
                page.on("console", lambda message: message.type == "error"
                        and errors.append(f"console error: {message.text}"))
                return page

            # The designer: colour the name, move the time to the top left, add the logo, save.
            designer = new_page()
            designer.goto(f"{base}/designer?event={event}")
            name_field = designer.locator('#canvas .chrono-field[data-kind="name"]')
            time_field = designer.locator('#canvas .chrono-field[data-kind="time"]')
            name_field.click()
            designer.fill("#prop-color", "#22cc88")
            time_field.click()
            designer.fill("#prop-x", "5")
            designer.fill("#prop-y", "5")
            designer.select_option("#add-kind", "logo")
            designer.click("#add-field")
            designer.set_input_files("#image-file", str(logo))
            designer.click("#image-upload button[type=submit]")
            expect(designer.locator("#image-list li")).to_have_count(1)
            expect(designer.locator('#canvas .chrono-field[data-kind="logo"] img')).to_have_count(1)
            designer.fill("#layout-name", "Sponsor finish")
            designer.click("#layout-save")
            expect(designer.locator("#designer-status")).to_contain_text("Saved")

            # The screens page offers the saved template by name.
            operator = new_page()
            operator.goto(f"{base}/screens?event={event}")
            form = operator.locator("#add-screen")
            form.locator("input[name=name]").fill("Finish with template")
            form.locator("input[name=hold_seconds]").fill("0.5")
            form.locator("select[name=layout_id]").select_option(label="Sponsor finish")
            form.locator("button[type=submit]").click()
            link = operator.locator(".screen-item .display-link").first
            expect(link).to_contain_text("/screen/")

            screen = new_page()
            screen.goto(base + link.get_attribute("href"))
            expect(screen.locator("#connection")).to_have_text("Live")
            simulate(port, "finish", 1, 600.0, bib_start=BIB, connection="template-finish")

            panel = screen.locator("#layout-panel")
            expect(panel).to_be_visible()
            shown_name = panel.locator('.chrono-field[data-kind="name"]')
            expect(shown_name).to_have_text("Grete Waitz")
            expect(shown_name).to_have_css("color", "rgb(34, 204, 136)")
            # Sized in the panel's container units: readable, not collapsed to nothing (a panel
            # without a definite height once drew every text at 0 px).
            name_px = shown_name.evaluate("element => parseFloat(getComputedStyle(element).fontSize)")
            assert name_px >= 0.04 * 1080, f"the name is drawn at {name_px} px"
            shown_time = panel.locator('.chrono-field[data-kind="time"]')
            expect(shown_time).to_have_text("0:10:00.00")
            stage, placed = panel.bounding_box(), shown_time.bounding_box()
            assert abs(placed["x"] - (stage["x"] + stage["width"] * 0.05)) < 3
            assert abs(placed["y"] - (stage["y"] + stage["height"] * 0.05)) < 3
            logo_image = panel.locator('.chrono-field[data-kind="logo"] img')
            expect(logo_image).to_have_count(1)
            for _ in range(100):  # the uploaded picture is served and decodes
                if logo_image.evaluate("img => img.complete && img.naturalWidth") == 240:
                    break
                screen.wait_for_timeout(100)
            assert logo_image.evaluate("img => img.naturalWidth") == 240
            ARTIFACTS.mkdir(exist_ok=True)
            screen.screenshot(path=str(ARTIFACTS / "screen-with-template-1920x1080.png"))
            screen.set_viewport_size({"width": 390, "height": 844})
            screen.wait_for_timeout(300)
            fits_the_phone(screen)
            screen.screenshot(path=str(ARTIFACTS / "screen-with-template-390x844.png"), full_page=True)
            for page in (designer, operator, screen):
                assert page.evaluate("window.__violations") == []
            assert errors == [], errors
        finally:
            browser.close()


def test_a_template_saved_in_the_designer_draws_the_finishers_on_the_screen_that_uses_it(tmp_path, pg_dsn):
    ensure_chromium()
    collector = CollectorProcess(tmp_path, dsn=pg_dsn, web=True).start()
    try:
        event = insert_event(pg_dsn, "sim-event", "Fjord Marathon")
        insert_runner(pg_dsn, str(BIB), "Grete", "Waitz", event_id=event)
        base = f"http://127.0.0.1:{collector.web_port}"
        with ThreadPoolExecutor(max_workers=1) as worker:
            worker.submit(drive_browser, base, collector.ctp01_port, event, a_logo(tmp_path / "logo.png")).result(
                timeout=300)
        screen_layout = query(pg_dsn, "SELECT layout_id FROM display_screens WHERE name = 'Finish with template'")
        assert screen_layout == query(pg_dsn, "SELECT id FROM display_layouts WHERE name = 'Sponsor finish'")
    finally:
        collector.stop()
