"""The collector under hostile clients: memory, status and good-read completeness.

    .venv/bin/python bench/hostile.py            # every scenario, defaults below
    .venv/bin/python bench/hostile.py --flood-seconds 10 --reads 1500

Real twistd (default limits), a real PostgreSQL (embedded, or $CHRONOTRACK_TEST_DSN),
the simulator over TCP beside raw-socket attackers. Prints figures; asserts nothing about
time. RSS is the collector process's VmRSS from /proc.

Scenarios:
- idle: 300 connections that connect and send nothing (from 6 loopback addresses, 50
  each: the default per-address cap)
- long line: one client sends a 10 MB line without a newline while the simulator streams
- flood: clients write random 4 KB and 200-byte lines as fast as they can (reconnecting
  when closed) for --flood-seconds while the simulator streams; /status is polled
- flood elsewhere: the same flood against a discard server on the same machine (the
  control: what the flooding clients cost the machine, not the collector)
- baseline: the simulator alone, for the duration ratio
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.hostile_clients import RawClient, garbage_line, rss_kib  # noqa: E402
from tests.postgres import PostgresForTests, query  # noqa: E402
from tests.processes import CollectorProcess, start_simulator, wait_for  # noqa: E402


class Sampler(threading.Thread):
    """Peak RSS of a process and the slowest /status answer, sampled every 50 ms."""

    def __init__(self, collector: CollectorProcess) -> None:
        super().__init__(daemon=True)
        self.collector = collector
        self.peak_kib = rss_kib(collector.process.pid)
        self.status_max_s = 0.0
        self.status_failures = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak_kib = max(self.peak_kib, rss_kib(self.collector.process.pid))
            started = time.monotonic()
            try:
                self.collector.status()
            except Exception:  # noqa: BLE001 - a silent status API is what we measure
                self.status_failures += 1
            self.status_max_s = max(self.status_max_s, time.monotonic() - started)
            self._done.wait(0.05)

    def stop(self) -> None:
        self._done.set()
        self.join(10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def simulator_reads(dsn: str) -> int:
    return query(dsn, "SELECT count(DISTINCT (location_name, sequence_number)) FROM timing_reads"
                      " WHERE stream_id = 'connection:sim-0'")[0][0]


def run_simulator_beside(collector: CollectorProcess, work: Path, reads: int, rate: int, attack) -> dict:
    """Start the simulator, run ``attack()``, then wait for the simulator and its reads."""
    dsn = collector.dsn
    started = time.monotonic()
    cpu_before = cpu_seconds(collector.process.pid)
    simulator = start_simulator(collector.ctp01_port, "--controllers", "1", "--locations", "start,finish",
                                "--reads", str(reads), "--rate", str(rate), "--linger", "0.5", "--quiet",
                                "--reconnect-delay", "0.2", log_path=work / "simulator.log")
    sampler = Sampler(collector)
    sampler.start()
    attack_figures = attack() if attack else {}
    simulator.wait(600)
    expected = 2 * reads
    try:
        wait_for(lambda: simulator_reads(dsn) >= expected, 120, "the simulator's reads")
    except AssertionError:
        pass
    finished = time.monotonic() - started
    cpu_used = cpu_seconds(collector.process.pid) - cpu_before
    sampler.stop()
    status = collector.status()
    return {
        "simulator_reads_stored": f"{simulator_reads(dsn)}/{expected}",
        "simulator_seconds": round(finished, 2),
        "collector_cpu_seconds": round(cpu_used, 2),
        "rss_peak_mib": round(sampler.peak_kib / 1024, 1),
        "status_slowest_s": round(sampler.status_max_s, 3),
        "status_failures": sampler.status_failures,
        "rejected_lines_rows": query(dsn, "SELECT count(*) FROM rejected_lines")[0][0],
        "lines_rejected": status["lines_rejected"],
        "rejected_by_reason": status["rejected_by_reason"],
        "connections_closed_for_garbage": status["connections_closed_for_garbage"],
        **attack_figures,
    }


COLLECTOR_ARGS: tuple[str, ...] = ()


def fresh_collector(server: PostgresForTests, work: Path) -> CollectorProcess:
    return CollectorProcess(work, dsn=server.create_database(), extra_args=COLLECTOR_ARGS).start()


def idle_scenario(server, work: Path) -> dict:
    collector = fresh_collector(server, work)
    try:
        before = rss_kib(collector.process.pid)
        clients = [RawClient(collector.ctp01_port, f"127.0.0.{1 + index // 50}") for index in range(300)]
        wait_for(lambda: collector.status()["connections"] == 300, 60, "300 open connections")
        after = rss_kib(collector.process.pid)
        for client in clients:
            client.close()
        return {"rss_before_mib": round(before / 1024, 1), "rss_with_300_idle_mib": round(after / 1024, 1),
                "per_connection_kib": round((after - before) / 300, 1)}
    finally:
        collector.stop()


def long_line_scenario(server, work: Path, reads: int, rate: int) -> dict:
    collector = fresh_collector(server, work)
    before = rss_kib(collector.process.pid)

    def attack() -> dict:
        client = RawClient(collector.ctp01_port, timeout=60)
        client.greet(connection_id="long-line")
        chunk = b"A" * (1 << 20)
        for _ in range(10):
            client.send(chunk)
        client.send(b"\r\n")
        client.send_line("ping")
        client.read_until(b"ack~ping\r\n")
        client.close()
        return {"connection_survived": True}

    try:
        return {"rss_before_mib": round(before / 1024, 1),
                **run_simulator_beside(collector, work, reads, rate, attack)}
    finally:
        collector.stop()


def discard_server() -> tuple[int, threading.Event]:
    """A plain TCP server that reads and drops everything: the control target of a flood."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve(connection):
        with connection:
            while connection.recv(65536):
                pass

    def accept():
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(connection,), daemon=True).start()
        listener.close()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1], done


def flood_scenario(server, work: Path, reads: int, rate: int, seconds: float, flooders: int,
                   elsewhere: bool = False) -> dict:
    """Flood the collector, or (``elsewhere``) a discard server beside it: the same load on
    the machine without the collector reading it, to tell its cost from CPU contention."""
    collector = fresh_collector(server, work)
    target_port, stop_target = discard_server() if elsewhere else (collector.ctp01_port, threading.Event())
    before = rss_kib(collector.process.pid)
    data_dir_before = sum(path.stat().st_size for path in collector.data_dir.rglob("*") if path.is_file())

    def flood(seed: int, figures: dict) -> None:
        rng = random.Random(seed)
        payload = b"".join((garbage_line(rng, 4000) if index % 2 else garbage_line(rng)) + b"\r\n"
                           for index in range(256))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                client = RawClient(target_port, f"127.0.1.{seed % 250 + 1}")
            except OSError:
                continue
            figures["connections"] += 1
            try:
                while time.monotonic() < deadline:
                    client.send(payload)
                    figures["bytes"] += len(payload)
            except OSError:
                figures["closed_by_collector"] += 1
            client.close()

    def attack() -> dict:
        figures = {"connections": 0, "closed_by_collector": 0, "bytes": 0}
        threads = [threading.Thread(target=flood, args=(seed, figures)) for seed in range(flooders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {"flood_connections": figures["connections"],
                "flood_closed_by_collector": figures["closed_by_collector"],
                "flood_mib_handed_to_send": round(figures["bytes"] / 2**20, 1)}

    try:
        result = run_simulator_beside(collector, work, reads, rate, attack)
        data_dir_after = sum(path.stat().st_size for path in collector.data_dir.rglob("*") if path.is_file())
        log_size = collector.log_path.stat().st_size
        return {"rss_before_mib": round(before / 1024, 1), **result,
                "data_dir_growth_kib": round((data_dir_after - data_dir_before) / 1024, 1),
                "log_kib": round(log_size / 1024, 1)}
    finally:
        stop_target.set()
        collector.stop()


def baseline_scenario(server, work: Path, reads: int, rate: int) -> dict:
    collector = fresh_collector(server, work)
    try:
        return run_simulator_beside(collector, work, reads, rate, None)
    finally:
        collector.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=1500, help="simulator reads per location (2 locations)")
    parser.add_argument("--rate", type=int, default=300, help="simulator reads per second")
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    parser.add_argument("--flooders", type=int, default=4, help="flooding clients at once")
    parser.add_argument("--only", choices=("idle", "long-line", "flood", "flood-elsewhere", "baseline"))
    parser.add_argument("--collector-args", default="",
                        help="extra collector options, e.g. '--garbage-penalty 0'")
    arguments = parser.parse_args()
    global COLLECTOR_ARGS
    COLLECTOR_ARGS = tuple(arguments.collector_args.split())
    server = PostgresForTests()
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="hostile-bench-") as base:
            base_path = Path(base)
            if arguments.only in (None, "idle"):
                results["idle_300"] = idle_scenario(server, base_path / "idle")
            if arguments.only in (None, "long-line"):
                results["long_line_10mb"] = long_line_scenario(server, base_path / "long", arguments.reads,
                                                               arguments.rate)
            if arguments.only in (None, "flood"):
                results["garbage_flood"] = flood_scenario(server, base_path / "flood", arguments.reads,
                                                          arguments.rate, arguments.flood_seconds,
                                                          arguments.flooders)
            if arguments.only in (None, "flood-elsewhere"):
                results["garbage_flood_to_a_discard_server_beside_it"] = flood_scenario(
                    server, base_path / "elsewhere", arguments.reads, arguments.rate, arguments.flood_seconds,
                    arguments.flooders, elsewhere=True)
            if arguments.only in (None, "baseline"):
                results["baseline"] = baseline_scenario(server, base_path / "baseline", arguments.reads,
                                                        arguments.rate)
    finally:
        server.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
