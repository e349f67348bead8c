"""Issue 3 end to end: reads sent by a controller over TCP reach /stream, in one process or two."""

from __future__ import annotations


from tests.postgres import query
from tests.rows import insert_event, insert_runner
from tests.processes import CollectorProcess, DisplayProcess, EventStream, get_json, run_simulator, wait_for


def add_runner(dsn: str, bib: str, first: str, last: str) -> None:
    """The runner in the roster of the simulator's event (its session opens when it connects)."""
    event_id = insert_event(dsn, "sim-event")
    insert_runner(dsn, bib, first, last, event_id=event_id)


def test_a_read_sent_over_tcp_arrives_on_the_stream_of_the_same_process(tmp_path, pg_dsn):
    collector = CollectorProcess(tmp_path, dsn=pg_dsn, web=True).start()
    try:
        add_runner(pg_dsn, "1000", "Ada", "Lovelace")
        stream = EventStream(f"http://127.0.0.1:{collector.web_port}/stream")
        assert stream.content_type.startswith("text/event-stream")
        run_simulator(collector.ctp01_port, "--locations", "finish", "--reads", "3", "--bib-start", "1000",
                      "--rate", "0", "--linger", "0.3", "--quiet")
        events = stream.events(3)
        stream.close()
        ids = [row[0] for row in query(pg_dsn, "SELECT id FROM timing_reads ORDER BY id")]
        assert [event["id"] for event in events] == ids
        first = events[0]["data"]
        assert first["bib"] == "1000" and first["name"] == "Ada Lovelace"
        assert first["location"] == "finish" and first["gun_time"] is False
        assert {"time", "lap", "reader", "gator", "timestamp"} <= set(first)
        assert events[1]["data"]["name"] is None and events[1]["data"]["bib"] == "1001"
    finally:
        collector.stop()


def test_collector_and_display_as_two_processes_share_reads_through_the_database(tmp_path, pg_dsn):
    collector = CollectorProcess(tmp_path / "collector", dsn=pg_dsn, web=False).start()
    display = DisplayProcess(tmp_path / "display", pg_dsn,
                             collector_status_url=f"http://127.0.0.1:{collector.status_port}/status").start()
    try:
        stream = EventStream(f"{display.url}/stream")
        run_simulator(collector.ctp01_port, "--locations", "start,finish", "--reads", "5", "--gun-time",
                      "--rate", "0", "--linger", "0.3", "--quiet")
        events = stream.events(12)
        stream.close()
        assert len({event["id"] for event in events}) == 12
        assert sum(event["data"]["gun_time"] for event in events) == 2
        stats = get_json(f"{display.url}/api/timing/stats")
        assert stats["total_reads"] == 12
        recent = get_json(f"{display.url}/api/timing/recent-reads?limit=5")
        assert recent["success"] is True and len(recent["reads"]) == 5
    finally:
        display.stop()
        collector.stop()


def test_a_reconnecting_browser_gets_the_reads_it_missed_with_last_event_id(tmp_path, pg_dsn):
    collector = CollectorProcess(tmp_path, dsn=pg_dsn, web=True).start()
    try:
        run_simulator(collector.ctp01_port, "--locations", "finish", "--reads", "20", "--rate", "0",
                      "--linger", "0.3", "--quiet")
        wait_for(lambda: query(pg_dsn, "SELECT count(*) FROM timing_reads")[0][0] == 20, 30, "20 reads")
        ids = [row[0] for row in query(pg_dsn, "SELECT id FROM timing_reads ORDER BY id")]
        stream = EventStream(f"http://127.0.0.1:{collector.web_port}/stream", last_event_id=ids[11])
        missed = stream.events(8)
        stream.close()
        assert [event["id"] for event in missed] == ids[12:]
    finally:
        collector.stop()


def test_display_on_a_taken_port_exits_with_a_clear_error(tmp_path, pg_dsn):
    import subprocess

    collector = CollectorProcess(tmp_path / "collector", dsn=pg_dsn, web=True).start()
    try:
        display = DisplayProcess(tmp_path / "display", pg_dsn)
        display.web_port = collector.web_port
        result = subprocess.run(display.command(), capture_output=True, text=True, timeout=60,
                                cwd=display.work_dir)
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert f"cannot listen on tcp:{collector.web_port}:interface=127.0.0.1 for the race display" in output
        assert "Traceback" not in output
    finally:
        collector.stop()
