"""Real processes for the end-to-end tests: the twistd collector and the simulator.

These tests talk to the program the way a controller and a browser do, over TCP and
HTTP, so they are plain blocking code: nothing here runs on a reactor.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class CollectorProcess:
    """``twistd -n chronotrack-collector`` on free loopback ports."""

    def __init__(self, work_dir: Path, dsn: str | None = None, web: bool = False,
                 extra_args: tuple[str, ...] = (), data_dir: Path | None = None) -> None:
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir or self.work_dir / "var"
        self.dsn = dsn
        self.ctp01_port = free_port()
        self.status_port = free_port()
        self.web_port = free_port() if web else None
        self.extra_args = extra_args
        self.log_path = self.work_dir / "collector.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def command(self) -> list[str]:
        args = [str(BIN / "twistd"), "--nodaemon", "--pidfile=", "chronotrack-collector",
                "--port", f"tcp:{self.ctp01_port}:interface=127.0.0.1",
                "--status", f"tcp:{self.status_port}:interface=127.0.0.1",
                "--web", f"tcp:{self.web_port}:interface=127.0.0.1" if self.web_port else "none",
                "--data-dir", str(self.data_dir),
                "--greeting-delay", "0", "--setting-delay", "0", "--command-delay", "0",
                *self.extra_args]
        if self.dsn:
            args += ["--dsn", self.dsn]
        return args

    def start(self) -> "CollectorProcess":
        self.starts += 1
        log = open(self.log_path, "a")
        log.write(f"\n===== start {self.starts} =====\n")
        log.flush()
        env = {key: value for key, value in os.environ.items() if not key.startswith("CHRONOTRACK_")}
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                        cwd=self.work_dir, env=env)
        wait_for(self._ready, STARTUP_TIMEOUT, "the collector to be ready (/status)")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"collector exited with {self.process.returncode}:\n{self.log()}")
        try:
            status = self.status()  # ready = connected, schema in place
            return bool(status["database_connected"] and status["schema_ready"])
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def status(self) -> dict:
        return get_json(f"http://127.0.0.1:{self.status_port}/status")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-20000:]

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as systemd does; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """kill -9: no chance to flush anything."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop_embedded_database(self) -> None:
        """After a kill -9 the embedded server outlives the collector; tests clean it up."""
        from chronotrack.storage.embedded_db import EmbeddedPostgres

        EmbeddedPostgres(self.data_dir).stop_blocking()

    @property
    def embedded_dsn(self) -> str:
        from chronotrack.storage.embedded_db import EmbeddedPostgres

        return EmbeddedPostgres(self.data_dir).dsn


def run_simulator(port: int, *args: str, timeout: float = 300.0, check: bool = True) -> subprocess.CompletedProcess:
    """The controller simulator as a separate process, like a real SimpleClient."""
    command = [str(BIN / "chronotrack-simulate"), "--host", "127.0.0.1", "--port", str(port), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"simulator failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def start_simulator(port: int, *args: str, log_path: Path) -> subprocess.Popen:
    command = [str(BIN / "chronotrack-simulate"), "--host", "127.0.0.1", "--port", str(port), *args]
    return subprocess.Popen(command, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)


class DisplayProcess:
    """``twistd -n chronotrack-display``: the web layer alone, against the same database."""

    def __init__(self, work_dir: Path, dsn: str, collector_status_url: str | None = None) -> None:
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.dsn = dsn
        self.web_port = free_port()
        self.collector_status_url = collector_status_url
        self.log_path = self.work_dir / "display.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [str(BIN / "twistd"), "--nodaemon", "--pidfile=", "chronotrack-display",
                "--web", f"tcp:{self.web_port}:interface=127.0.0.1", "--dsn", self.dsn,
                "--data-dir", str(self.work_dir / "var"),
                "--collector-status", self.collector_status_url or "none"]

    def start(self) -> "DisplayProcess":
        env = {key: value for key, value in os.environ.items() if not key.startswith("CHRONOTRACK_")}
        self.process = subprocess.Popen(self.command(), stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT,
                                        cwd=self.work_dir, env=env)
        wait_for(self._ready, STARTUP_TIMEOUT, "the display to answer")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"display exited with {self.process.returncode}:\n{self.log()}")
        try:
            return bool(get_json(f"{self.url}/api/timing/database-status").get("connected"))
        except (OSError, urllib.error.URLError, ValueError):
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-20000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


class EventStream:
    """A blocking Server-Sent Events client, like a browser's EventSource."""

    def __init__(self, url: str, last_event_id: int | None = None, timeout: float = 30.0,
                 headers: dict[str, str] | None = None) -> None:
        request = urllib.request.Request(url, headers={"Accept": "text/event-stream", **(headers or {})})
        if last_event_id is not None:
            request.add_header("Last-Event-ID", str(last_event_id))
        self.response = urllib.request.urlopen(request, timeout=timeout)
        self.content_type = self.response.headers.get("Content-Type", "")

    def events(self, count: int) -> list[dict]:
        """The next ``count`` events, each {"id": int, "data": dict}."""
        found, event = [], {}
        while len(found) < count:
            line = self.response.readline().decode("utf-8")
            if not line:
                raise AssertionError(f"stream ended after {len(found)} events")
            line = line.rstrip("\n")
            if line.startswith("id:"):
                event["id"] = int(line[3:].strip())
            elif line.startswith("data:"):
                event["data"] = json.loads(line[5:].strip())
            elif line == "" and "data" in event:
                found.append(event)
                event = {}
        return found

    def close(self) -> None:
        self.response.close()
