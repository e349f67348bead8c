"""Every page on a 390 px phone and on a 1080p screen, in a real headless Chromium.

The hub as ``make run`` starts it (``twistd chronotrack-collector`` with the web layer inside),
a simulated controller still connected, a roster with a very long name, city and team, a mat
with a very long location name and a chip with no roster entry. Signed in as an operator, the
test visits every page in ``PAGES`` at 1920x1080 and 390x844 and checks that the page itself
never scrolls sideways (a table may scroll inside its own box), that nothing is written to the
console, and that the text is not set too small to read outdoors. Each page is kept as
``test-artifacts/<page>-<width>x<height>.png`` for a person to look at.

To add a page (another branch's new screen), add one ``Screen`` to ``PAGES``.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests import rows
from tests.browser import ensure_chromium, launch
from tests.postgres import query
from tests.processes import BIN, CollectorProcess, free_port, start_simulator, wait_for
from tests.test_web_browser import ARTIFACTS, DisplayProcess

pytestmark = pytest.mark.browser

EMAIL = "timer@example.com"
PASSWORD = "finish line 2024!"

LONG_LOCATION = "Mile-13-Relay-Exchange-Beside-The-Old-Harbour-Lighthouse-North-Car-Park"
LONG_EVENT = "The Grand Annual Cross-Country Charity Half Marathon, Fun Run and Family Festival 2024"
LONG_TAG = "058003700001ABCDEF1234567890FEDCBA"
LOCATIONS = ("start", "finish", "HarbourRelay13km")  # CTP01 allows 16 characters; LONG_LOCATION comes by SQL
READS_PER_LOCATION = 12
RUNNERS = 12
LONG_LAST_NAME = "Featherstonehaugh-Cholmondeley-Wolfeschlegelsteinhausenberger"
ROSTER = "\n".join([
    "Bib,First Name,Last Name,Age,Gender,City,State,Division,Team",
    f"1000,Maximiliana-Josephine-Alexandrina,{LONG_LAST_NAME},"
    "42,F,Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch,,F40-44,"
    "The Extraordinarily Long-Named Harbour Lighthouse Running and Triathlon Club",
    *(f"{1000 + n},Runner{n},Surname{n},{20 + n},{'MF'[n % 2]},Springfield,IL,{'MF'[n % 2]}20-29,"
      for n in range(1, RUNNERS)),
]) + "\n"

PHONE = {"width": 390, "height": 844}
FULL_HD = {"width": 1920, "height": 1080}
VIEWPORTS = (FULL_HD, PHONE)
SMALLEST_TEXT_PX = 12  # nothing a timer has to read is set smaller than this


@dataclass(frozen=True)
class Screen:
    """One page to look at. ``path`` may name ``{display}``, the public display code."""

    name: str
    path: str
    heading: str
    signed_in: bool = True
    status: int = 200
    open: str | None = None  # a selector clicked first, e.g. to unfold a <details>
    shows: str | None = None  # text the page must show: the long values are really on it


PAGES = [
    Screen("login", "/login", "Sign in", signed_in=False),
    Screen("reads", "/reads", "Reads", shows=LONG_LAST_NAME),
    Screen("reads-of-a-location", f"/reads?location={LONG_LOCATION}", "Reads", shows=LONG_LAST_NAME),
    Screen("sessions", "/sessions", "Sessions", shows=LONG_EVENT),
    Screen("status", "/status", "Status", shows=LONG_LOCATION),
    Screen("roster", "/roster", "Roster", shows=LONG_LAST_NAME),
    Screen("roster-search", "/roster?q=Featherstonehaugh", "Roster", shows=LONG_LAST_NAME),
    Screen("results", "/results", "Results", shows=LONG_LAST_NAME),
    Screen("results-settings", "/results", "Results", open="#settings summary", shows="Save settings"),
    Screen("results-public", "/results?display={display}", "Results", signed_in=False, shows=LONG_TAG),
    Screen("designer", "/designer", "Display designer"),
    Screen("roster-sources", "/roster/sources", "Pull a roster"),
    Screen("error-not-found", "/no-such-page", "404", status=404),
    Screen("error-bad-request", "/reads?limit=lots", "400", status=400),
    Screen("display", "/", ""),
    Screen("display-public", "/display/{display}", "", signed_in=False),
    Screen("screens", "/screens", "Screens"),
    Screen("announcer", "/announcer", "About to arrive"),
]

# Served by a display whose database is down: the page a timer sees during an outage.
UNAVAILABLE_PAGES = [
    Screen("unavailable", "/reads", "Database unavailable", signed_in=False, status=503),
]

MEASURE = """() => {
  const small = [];
  for (const element of document.body.querySelectorAll("*")) {
    if (element.closest("svg")) continue;  // chart labels scale with the chart
    const own = Array.from(element.childNodes).some(node => node.nodeType === 3 && node.textContent.trim());
    if (!own || !element.getClientRects().length) continue;
    const size = parseFloat(getComputedStyle(element).fontSize);
    if (size < %d) small.push(element.tagName + "." + element.className + " " + size + "px");
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, small: small};
}""" % SMALLEST_TEXT_PX


def expected_console_error(screen: Screen, text: str) -> bool:
    """Chromium reports a page answered with an error status as a console error: that one is meant."""
    return screen.status != 200 and f"status of {screen.status}" in text


def look_at(browser, base: str, screens: list[Screen], storage_state, display_code: str) -> list[str]:
    """Visit ``screens`` at every viewport; returns what is wrong (empty when all is well)."""
    from playwright.sync_api import expect

    problems: list[str] = []
    for viewport in VIEWPORTS:
        signed_in = browser.new_context(viewport=viewport, storage_state=storage_state)
        anonymous = browser.new_context(viewport=viewport)
        try:
            for screen in screens:
                page = (signed_in if screen.signed_in else anonymous).new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
                page.on("console", lambda message: message.type == "error" and errors.append(message.text))
                response = page.goto(base + screen.path.format(display=display_code))
                label = f"{screen.name} at {viewport['width']}x{viewport['height']}"
                if response.status != screen.status:
                    problems.append(f"{label}: HTTP {response.status}, expected {screen.status}")
                expect(page.locator("h1").first).to_contain_text(screen.heading)
                if screen.shows:
                    expect(page.locator("main")).to_contain_text(screen.shows)
                if screen.open:
                    page.click(screen.open)
                page.wait_for_load_state("networkidle")
                figures = page.evaluate(MEASURE)
                if figures["scrollWidth"] > figures["innerWidth"]:
                    problems.append(f"{label}: scrolls sideways ({figures['scrollWidth']} px wide "
                                    f"in a {figures['innerWidth']} px window)")
                if figures["small"]:
                    problems.append(f"{label}: text smaller than {SMALLEST_TEXT_PX} px: {figures['small'][:5]}")
                unexpected = [error for error in errors if not expected_console_error(screen, error)]
                if unexpected:
                    problems.append(f"{label}: console errors {unexpected}")
                page.screenshot(path=str(ARTIFACTS / f"{screen.name}-{viewport['width']}x{viewport['height']}.png"),
                                full_page=True)
                page.close()
        finally:
            signed_in.close()
            anonymous.close()
    return problems


def drive_browser(base: str, unavailable_base: str, event_id: int) -> list[str]:
    """Runs in a worker thread: Playwright's sync API must stay off the reactor's thread."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            operator = browser.new_context(viewport=FULL_HD)
            page = operator.new_page()
            page.goto(base + "/login?next=/sessions")
            page.fill("input[name=email]", EMAIL)
            page.fill("input[name=password]", PASSWORD)
            page.click("form.login button[type=submit]")
            page.wait_for_url(base + "/sessions")
            # The operator makes the event's display public, for the spectators' pages.
            page.locator(f'tr[data-event="{event_id}"] button').click()
            link = page.locator(f'tr[data-event="{event_id}"] a.display-link')
            expect(link).to_be_visible()
            display_code = link.get_attribute("href").rsplit("/", 1)[-1]
            storage_state = operator.storage_state()
            operator.close()
            return (look_at(browser, base, PAGES, storage_state, display_code)
                    + look_at(browser, unavailable_base, UNAVAILABLE_PAGES, None, display_code))
        finally:
            browser.close()


def test_every_page_fits_a_phone_and_a_1080p_screen_without_sideways_scrolling(pg_dsn, tmp_path):
    ensure_chromium()
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text(ROSTER)
    collector = CollectorProcess(tmp_path / "collector", dsn=pg_dsn, web=True).start()
    # A display whose database never answers: nothing listens on that port.
    (tmp_path / "outage").mkdir()
    outage = DisplayProcess(f"host=127.0.0.1 port={free_port()} dbname=none user=none connect_timeout=1",
                            tmp_path / "outage")
    simulator = None
    try:
        rows.insert_operator(pg_dsn, EMAIL, PASSWORD)  # pages now need a sign-in (noticed within 5 s)
        imported = subprocess.run([str(BIN / "chronotrack"), "roster", "import", str(roster_file), "--dsn", pg_dsn,
                                   "--event", "sim-event"], capture_output=True, text=True, timeout=120)
        assert imported.returncode == 0, imported.stdout + imported.stderr
        simulator = start_simulator(
            collector.ctp01_port, "--locations", ",".join(LOCATIONS), "--reads", str(READS_PER_LOCATION),
            "--bib-count", str(RUNNERS), "--gun-time", "--rate", "0", "--linger", "600",
            "--event-name", LONG_EVENT, "--quiet", log_path=tmp_path / "simulator.log")
        expected = len(LOCATIONS) * (READS_PER_LOCATION + 1)  # and a gun-time read per mat
        try:
            wait_for(lambda: simulator.poll() is None and collector.status()["total_reads"] == expected, 60,
                     f"{expected} reads stored")
        except AssertionError as error:
            raise AssertionError(f"{error}: {collector.status()}\n{(tmp_path / 'simulator.log').read_text()}"
                                 f"\n{collector.log()[-3000:]}") from None
        session_id, event_id = query(pg_dsn, "SELECT id, timing_event_id FROM timing_sessions")[0]
        rows.insert_read(pg_dsn, session_id, LONG_TAG, "finish", "23:59:59.99")  # a chip not in the roster
        rows.insert_read(pg_dsn, session_id, "1000", LONG_LOCATION, "23:59:59.98")  # written by another tool
        assert outage._found.wait(60) and outage.url, "".join(outage.output)

        with ThreadPoolExecutor(max_workers=1) as worker:
            problems = worker.submit(drive_browser, f"http://127.0.0.1:{collector.web_port}",
                                     outage.url, event_id).result(timeout=600)
        assert problems == [], "\n".join(problems)
        for screen in PAGES + UNAVAILABLE_PAGES:
            for viewport in VIEWPORTS:
                shot = ARTIFACTS / f"{screen.name}-{viewport['width']}x{viewport['height']}.png"
                assert shot.stat().st_size > 5_000, shot
    finally:
        if simulator is not None:
            simulator.terminate()
            simulator.wait(30)
        outage.stop()
        collector.stop()
