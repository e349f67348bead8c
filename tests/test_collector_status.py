"""The status page's view of the collector in one process: the same report the status API gives.

Pure logic over a stand-in collector (the end-to-end check with the real twistd is
tests/test_status_page_end_to_end.py).
"""

from __future__ import annotations

from datetime import datetime

import pytest_twisted
from twisted.internet.testing import MemoryReactorClock

from chronotrack.status_api import collector_report
from web.collector_status import in_process_collector_status


class StandInCollector:
    """Answers ``status_figures`` like CollectorService, with figures the test chose."""

    def __init__(self, figures: dict) -> None:
        self.figures = figures
        self.asked = 0

    async def status_figures(self) -> dict:
        self.asked += 1
        return dict(self.figures)


FIGURES = {"tcp_port": 61611, "connections": 2, "total_reads": 417, "current_session": 9,
           "database_connected": True, "schema_ready": True}


@pytest_twisted.ensureDeferred
async def test_in_process_status_is_the_status_apis_report_with_running_and_a_timestamp():
    clock = MemoryReactorClock()
    clock.advance(1_700_000_000)
    collector = StandInCollector(FIGURES)
    status = await in_process_collector_status(clock, collector)()
    assert status == await collector_report(clock, collector)
    assert status["service"] == "timing-collector" and status["status"] == "running"
    assert {name: status[name] for name in FIGURES} == FIGURES
    assert datetime.fromisoformat(status["timestamp"]).timestamp() == 1_700_000_000


@pytest_twisted.ensureDeferred
async def test_in_process_status_asks_the_collector_afresh_each_time_and_names_no_url():
    collector = StandInCollector(FIGURES)
    status = in_process_collector_status(MemoryReactorClock(), collector)
    assert status.url is None  # the page says "this process"
    await status()
    collector.figures = {**FIGURES, "connections": 0}
    assert (await status())["connections"] == 0 and collector.asked == 2
