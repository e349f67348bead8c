"""Clients the latency and fan-out parts run inside the bench process, on asyncio.

- ``PacedController`` plays a ChronoTrack controller over CTP01: answers the handshake,
  then writes reads at a steady rate, noting the wall-clock time each read was written.
  Each read's tag is its sequence number, so a stored row or a ``/stream`` event names
  the read it came from.
- ``SseClient`` opens ``/stream`` with a raw socket (HTTP/1.0, so no chunking) and notes
  when each event arrives.
"""

from __future__ import annotations

import asyncio
import re
import time

BIB = re.compile(rb'"bib":"(\d+)"')


class PacedController:
    def __init__(self, port: int, location: str, connection_id: str, event_name: str = "Bench") -> None:
        self.port = port
        self.location = location
        self.connection_id = connection_id
        self.event_name = event_name
        self.sent_at: dict[int, float] = {}  # sequence (= tag) -> time.time() when written
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._drain: asyncio.Task | None = None

    async def connect(self, timeout: float = 30.0) -> None:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writer.write(b"BenchClient~1.0~CTP01\r\n")
        replies = {
            "getlocations": f"ack~getlocations~{self.location}",
            "geteventinfo": f"ack~geteventinfo~{self.event_name}~{self.event_name}~bench",
            "getconnectionid": f"ack~getconnectionid~{self.connection_id}",
        }
        deadline = time.monotonic() + timeout
        while True:
            line = await asyncio.wait_for(self._reader.readline(), max(0.1, deadline - time.monotonic()))
            if not line:
                raise ConnectionError("collector closed the connection during the handshake")
            text = line.decode(errors="replace").strip()
            if text in replies:
                self._writer.write((replies[text] + "\r\n").encode())
            elif text.startswith("start"):
                break
        self._drain = asyncio.ensure_future(self._read_rest())  # pings, acks: read and ignore

    async def _read_rest(self) -> None:
        while await self._reader.read(65536):
            pass

    def line(self, sequence: int) -> bytes:
        seconds = sequence % 3600
        return (f"CT01_33~{sequence}~{self.location}~{sequence}~2026-11-24T09:{seconds // 60:02d}:"
                f"{seconds % 60:02d}.00~0~BE0001~1\r\n").encode()

    async def stream(self, rate: float, seconds: float, first: int = 1, tick: float = 0.002) -> int:
        """Write ``rate`` reads per second for ``seconds``; returns the last sequence written."""
        total = int(rate * seconds)
        started = time.monotonic()
        sequence = first - 1
        last = first - 1 + total
        while sequence < last:
            due = min(last, first - 1 + int((time.monotonic() - started) * rate) + 1)
            if due > sequence:
                now = time.time()
                chunk = []
                for number in range(sequence + 1, due + 1):
                    chunk.append(self.line(number))
                    self.sent_at[number] = now
                self._writer.write(b"".join(chunk))
                sequence = due
                await self._writer.drain()
            await asyncio.sleep(tick)
        return sequence

    async def close(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
        if self._writer is not None:
            self._writer.close()


class SseClient:
    def __init__(self, port: int) -> None:
        self.port = port
        self.arrivals: dict[int, float] = {}  # tag -> first arrival (time.time())
        self.duplicates = 0
        self.error: str | None = None
        self._task: asyncio.Task | None = None
        self.connected = asyncio.Event()
        self.answered = asyncio.Event()  # connected, or refused / failed (then ``error`` says why)

    async def open(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
        writer.write(b"GET /stream HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        self._writer = writer
        self._task = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        buffer = b""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                self.error = head.split(b"\r\n", 1)[0].decode(errors="replace")
                return
            while True:
                data = await reader.read(262144)
                if not data:
                    self.error = self.error or "stream closed"
                    return
                now = time.time()
                buffer += data
                end = buffer.rfind(b"\n\n")
                if end < 0:
                    continue
                complete, buffer = buffer[:end + 2], buffer[end + 2:]
                if not self.connected.is_set() and b": connected" in complete:
                    self.connected.set()
                    self.answered.set()
                arrivals = self.arrivals
                for match in BIB.finditer(complete):
                    tag = int(match.group(1))
                    if tag in arrivals:
                        self.duplicates += 1
                    else:
                        arrivals[tag] = now
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - reported in the table
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.answered.set()  # a refused client does not keep its wave waiting

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if getattr(self, "_writer", None) is not None:
            self._writer.close()
