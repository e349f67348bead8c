"""The live display in a real headless Chromium, against ``twistd chronotrack-display`` as a
separate process on a real PostgreSQL: a roster imported through the page, reads inserted
with SQL (as the collector would, from another process) appear on the big screen, and a
tag or location carrying ``<script>`` is shown as text and never run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.browser import ensure_chromium, launch
from tests import rows
from tests.postgres import query

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
XSS = "<script>window.__xss=1</script>"
ROSTER = ("Bib,First Name,Last Name,Age,Gender,City,State,Division,Team\n"
          "101,Ada,Lovelace,36,F,London,,F35-39,Analytical Engines\n"
          "102,Eliud,Kipchoge,39,M,Eldoret,,M35-39,NN Running\n"
          "103,Grace,Hopper,45,F,Arlington,VA,F45-49,Navy\n"
          "104,Haile,Gebrselassie,51,M,Addis Ababa,,M50-54,\n")


class DisplayProcess:
    """``twistd -n chronotrack-display`` on a free port; learns its URL from its log."""

    def __init__(self, dsn: str, workdir: Path) -> None:
        environment = {name: value for name, value in os.environ.items() if not name.startswith("CHRONOTRACK_")}
        twistd = Path(sys.executable).parent / "twistd"
        self.output: list[str] = []
        self.url: str | None = None
        self._found = threading.Event()
        self.process = subprocess.Popen(
            [str(twistd), "-n", "--pidfile=", "--logfile=-", "chronotrack-display",
             "--web", "tcp:0:interface=127.0.0.1", "--dsn", dsn, "--collector-status", "none",
             "--data-dir", str(workdir / "var")],
            cwd=workdir, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read_log(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            match = re.search(r"race display at (http://\S+?)/?$", line.strip())
            if match:
                self.url = match.group(1)
                self._found.set()
        self._found.set()

    def wait_until_serving(self, timeout: float = 60) -> str:
        if not self._found.wait(timeout) or self.url is None:
            raise AssertionError("the display did not start:\n" + "".join(self.output))
        deadline = time.monotonic() + timeout
        while True:  # the schema is ready once the JSON feed answers
            try:
                with urllib.request.urlopen(self.url + "/api/timing/database-status", timeout=5) as response:
                    if response.status == 200:
                        return self.url
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the display never reached its database:\n" + "".join(self.output))
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def insert_read(dsn: str, tag: str, location: str, read_time: str) -> int:
    return query(dsn, f"""
        INSERT INTO timing_reads (session_id, timing_partner_id, stream_id, sequence_number, location_name, tag_code,
                                  read_time, read_timestamp, lap_count, reader_id, gator_number, raw_data)
        SELECT {rows.NEWEST_SESSION}, {rows.NEWEST_PARTNER}, 'connection:browser',
               (SELECT coalesce(max(sequence_number), 0) + 1 FROM timing_reads), %s, %s, %s,
               ('2024-05-04 ' || %s || '+00')::timestamptz, 1, '0F2A38', 1, 'raw' RETURNING id""",
                 (location, tag, read_time, read_time))[0][0]


@pytest.fixture
def display_url(pg_dsn, tmp_path):
    ensure_chromium()
    display = DisplayProcess(pg_dsn, tmp_path)
    try:
        yield display.wait_until_serving()
    finally:
        display.stop()


def drive_browser(base: str, dsn: str, roster_file: Path) -> None:
    """Runs in a worker thread: Playwright's sync API must stay off the reactor's thread."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))

            # The roster, imported through its page, into the event that is on.
            rows.insert_session(dsn, event="Spring 10K")
            page.goto(base + "/roster")
            page.set_input_files("input[name=file]", str(roster_file))
            page.click("button[type=submit]")
            expect(page.locator(".notice h2")).to_have_text("Imported 4 runners")
            expect(page.locator("table.data")).to_contain_text("Kipchoge")

            # The big screen, live.
            page.goto(base + "/")
            expect(page.locator("#connection")).to_have_text("Live")
            expect(page.locator("#hero-name")).to_have_text("Waiting for runners…")

            insert_read(dsn, "guntime", "start", "08:00:00.00")
            expect(page.locator("#hero-name")).to_have_text("Race start — start 08:00:00.00")

            insert_read(dsn, "101", "finish", "08:31:07.42")
            expect(page.locator("#hero-name")).to_have_text("Ada Lovelace")
            expect(page.locator("#hero-bib")).to_have_text("101")
            expect(page.locator("#hero-location")).to_have_text("finish")
            expect(page.locator("#hero-time")).to_have_text("08:31:07.42")
            expect(page.locator("#crossings .crossing").first).to_contain_text("Race start — start 08:00:00.00")

            # A hostile tag and location: shown as text, never run.
            insert_read(dsn, XSS, XSS, "08:31:40.10")
            expect(page.locator("#hero-name")).to_have_text(f"Bib {XSS}")
            expect(page.locator("#hero-location")).to_have_text(XSS)
            assert page.evaluate("typeof window.__xss") == "undefined"
            assert page.locator("#hero script, #crossings script").count() == 0

            # Reloaded, the server-rendered page escapes it too.
            page.reload()
            expect(page.locator("#hero-name")).to_have_text(f"Bib {XSS}")
            expect(page.locator("#connection")).to_have_text("Live")
            assert page.evaluate("typeof window.__xss") == "undefined"

            # A few more crossings, for a realistic screenshot; unknown bibs show as "Bib N".
            insert_read(dsn, "4711", "10k", "08:32:15.03")
            expect(page.locator("#hero-name")).to_have_text("Bib 4711")
            insert_read(dsn, "103", "finish", "08:33:02.88")
            insert_read(dsn, "104", "finish", "08:33:19.51")
            insert_read(dsn, "102", "finish", "08:34:45.12")
            expect(page.locator("#hero-name")).to_have_text("Eliud Kipchoge")
            expect(page.locator("#crossings")).to_contain_text("Haile Gebrselassie")
            expect(page.locator("#message")).not_to_be_empty()
            page.wait_for_timeout(1000)  # let the arrival animation settle for the picture

            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "display.png"))

            # The back-office pages render in a real browser too (kept as artifacts).
            for path, heading in (("/reads", "Reads"), ("/status", "Status"), ("/sessions", "Sessions"),
                                  ("/roster", "Roster")):
                page.set_viewport_size({"width": 1440, "height": 900})
                page.goto(base + path)
                expect(page.locator("h1").first).to_contain_text(heading)
                page.screenshot(path=str(ARTIFACTS / f"{path.strip('/')}.png"), full_page=True)
            assert page.evaluate("typeof window.__xss") == "undefined"
            assert errors == [], errors
        finally:
            browser.close()


def test_runner_name_appears_live_and_script_tags_show_as_text(display_url, pg_dsn, tmp_path):
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text(ROSTER)
    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(drive_browser, display_url, pg_dsn, roster_file).result(timeout=300)
    assert (ARTIFACTS / "display.png").stat().st_size > 10_000


def watch_for_runner(base: str, ready: threading.Event, name: str) -> str:
    """Worker thread: open the big screen, signal when it is live, wait for ``name``."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(base + "/")
            expect(page.locator("#connection")).to_have_text("Live", timeout=30_000)
            ready.set()
            expect(page.locator("#hero-name")).to_have_text(name, timeout=60_000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "display-from-controller.png"))
            return page.locator("#hero-bib").inner_text()
        finally:
            browser.close()


def test_a_read_from_a_controller_over_tcp_shows_the_runners_name(pg_dsn, tmp_path):
    """The whole chain: simulator → TCP → twistd collector → PostgreSQL → /stream → Chromium."""
    from tests.processes import BIN, CollectorProcess, run_simulator

    ensure_chromium()
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text(ROSTER)
    collector = CollectorProcess(tmp_path / "collector", dsn=pg_dsn, web=True).start()
    try:
        imported = subprocess.run([str(BIN / "chronotrack"), "roster", "import", str(roster_file), "--dsn", pg_dsn,
                                   "--event", "sim-event"],
                                  capture_output=True, text=True, timeout=120)
        assert imported.returncode == 0, imported.stdout + imported.stderr
        ready = threading.Event()
        with ThreadPoolExecutor(max_workers=1) as worker:
            watching = worker.submit(watch_for_runner, f"http://127.0.0.1:{collector.web_port}",
                                     ready, "Grace Hopper")
            assert ready.wait(60), "the display never went live"
            run_simulator(collector.ctp01_port, "--locations", "finish", "--reads", "1", "--bib-start", "103",
                          "--rate", "0", "--linger", "0.3", "--quiet")
            assert watching.result(timeout=120) == "103"
    finally:
        collector.stop()


CSP_WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
                          function (event) { window.__violations.push(event.violatedDirective); });
"""


def visit_every_page_under_the_csp(base: str, dsn: str) -> None:
    """Worker thread: every page loads under the enforced policy with no console error."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.add_init_script(CSP_WATCH)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
            page.on("console", lambda message: message.type in ("error", "warning")
                    and errors.append(f"console {message.type}: {message.text}"))
            for path, heading in (("/", None), ("/reads", "Reads"), ("/sessions", "Sessions"),
                                  ("/status", "Status"), ("/roster", "Roster"),
                                  (f"/reads?location={urllib.parse.quote(XSS)}", "Reads")):
                response = page.goto(base + path)
                assert response.status == 200, path
                headers = response.headers
                assert "frame-ancestors 'none'" in headers["content-security-policy"], path
                assert "unsafe-inline" not in headers["content-security-policy"], path
                assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
                if heading is None:
                    expect(page.locator("#connection")).to_have_text("Live")  # the stream under connect-src
                    expect(page.locator("#hero-location")).to_have_text(XSS)
                else:
                    expect(page.locator("h1").first).to_contain_text(heading)
                assert page.evaluate("window.__violations") == [], (path, page.evaluate("window.__violations"))
                assert page.evaluate("typeof window.__xss") == "undefined", path
            assert errors == [], errors

            # And the policy is enforced, not just sent: an injected inline handler is refused.
            page.evaluate("""document.body.insertAdjacentHTML(
                "beforeend", '<img src="data:," onload="window.__ran = 1" onerror="window.__ran = 1">')""")
            page.wait_for_function("window.__violations.length > 0")
            assert page.evaluate("typeof window.__ran") == "undefined"
        finally:
            browser.close()


def test_every_page_works_under_the_enforced_content_security_policy(display_url, pg_dsn):
    rows.insert_session(pg_dsn, event="Spring 10K")
    insert_read(pg_dsn, XSS, XSS, "08:31:40.10")
    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(visit_every_page_under_the_csp, display_url, pg_dsn).result(timeout=300)
