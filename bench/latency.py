"""Latency at a steady rate: read written to the collector's socket -> row committed, and
-> the read's ``/stream`` event received.

The bench process plays one controller (``clients.PacedController``) and one SSE client
on asyncio. Commit times come from PostgreSQL itself: the private server runs with
``track_commit_timestamp = on`` and ``pg_xact_commit_timestamp(xmin)`` of each row is the
moment its transaction committed (same machine, same clock), so no polling or LISTEN
loop adds its own delay to the figure.
"""

from __future__ import annotations

import asyncio
import time

from bench.clients import PacedController, SseClient
from bench.context import Context, connect, wait_rows
from bench.report import Row, Target, summary_ms

COMMIT_TARGET = Target("<", 50, "ms")
STREAM_TARGET = Target("<", 100, "ms")
TARGET_RATE = 5000


def run(ctx: Context) -> None:
    print("latency: steady rates, socket -> commit and socket -> /stream event", flush=True)
    collector = ctx.collector("latency", web=True)
    connection = connect(collector.dsn)
    try:
        for rate in ctx.mode.latency_rates:
            location = f"lat{rate}"
            sent, stream = asyncio.run(_drive(collector, rate, ctx.mode.latency_seconds, location))
            _, stored = wait_rows(connection, f"SELECT count(*) FROM timing_reads WHERE location_name = '{location}'",
                                  len(sent), timeout=30)
            with connection.cursor() as cursor:
                cursor.execute("SELECT tag_code::int, extract(epoch FROM pg_xact_commit_timestamp(xmin))"
                               " FROM timing_reads WHERE location_name = %s", (location,))
                committed = dict(cursor.fetchall())
            commit = [float(committed[tag]) - at for tag, at in sent.items() if committed.get(tag) is not None]
            events = [stream.arrivals[tag] - at for tag, at in sent.items() if tag in stream.arrivals]
            label = f"{rate:,} reads/s"
            span = max(sent.values()) - min(sent.values())
            ctx.note(f"latency at {label}: the bench wrote {len(sent):,} reads in {span:.2f} s"
                     f" ({len(sent) / span if span else float('nan'):,.0f} reads/s achieved)")
            for kind, delays, target in (("commit", commit, COMMIT_TARGET), ("/stream", events, STREAM_TARGET)):
                figures = summary_ms(delays)
                lost = len(sent) - len(delays)
                note = f"n={len(delays):,}" + (f", {lost:,} of {len(sent):,} missing" if lost else "")
                for name in ("p50", "p99", "max"):
                    ctx.add(Row("latency", f"{label}: socket -> {kind} {name}", figures[name], "ms",
                                target if (name == "p99" and rate == TARGET_RATE) else None,
                                note if name == "p50" else "", failed=bool(lost) and name == "p50"))
                print(f"  {label}: {kind} p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms,"
                      f" max {figures['max']:.1f} ms ({note})", flush=True)
            if stored < len(sent):
                ctx.note(f"latency at {label}: only {stored} of {len(sent)} reads stored")
            if stream.error:
                ctx.note(f"latency at {label}: /stream client: {stream.error}")
    finally:
        connection.close()
        collector.stop()


async def _drive(collector, rate: int, seconds: float, location: str) -> tuple[dict[int, float], SseClient]:
    stream = SseClient(collector.web_port)
    await stream.open()
    await asyncio.wait_for(stream.connected.wait(), 30)
    controller = PacedController(collector.ctp01_port, location, f"bench-{location}")
    await controller.connect()
    await asyncio.sleep(0.3)  # the collector has opened the session and stored the locations
    await controller.stream(rate, seconds)
    deadline = time.monotonic() + 15
    while len(stream.arrivals) < len(controller.sent_at) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await controller.close()
    await stream.close()
    return controller.sent_at, stream
