"""The public CTP01 port against hostile clients: real twistd, real PostgreSQL, raw sockets.

Each test pins one finding of the hostile-port probe over TCP, with the real simulator
streaming beside the attacker where the finding is "a good controller must not suffer".
No test asserts wall-clock times.
"""

from __future__ import annotations

import random
import re
import time

import pytest

from tests.test_fault_tolerance import assert_stored_exactly_once, expected_pairs
from tests.hostile_clients import RawClient, fuzz_line, garbage_line, rss_kib
from tests.postgres import query
from tests.processes import CollectorProcess, run_simulator, start_simulator, wait_for

ISO_NOW = time.strftime("%Y-%m-%dT%H:%M:%S.00")
FLOODER = "127.0.0.9"  # attackers' source address; the simulator connects from 127.0.0.1


def start_collector(tmp_path, dsn: str, *extra: str) -> CollectorProcess:
    return CollectorProcess(tmp_path, dsn=dsn, extra_args=extra).start()


@pytest.fixture
def stop_afterwards():
    started = []
    yield started.append
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.fixture
def collector(tmp_path, pg_dsn):
    process = start_collector(tmp_path, pg_dsn)
    yield process
    process.stop()


def assert_no_traceback(collector: CollectorProcess) -> None:
    log = collector.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "CRITICAL" not in log, log[-3000:]


# --- finding 1: a spoofed sequence number does not hide the real controller's reads ---------


def test_a_spoofed_sequence_jump_does_not_hide_the_real_controllers_next_reads(collector, pg_dsn):
    run_simulator(collector.ctp01_port, "--controllers", "1", "--locations", "finish", "--reads", "100",
                  "--rate", "0", "--linger", "0.3", "--quiet")
    wait_for(lambda: query(pg_dsn, "SELECT count(*) FROM timing_reads")[0][0] == 100, 30, "100 reads")

    spoofer = RawClient(collector.ctp01_port)
    spoofer.greet(connection_id="sim-0")
    spoofer.read_until(b"start~finish~101\r\n")
    spoofer.send_line(f"CT01_33~999999~finish~6666~{ISO_NOW}~0~0F2A38~1")
    wait_for(lambda: query(pg_dsn, "SELECT count(*) FROM timing_reads")[0][0] == 101, 30, "the spoofed read")
    spoofer.close()

    result = run_simulator(collector.ctp01_port, "--controllers", "1", "--locations", "finish",
                           "--reads", "200", "--rate", "0", "--linger", "0.5")
    assert "received: start~finish~101" in result.stdout, result.stdout[-2000:]
    expected = expected_pairs(("finish",), 200) | {("connection:sim-0", "finish", 999999)}
    assert_stored_exactly_once(pg_dsn, expected, timeout=60)
    assert_no_traceback(collector)


# --- findings 5 and 7: NUL and bytes that are not UTF-8 ---------------------------------------


def test_bad_bytes_are_counted_and_stored_alike_and_a_wrong_clock_read_is_stored_flagged(collector, pg_dsn):
    client = RawClient(collector.ctp01_port)
    client.greet(connection_id="nul-test")
    client.read_until(b"start~finish\r\n")
    client.send(b"CT01_33~1~finish~12\x0034~14:02:15.31~0~0F2A38~1\r\n"
                b"CT01_33~2~finish~12\xe934~14:02:15.31~0~0F2A38~1\r\n"
                b"~~~~~~~\r\n"
                b"CT01_33~-1~finish~1234~14:02:15.31~0~0F2A38~1\r\n"
                b"CT01_33~3~finish~1234~9999999999999999~0~0F2A38~1\r\n")
    client.send_line(f"CT01_33~4~finish~1234~{ISO_NOW}~0~0F2A38~1")
    client.send_line("CT01_33~5~finish~1235~1546300800~0~0F2A38~1")  # 2019: a wrong clock, a real read
    wait_for(lambda: query(pg_dsn, "SELECT count(*) FROM rejected_lines")[0][0] == 5, 30, "5 rejected rows")
    wait_for(lambda: query(pg_dsn, "SELECT count(*) FROM timing_reads")[0][0] == 2, 30, "the good reads")
    status = collector.status()
    assert status["lines_rejected"] == 5 and status["rejected_lines_not_stored"] == 0
    lines = {row[0] for row in query(pg_dsn, "SELECT line FROM rejected_lines")}  # written concurrently
    assert "CT01_33~1~finish~12\\x0034~14:02:15.31~0~0F2A38~1" in lines
    assert "CT01_33~2~finish~12\\xe934~14:02:15.31~0~0F2A38~1" in lines
    assert query(pg_dsn, "SELECT raw_data, clock_suspect FROM timing_reads ORDER BY sequence_number") == [
        (f"CT01_33~4~finish~1234~{ISO_NOW}~0~0F2A38~1", False),
        ("CT01_33~5~finish~1235~1546300800~0~0F2A38~1", True)]
    assert query(pg_dsn, "SELECT read_timestamp = '2019-01-01T00:00:00Z' FROM timing_reads"
                         " WHERE sequence_number = 5") == [(True,)]  # whole unix seconds, not ms since midnight
    assert status["reads_clock_suspect"] == 1
    assert status["rejected_by_reason"] == {"bad_sequence": 1, "bad_time": 1, "not_utf8": 1,
                                            "nul_byte": 1, "unknown_line": 1}
    client.close()
    assert_no_traceback(collector)


# --- finding 3: a 10 MB line without a newline --------------------------------------------------


def test_a_10_mb_line_without_newline_keeps_memory_bounded_and_costs_no_good_read(
        collector, pg_dsn, tmp_path, stop_afterwards):
    simulator = start_simulator(collector.ctp01_port, "--controllers", "1", "--locations", "start,finish",
                                "--reads", "1500", "--rate", "300", "--linger", "1", "--quiet",
                                log_path=tmp_path / "simulator.log")
    stop_afterwards(simulator)
    pid = collector.process.pid
    before = rss_kib(pid)
    client = RawClient(collector.ctp01_port, timeout=30)
    client.greet(connection_id="long-line")
    chunk = b"A" * (1 << 20)
    peak = before
    for _ in range(10):
        client.send(chunk)
        peak = max(peak, rss_kib(pid))
    client.send(b"\r\n")
    client.send_line("ping")
    client.read_until(b"ack~ping\r\n")  # the connection survived, and reads lines again
    peak = max(peak, rss_kib(pid))
    assert peak - before < 20 * 1024, f"RSS grew from {before} to {peak} KiB"
    status = wait_for(lambda: (s := collector.status())["rejected_by_reason"].get("too_long") and s, 30,
                      "the overlong line to be counted")
    assert status["rejected_by_reason"]["too_long"] == 1
    # Counted at once; the row is written a moment later, like every rejected line.
    wait_for(lambda: query(pg_dsn, "SELECT length(line) FROM rejected_lines") == [(1024,)], 30,
             "the overlong line's first 1024 bytes in rejected_lines")
    assert simulator.wait(120) == 0
    assert_stored_exactly_once(pg_dsn, expected_pairs(("start", "finish"), 1500))
    client.close()
    assert_no_traceback(collector)


# --- finding 4: connection caps and --allow -----------------------------------------------------


def test_connection_caps_and_allow_list_close_connections_before_reading(tmp_path, pg_dsn):
    collector = start_collector(tmp_path, pg_dsn, "--max-connections", "5", "--max-connections-per-address", "3",
                                "--allow", "127.0.0.1/32, 127.0.0.2/32")
    clients = []
    try:
        first = [RawClient(collector.ctp01_port, "127.0.0.1") for _ in range(3)]
        clients += first
        over_address = RawClient(collector.ctp01_port, "127.0.0.1")
        assert over_address.closed_by_server(), "4th connection from one address stayed open"
        clients += [RawClient(collector.ctp01_port, "127.0.0.2") for _ in range(2)]
        over_total = RawClient(collector.ctp01_port, "127.0.0.2")
        assert over_total.closed_by_server(), "6th connection stayed open"
        outsider = RawClient(collector.ctp01_port, "127.0.0.3")
        outsider.send_line("SimpleClient~0.5.0~CTP01")
        assert outsider.closed_by_server(), "a connection from outside --allow stayed open"
        assert outsider.received == b"", "the server answered a refused connection"
        for client in clients:
            assert not client.closed_by_server(0.2)

        first[0].close()
        wait_for(lambda: collector.status()["connections"] == 4, 30, "the closed connection to be released")
        admitted = RawClient(collector.ctp01_port, "127.0.0.2")
        admitted.greet(connection_id="after-release")
        admitted.read_until(b"start~finish\r\n")
        clients.append(admitted)
        status = collector.status()
        assert status["connections_refused"] == {"max_connections": 1, "max_connections_per_address": 1,
                                                 "not_allowed": 1}
        assert "refused a connection from 127.0.0.3" in collector.log()
        assert_no_traceback(collector)
    finally:
        for client in clients:
            client.close()
        collector.stop()


# --- finding 3: slowloris, a connection that trickles bytes and never greets -------------------


def test_a_client_trickling_one_byte_at_a_time_is_closed_at_the_greeting_deadline(tmp_path, pg_dsn):
    """Every byte used to reset the idle timer; the greeting deadline does not move."""
    collector = start_collector(tmp_path, pg_dsn, "--greeting-timeout", "1")
    try:
        slow = RawClient(collector.ctp01_port)
        trickled = b""
        for byte in b"SimpleClient~0.5.0~CTP01-and-on-and-on-without-a-line-end" * 10:
            if slow.closed_by_server(0.1):
                break
            slow.send(bytes([byte]))
            trickled += bytes([byte])
        else:
            raise AssertionError(f"still open after trickling {len(trickled)} bytes")
        assert collector.status()["connections"] == 0
        assert "did not greet within 1.0 s" in collector.log()
        # A controller that greets at once is not affected.
        run_simulator(collector.ctp01_port, "--locations", "finish", "--reads", "5", "--rate", "0",
                      "--linger", "0.3", "--quiet")
        wait_for(lambda: query(pg_dsn, "SELECT count(*) FROM timing_reads")[0][0] == 5, 30, "5 reads")
        assert_no_traceback(collector)
    finally:
        collector.stop()


# --- finding 2: a garbage flood beside a normal controller -------------------------------------


def test_a_garbage_flood_is_disconnected_with_bounded_rows_and_a_normal_stream_beside_it_loses_nothing(
        collector, pg_dsn, tmp_path, stop_afterwards):
    simulator = start_simulator(collector.ctp01_port, "--controllers", "1", "--locations", "start,finish",
                                "--reads", "1500", "--rate", "300", "--linger", "1", "--quiet",
                                log_path=tmp_path / "simulator.log")
    stop_afterwards(simulator)
    rng = random.Random(61611)
    payload = b"".join(garbage_line(rng, 4000) + b"\r\n" if index % 2 else garbage_line(rng) + b"\r\n"
                       for index in range(400))
    connections = closed = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        client = RawClient(collector.ctp01_port, FLOODER)
        connections += 1
        try:
            for _ in range(50):
                client.send(payload)
        except OSError:
            closed += 1  # closed by the collector mid-flood
        else:
            closed += client.closed_by_server(5)
        client.close()
    assert closed == connections, "a garbage connection was left open"
    # Closed for garbage, or refused for the --garbage-penalty that follows (from the flooder's address only).
    status = wait_for(lambda: (s := collector.status())["connections_closed_for_garbage"]
                      + s["connections_refused"].get("garbage_penalty", 0) >= connections and s,
                      30, "every flood connection to be counted as closed or refused")
    assert status["connections_closed_for_garbage"] >= 1

    def rows_and_counters_agree():
        # Counted at once; the stored sample is written a moment later.
        rows = query(pg_dsn, "SELECT count(*) FROM rejected_lines")[0][0]
        now = collector.status()
        return now["lines_rejected"] == rows + now["rejected_lines_not_stored"] and (rows, now)

    rows, status = wait_for(rows_and_counters_agree, 30, "the rejected-line rows to agree with the counters")
    assert rows <= 20 * status["connections_closed_for_garbage"]
    # a garbage line with two tildes passes for a greeting; the lines after it are unknown lines
    assert status["rejected_by_reason"].keys() <= {"bad_greeting", "too_long", "unknown_line"}
    log_lines = collector.log().count("rejected line from")
    assert log_lines <= 20 * status["connections_closed_for_garbage"]
    assert simulator.wait(120) == 0
    assert_stored_exactly_once(pg_dsn, expected_pairs(("start", "finish"), 1500))
    assert_no_traceback(collector)


# --- fuzz: random bytes and mutated valid lines beside the simulator ---------------------------


def test_fuzzing_the_port_for_ten_seconds_costs_no_simulator_read(pg_dsn, tmp_path, stop_afterwards):
    # No penalty for the fuzzer's address, so that it keeps reaching the parser for the whole run.
    collector = start_collector(tmp_path, pg_dsn, "--garbage-penalty", "0")
    try:
        fuzz_beside_the_simulator(collector, pg_dsn, tmp_path, stop_afterwards)
    finally:
        collector.stop()


def fuzz_beside_the_simulator(collector, pg_dsn, tmp_path, stop_afterwards):
    simulator = start_simulator(collector.ctp01_port, "--controllers", "1", "--locations", "start,finish",
                                "--reads", "1500", "--rate", "250", "--linger", "1", "--quiet",
                                "--reconnect-delay", "0.2", log_path=tmp_path / "simulator.log")
    stop_afterwards(simulator)
    rng = random.Random(20261126)
    sent = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        client = RawClient(collector.ctp01_port, FLOODER)
        try:
            if rng.random() < 0.7:
                client.greet(connection_id=rng.choice([None, "fuzz", "x" * 300]))
            for _ in range(rng.randint(1, 300)):
                client.send(fuzz_line(rng) + rng.choice([b"\r\n", b"\n", b"\r\n"]))
                sent += 1
        except (OSError, AssertionError):
            pass  # closed for garbage: a new connection carries on
        client.close()
    assert sent > 1000
    assert simulator.wait(120) == 0
    status = collector.status()
    assert status["status"] == "running" and status["database_connected"] is True
    simulator_reads = ("SELECT stream_id, location_name, sequence_number FROM timing_reads"
                       " WHERE stream_id = 'connection:sim-0'")
    wait_for(lambda: len(query(pg_dsn, simulator_reads)) >= 3000, 120, "every simulator read stored")
    rows = query(pg_dsn, simulator_reads)
    assert len(rows) == len(set(rows)) == 3000
    assert set(rows) == expected_pairs(("start", "finish"), 1500)
    assert collector.process.poll() is None
    assert not re.search(r"Traceback|CRITICAL|Unhandled", collector.log_path.read_text(errors="replace"))
