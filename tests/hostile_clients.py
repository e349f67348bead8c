"""Hostile clients for the end-to-end tests and bench/hostile.py: raw blocking sockets.

They speak to the real collector over TCP the way an attacker or a broken controller
would: no Twisted, no simulator.
"""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

VALID_FIELDS = ["CT01_33", "17", "finish", "1234", "14:02:15.31", "0", "0F2A38", "1"]


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc/<pid>/status (VmRSS, in KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


class RawClient:
    def __init__(self, port: int, source: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0))
        self.received = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_line(self, line: str | bytes) -> None:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def read_until(self, needle: bytes, timeout: float = 10.0) -> bytes:
        """Everything received up to and including ``needle``; AssertionError on EOF or timeout."""
        deadline = time.monotonic() + timeout
        while needle not in self.received:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError(f"no {needle!r} within {timeout} s; got {self.received[-500:]!r}")
            if not chunk:
                raise AssertionError(f"closed before {needle!r}; got {self.received[-500:]!r}")
            self.received += chunk
        return self.received

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True when the server closes (EOF or reset) within ``timeout`` s, False when it stays open."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.received += chunk
        except socket.timeout:
            return False
        except OSError:
            return True
        return False

    def greet(self, connection_id: str | None = None, locations: str = "finish",
              event: str = "Spoof~S1~") -> None:
        """Greet and answer the handshake like a controller; returns once start commands may come."""
        self.send_line("SimpleClient~0.5.0~CTP01")
        self.read_until(b"getconnectionid\r\n")
        self.send_line(f"ack~geteventinfo~{event}")
        self.send_line(f"ack~getlocations~{locations}")
        if connection_id is None:
            self.send_line("err~getconnectionid~not supported")
        else:
            self.send_line(f"ack~getconnectionid~{connection_id}")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def garbage_line(rng: random.Random, size: int = 200) -> bytes:
    return bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 ~,;|") for _ in range(size))


def fuzz_line(rng: random.Random) -> bytes:
    """Random bytes, or a valid tag line with a field replaced or bytes spliced in."""
    choice = rng.random()
    if choice < 0.3:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300))).replace(b"\n", b"")
    fields = [field.encode() for field in VALID_FIELDS]
    index = rng.randrange(len(fields))
    if choice < 0.7:
        fields[index] = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 12))).replace(b"\n", b"")
    else:
        fields[index] = rng.choice([b"-1", b"4294967296", b"1795503600", b"", b"\x00", b"\xff\xfe",
                                    b"9999999999999999", b"~~~~", b"0001-01-01T00:00:00+23:00",
                                    b"99:99:99", b"x" * 2000])
    return b"~".join(fields)
