"""Scale-out: two collectors on one PostgreSQL, controllers spread across both and moving.

Real twistd twice (same --dsn, a data directory each), simulators over TCP. Two
controllers stay on each collector; two more go through a small TCP relay that sends each
new connection to the other collector, so when they drop mid-stream they come back on the
other one, which must resume them from the shared database (``start~<loc>~<next>``), not
replay from 1. Both collectors are restarted once while reads flow. At the end every read
is in timing_reads exactly once.
"""

from __future__ import annotations

import re
import signal
import socket
import threading
import time

import pytest

from chronotrack.simulator import SimulatorConfig, build_session
from tests.postgres import query
from tests.processes import CollectorProcess, get_json, start_simulator, wait_for
from tests.test_metrics import scrape, value

LOCATIONS = ("start", "finish")
READS = 500  # per location per controller: 6 controllers x 2 locations x 500 = 6000 reads
RATE = "40"  # reads per second per location: about 12 s of streaming, long enough to restart both


class Relay:
    """A TCP relay: the n-th connection goes to ``targets[(first + n) % 2]``, or to the other
    target when that one is not ready (a collector restarting).

    Ready means /status says the database is connected and the schema in place, as a load
    balancer checking readiness would: a collector still starting answers a controller from
    memory only, with a bare ``start`` (see the report of this test's commit).
    """

    def __init__(self, targets: list[CollectorProcess], first: int = 0) -> None:
        self.targets = targets
        self.first = first
        self.routes: list[int] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @staticmethod
    def _ready(target: CollectorProcess) -> bool:
        try:
            status = get_json(f"http://127.0.0.1:{target.status_port}/status", timeout=1)
        except (OSError, ValueError):
            return False
        return bool(status.get("database_connected") and status.get("schema_ready"))

    def _connect(self) -> socket.socket | None:
        turn = self.first + len(self.routes)
        order = [self.targets[(turn + step) % len(self.targets)] for step in range(len(self.targets))]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self._closed:
            for target in order:
                if not self._ready(target):
                    continue
                try:
                    upstream = socket.create_connection(("127.0.0.1", target.ctp01_port), timeout=2)
                except OSError:
                    continue
                upstream.settimeout(None)
                self.routes.append(target.ctp01_port)
                return upstream
            time.sleep(0.1)
        return None

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except (socket.timeout, OSError):
                continue
            upstream = self._connect()
            if upstream is None:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink, client, upstream), daemon=True).start()

    @staticmethod
    def _pump(source, sink, *both) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in both:  # one side gone: the whole relayed connection ends, as a direct one would
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def close(self) -> None:
        self._closed = True
        self._thread.join(2)
        self._server.close()


def expected_reads(prefix: str, controllers: int) -> set[tuple[str, str, int]]:
    config = SimulatorConfig(locations=LOCATIONS, reads=READS)
    return {(f"connection:{prefix}-{index}", location, read.sequence_number)
            for index in range(controllers)
            for location, reads in build_session(config, index).items() for read in reads}


def simulator(port: int, prefix: str, controllers: int, log_path, *faults: str):
    return start_simulator(port, "--connection-id", prefix, "--controllers", str(controllers),
                           "--locations", ",".join(LOCATIONS), "--reads", str(READS), "--rate", RATE,
                           "--reconnect-delay", "0.3", "--connect-retries", "-1", "--linger", "1",
                           *faults, log_path=log_path)


@pytest.fixture
def collectors(tmp_path, pg_dsn):
    pair = [CollectorProcess(tmp_path / name, dsn=pg_dsn,
                             extra_args=("--ping-interval", "1", "--idle-timeout", "3"))
            for name in ("one", "two")]
    yield pair
    for collector in pair:
        if collector.process is not None and collector.process.poll() is None:
            collector.stop()


def test_two_collectors_share_the_load_resume_each_others_streams_and_store_every_read_once(
        collectors, pg_dsn, tmp_path):
    started = time.monotonic()
    one, two = collectors
    one.start()
    two.start()
    relays = [Relay([one, two], first=0), Relay([one, two], first=1)]
    runs = {
        "a": simulator(one.ctp01_port, "a", 2, tmp_path / "a.log"),
        "b": simulator(two.ctp01_port, "b", 2, tmp_path / "b.log"),
        # Movers: each drops cleanly after 300 reads and aborts (RST) after 700; every new
        # connection is relayed to the other collector.
        "m": simulator(relays[0].port, "m", 1, tmp_path / "m.log", "--drop-after", "300", "--abort-after", "700"),
        "n": simulator(relays[1].port, "n", 1, tmp_path / "n.log", "--drop-after", "300", "--abort-after", "700"),
    }
    try:
        wait_for(lambda: query(pg_dsn, "SELECT count(DISTINCT stream_id) FROM timing_reads"
                                       " WHERE stream_id IN ('connection:m-0', 'connection:n-0')")[0][0] == 2
                 and query(pg_dsn, "SELECT count(*) FROM timing_reads")[0][0] > 600, 30, "reads under way")
        for collector in (one, two):  # a restart each, while reads flow
            assert collector.stop() in (0, -signal.SIGTERM), collector.log()
            collector.start()
        for name, process in runs.items():
            assert process.wait(90) == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
    finally:
        for process in runs.values():
            if process.poll() is None:
                process.kill()
        for relay in relays:
            relay.close()

    expected = expected_reads("a", 2) | expected_reads("b", 2) | expected_reads("m", 1) | expected_reads("n", 1)
    assert len(expected) == 6 * 2 * READS
    wait_for(lambda: query(pg_dsn, "SELECT count(*) FROM timing_reads")[0][0] >= len(expected), 60,
             f"{len(expected)} reads stored")
    rows = query(pg_dsn, "SELECT stream_id, location_name, sequence_number FROM timing_reads")
    assert len(rows) == len(set(rows)), "a read was stored twice"
    assert set(rows) == expected, (f"missing {sorted(expected - set(rows))[:5]}, "
                                   f"unexpected {sorted(set(rows) - expected)[:5]}")
    assert query(pg_dsn, "SELECT count(*) FROM timing_sessions") == [(1,)]

    # Each mover reached both collectors, and came back resumed, never replayed from 1.
    for name, relay in zip(("m", "n"), relays):
        assert {one.ctp01_port, two.ctp01_port} <= set(relay.routes), (name, relay.routes)
        output = (tmp_path / f"{name}.log").read_text()
        commands = re.findall(r"controller 0 received: (start\S*)", output)
        first, later = commands[:2], commands[2:]
        assert sorted(first) == ["start~finish", "start~start"], commands
        assert later, f"{name} never reconnected: {output[-2000:]}"
        # Once a location has reads stored, it is never replayed from 1 again.
        resumed = [command for command in later if re.fullmatch(r"start~(start|finish)~\d+", command)]
        assert resumed, later
        for location in LOCATIONS:
            of_location = [c for c in later if c.split("~")[1] == location]
            first_resume = next(i for i, c in enumerate(of_location) if c.count("~") == 2)
            assert all(c.count("~") == 2 for c in of_location[first_resume:]), later
        assert max(int(command.rsplit("~", 1)[1]) for command in resumed) > 100, later
    logs = one.log() + two.log()
    for name in ("m", "n"):
        resumed = re.findall(rf"stream connection:{name}-0 resuming with .*", logs)
        assert resumed, f"no collector logged resuming connection:{name}-0"
    # The stream that moved to the other collector was resumed there, from the shared database.
    for collector, mover in ((two, "m"), (one, "n")):
        assert re.search(rf"stream connection:{mover}-0 resuming with", collector.log()), \
            f"{mover} was not resumed by the other collector"
    # Both carried load after their restart, and each says so on /metrics; nothing is left waiting.
    for collector in (one, two):
        samples = scrape(collector.status_port)
        assert value(samples, "chronotrack_reads_stored_total") > 0
        assert value(samples, "chronotrack_reads_waiting") == 0
        assert value(samples, "chronotrack_controllers_connected") == 0
        assert value(samples, "chronotrack_database_up") == 1
    assert time.monotonic() - started < 120
