"""The status page shows the collector's real state, end to end over real twistd, TCP and HTTP.

In the one-process setup (``twistd chronotrack-collector`` with the web layer inside it, what
``make run`` starts) the page reads the collector's figures directly; in the two-process setup
(``twistd chronotrack-display --collector-status URL``) it asks the collector's status API. Either
way a timer must see "running", the controllers connected now and the reads stored, never
"unknown".
"""

from __future__ import annotations

import re
import urllib.request

from tests.processes import CollectorProcess, DisplayProcess, start_simulator, wait_for

READS = 7


def page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode("utf-8")


def collector_card(html: str) -> dict[str, str]:
    """The figures of the status page's Collector card, by their element id."""
    return {name: value.strip() for name, value in
            re.findall(r'id="collector-([a-z-]+)"[^>]*>([^<]*)<', html)}


def connected_controller_with_reads(collector: CollectorProcess, tmp_path):
    """A simulated controller that sends READS reads and then stays connected."""
    simulator = start_simulator(collector.ctp01_port, "--locations", "finish", "--reads", str(READS),
                                "--rate", "0", "--linger", "120", "--quiet", log_path=tmp_path / "simulator.log")
    wait_for(lambda: (status := collector.status())["total_reads"] == READS and status["connections"] == 1,
             60, f"{READS} reads stored from one open connection")
    return simulator


def wait_for_card(url: str) -> dict[str, str]:
    """The card once it shows the simulator's reads (the page may be asked before the last batch)."""
    return wait_for(lambda: (card := collector_card(page(url))).get("reads") == str(READS) and card,
                    30, "the status page to show the stored reads")


def test_one_process_status_page_shows_the_running_collector_with_its_controllers_and_reads(tmp_path, pg_dsn):
    collector = CollectorProcess(tmp_path / "collector", dsn=pg_dsn, web=True).start()
    simulator = None
    try:
        simulator = connected_controller_with_reads(collector, tmp_path)
        card = wait_for_card(f"http://127.0.0.1:{collector.web_port}/status")
        assert card["state"] == "running"
        assert card["connections"] == "1"
        assert card["database"] == "connected"
        assert card["port"] == str(collector.ctp01_port)
        assert card["source"] == "this process"
        assert "unknown" not in page(f"http://127.0.0.1:{collector.web_port}/status").lower()
    finally:
        if simulator is not None:
            simulator.terminate()
            simulator.wait(30)
        collector.stop()


def test_two_process_status_page_asks_the_collectors_status_api(tmp_path, pg_dsn):
    collector = CollectorProcess(tmp_path / "collector", dsn=pg_dsn, web=False).start()
    status_url = f"http://127.0.0.1:{collector.status_port}/status"
    display = DisplayProcess(tmp_path / "display", pg_dsn, collector_status_url=status_url).start()
    simulator = None
    try:
        simulator = connected_controller_with_reads(collector, tmp_path)
        card = wait_for_card(f"{display.url}/status")
        assert card["state"] == "running"
        assert card["connections"] == "1"
        assert card["port"] == str(collector.ctp01_port)
        assert card["source"] == status_url
    finally:
        if simulator is not None:
            simulator.terminate()
            simulator.wait(30)
        display.stop()
        collector.stop()
