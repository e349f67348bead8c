"""The display designer in a real headless Chromium, against ``twistd chronotrack-display`` as a
separate process on a real PostgreSQL: a signed-in operator drags a field, nudges it with the
keyboard, changes its colour, uploads a logo and saves a template; reloading the designer
loads it again; the full-screen preview draws it with the latest finisher (a long name shrunk to
fit), the field where it was dropped. All under the strict CSP, and on a 390 px phone without sideways scrolling.
Screenshots of the designer and the preview go to test-artifacts/."""

from __future__ import annotations

import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from tests import rows
from tests.postgres import query
from tests.test_web_access import PASSWORD
from tests.test_web_browser import ARTIFACTS, CSP_WATCH, display_url, insert_read  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser

CSRF = "csrf-token-for-the-designer-browser-test"


def prepare(dsn: str, logo: Path) -> str:
    """An event with one finisher, a signed-in operator (its cookie comes back), and a logo file."""
    operator = rows.insert_operator(dsn, "ops@example.org", PASSWORD)
    rows.insert_session(dsn, event="Spring 10K")
    rows.insert_runner(dsn, "101", "Ada", "Lovelace")
    rows.insert_runner(dsn, "105", "Maximiliana-Wilhelmina", "Featherstonehaugh-Cholmondeley")
    insert_read(dsn, "guntime", "start", "08:00:00.00")
    insert_read(dsn, "101", "finish", "08:31:07.42")
    insert_read(dsn, "105", "finish", "08:33:02.88")  # the latest finisher, with a long name
    image = Image.new("RGB", (300, 120), (250, 200, 20))
    for x in range(100, 200):
        for y in range(30, 90):
            image.putpixel((x, y), (20, 40, 160))
    out = io.BytesIO()
    image.save(out, "PNG")
    logo.write_bytes(out.getvalue())
    return rows.insert_web_session(dsn, operator, CSRF)


def drive_browser(base: str, dsn: str, cookie: str, logo: Path) -> None:
    """Runs in a worker thread: Playwright's sync API must stay off the reactor's thread."""
    from playwright.sync_api import expect, sync_playwright

    from tests.browser import launch

    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(viewport={"width": 1920, "height": 1080})
            context.add_cookies([{"name": "chronotrack_session", "value": cookie, "url": base}])
            page = context.new_page()
            page.add_init_script(CSP_WATCH)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
            page.on("console", lambda message: message.type in ("error", "warning")
                    and errors.append(f"console {message.type}: {message.text}"))

            response = page.goto(base + "/designer")
            assert response.status == 200
            assert "unsafe-inline" not in response.headers["content-security-policy"]
            fields = page.locator("#canvas .chrono-field")
            expect(fields).to_have_count(2)  # a new layout starts with a name and a time
            time_field = page.locator('#canvas .chrono-field[data-kind="time"]')
            expect(time_field).to_contain_text("0:42:17.42")  # the sample runner's time

            # Drag the time field 30 % left and 40 % up: from (55, 60) to (25, 20).
            canvas_box = page.locator("#canvas").bounding_box()
            box = time_field.bounding_box()
            start_x, start_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(start_x, start_y)
            page.mouse.down()
            for step in range(1, 11):
                page.mouse.move(start_x - canvas_box["width"] * 0.30 * step / 10,
                                start_y - canvas_box["height"] * 0.40 * step / 10)
            page.mouse.up()
            expect(page.locator("#prop-x")).to_have_value("25")
            expect(page.locator("#prop-y")).to_have_value("20")
            moved = time_field.bounding_box()
            assert abs(moved["x"] - (canvas_box["x"] + canvas_box["width"] * 0.25)) < 3
            assert abs(moved["y"] - (canvas_box["y"] + canvas_box["height"] * 0.20)) < 3

            # The keyboard moves the selected field by one grid step (2.5 %), Shift resizes it (snapping to the grid).
            page.keyboard.press("ArrowRight")
            expect(page.locator("#prop-x")).to_have_value("27.5")
            page.keyboard.press("ArrowLeft")
            expect(page.locator("#prop-x")).to_have_value("25")
            page.keyboard.press("Shift+ArrowDown")
            expect(page.locator("#prop-h")).to_have_value("20")  # 18 + 2.5, snapped to the grid

            # Its colour, from the property panel.
            page.fill("#prop-color", "#ff3366")
            expect(time_field).to_have_css("color", "rgb(255, 51, 102)")

            # A logo field, and a logo uploaded from the page into it.
            page.select_option("#add-kind", "logo")
            page.click("#add-field")
            expect(fields).to_have_count(3)
            page.set_input_files("#image-file", str(logo))
            page.click("#image-upload button[type=submit]")
            expect(page.locator("#designer-status")).to_contain_text("Uploaded")
            expect(page.locator("#image-list li")).to_have_count(1)
            logo_image = page.locator('#canvas .chrono-field[data-kind="logo"] img')
            expect(logo_image).to_have_count(1)
            page.wait_for_function("document.querySelector('#canvas .chrono-field[data-kind=\"logo\"] img')"
                                   ".naturalWidth === 300")  # the served picture decodes

            page.fill("#layout-name", "Finish line")
            page.click("#layout-save")
            expect(page.locator("#designer-status")).to_contain_text("Saved")
            assert "layout=" in page.url
            layout_id = int(page.url.split("layout=")[1].split("&")[0])
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "designer-1920x1080.png"), full_page=True)

            # Stored as drawn.
            saved = query(dsn, "SELECT name, layout FROM display_layouts WHERE id = %s", (layout_id,))[0]
            layout = saved[1] if isinstance(saved[1], dict) else json.loads(saved[1])
            assert saved[0] == "Finish line"
            time_saved = next(field for field in layout["fields"] if field["kind"] == "time")
            assert (time_saved["x"], time_saved["y"], time_saved["h"], time_saved["color"]) == (25, 20, 20,
                                                                                               "#ff3366")
            logo_saved = next(field for field in layout["fields"] if field["kind"] == "logo")
            assert logo_saved["image_id"] == query(dsn, "SELECT id FROM event_images")[0][0]

            # Reloading the designer loads the template again.
            page.reload()
            expect(page.locator("#designer-status")).to_contain_text("Loaded")
            expect(page.locator("#layout-list")).to_have_value(str(layout_id))
            expect(page.locator("#layout-name")).to_have_value("Finish line")
            expect(fields).to_have_count(3)
            expect(time_field).to_have_css("color", "rgb(255, 51, 102)")
            expect(logo_image).to_have_count(1)
            reloaded = time_field.bounding_box()
            assert abs(reloaded["x"] - moved["x"]) < 2 and abs(reloaded["y"] - moved["y"]) < 2

            # Under a new name it is saved as a copy; Delete, pressed twice, removes the copy only.
            page.fill("#layout-name", "Finish copy")
            page.click("#layout-save")
            expect(page.locator("#designer-status")).to_contain_text("Saved “Finish copy”")
            expect(page.locator("#layout-list option")).to_have_count(3)  # "New layout" and the two
            page.click("#layout-delete")
            expect(page.locator("#designer-status")).to_contain_text("Press Delete again")
            assert query(dsn, "SELECT count(*) FROM display_layouts")[0][0] == 2
            page.click("#layout-delete")
            expect(page.locator("#designer-status")).to_contain_text("Deleted")
            expect(page.locator("#layout-list option")).to_have_count(2)
            assert query(dsn, "SELECT id, name FROM display_layouts") == [(layout_id, "Finish line")]

            # The full-screen preview: the latest finisher, the field where it was dropped.
            preview = page.goto(base + f"/layouts/{layout_id}/preview")
            assert preview.status == 200
            stage = page.locator("#layout-preview")
            name_field = stage.locator('.chrono-field[data-kind="name"]')
            expect(name_field).to_have_text("Maximiliana-Wilhelmina Featherstonehaugh-Cholmondeley")
            fits = "el => [el.firstChild.scrollWidth, el.firstChild.clientWidth]"
            widths = name_field.evaluate(fits)
            assert widths[0] <= widths[1] + 1, f"the long name is cut off: {widths}"  # shrunk to fit, not clipped
            shown_time = stage.locator('.chrono-field[data-kind="time"]')
            expect(shown_time).to_have_text("0:33:02.88")
            expect(shown_time).to_have_css("color", "rgb(255, 51, 102)")
            stage_box = stage.bounding_box()
            assert abs(stage_box["width"] - 1920) < 2 and abs(stage_box["height"] - 1080) < 2
            placed = shown_time.bounding_box()
            assert abs(placed["x"] - (stage_box["x"] + stage_box["width"] * 0.25)) < 3
            assert abs(placed["y"] - (stage_box["y"] + stage_box["height"] * 0.20)) < 3
            expect(stage.locator('.chrono-field[data-kind="logo"] img')).to_have_count(1)
            page.screenshot(path=str(ARTIFACTS / "layout-preview-1920x1080.png"))

            # A phone: the designer fits without sideways scrolling, the preview letterboxes.
            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(base + f"/designer?layout={layout_id}")
            expect(page.locator("#designer-status")).to_contain_text("Loaded")
            widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert widths[0] <= widths[1], f"horizontal scroll on a 390 px phone: {widths}"
            page.screenshot(path=str(ARTIFACTS / "designer-390x844.png"), full_page=True)
            page.goto(base + f"/layouts/{layout_id}/preview")
            expect(name_field).to_have_text("Maximiliana-Wilhelmina Featherstonehaugh-Cholmondeley")
            widths = name_field.evaluate(fits)
            assert widths[0] <= widths[1] + 1, f"the long name is cut off on a phone: {widths}"
            page.screenshot(path=str(ARTIFACTS / "layout-preview-390x844.png"))
            assert page.evaluate("window.__violations") == []
            assert errors == [], errors

            # A website the hub cannot reach: the hub's reason is shown, nothing is applied.
            page.goto(base + f"/designer?layout={layout_id}")
            page.fill("#brand-url", "https://race.invalid")
            page.click("#brand-form button[type=submit]")
            expect(page.locator("#brand-status")).to_contain_text(
                re.compile("could not be found|could not connect|no complete answer"), timeout=40_000)

            # A website's colours restyle the layout. The hub's answer is stubbed in the browser (the
            # endpoint itself is tested against a stub website in tests/test_outbound_brand.py).
            requests: list[dict] = []

            def brand_answer(route):
                requests.append({"body": route.request.post_data_json,
                                 "csrf": route.request.headers.get("x-csrf-token")})
                route.fulfill(status=200, content_type="application/json",
                              body=json.dumps({"success": True, "colors": ["#f5f5f0", "#1a2b3c", "#c8102e"],
                                               "fonts": ["Georgia", "Arial"], "url": "https://race.example.org/"}))

            page.route("**/api/events/*/brand-from-url", brand_answer)
            page.fill("#brand-url", "https://race.example.org")
            page.click("#brand-form button[type=submit]")
            expect(page.locator("#brand-status")).to_contain_text("Applied the colours")
            assert requests == [{"body": {"url": "https://race.example.org"}, "csrf": CSRF}]
            expect(page.locator("#canvas")).to_have_css("background-color", "rgb(245, 245, 240)")
            expect(page.locator('#canvas .chrono-field[data-kind="name"]')).to_have_css("color", "rgb(17, 17, 17)")
            expect(time_field).to_have_css("color", "rgb(26, 43, 60)")  # the next colour that reads on it
            assert "Georgia" in page.locator("#canvas").evaluate("el => getComputedStyle(el).fontFamily")
            assert page.evaluate("window.__violations") == []
        finally:
            browser.close()


def test_an_operator_designs_saves_reloads_and_previews_a_layout(display_url, pg_dsn, tmp_path):  # noqa: F811
    logo = tmp_path / "logo.png"
    cookie = prepare(pg_dsn, logo)
    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(drive_browser, display_url, pg_dsn, cookie, logo).result(timeout=300)
    for name in ("designer-1920x1080", "designer-390x844", "layout-preview-1920x1080"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000
    assert (ARTIFACTS / "layout-preview-390x844.png").stat().st_size > 2_000  # mostly the black letterbox
