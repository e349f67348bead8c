"""``/stream`` fan-out: many concurrent SSE clients (raw sockets in this process) while
one paced controller sends reads. Every event delivered to every client? How late?

Delivery delay = the read written to the collector's socket -> the event arriving at a
client. Every client's deliveries are counted; delays are kept for an evenly spread
sample of about 200 clients (all of them would be millions of floats).
"""

from __future__ import annotations

import asyncio
import time

from bench.clients import PacedController, SseClient
from bench.context import Context, RssSampler, raise_open_file_limit
from bench.profiling import start_profiler, summarize_profile
from bench.report import Row, Target, summary_ms

DELAY_TARGET = Target("<", 1000, "ms")
DELIVERED_TARGET = Target(">=", 100, "%")
SAMPLED_CLIENTS = 200


def run(ctx: Context) -> None:
    mode = ctx.mode
    limit = raise_open_file_limit()
    clients_wanted = min(mode.fanout_clients, limit - 200)
    print(f"fan-out: {clients_wanted:,} SSE clients, {mode.fanout_rate} reads/s for {mode.fanout_seconds:.0f} s",
          flush=True)
    # The hub refuses streams beyond --max-stream-clients (1000 by default) with a 503, and
    # beyond --max-streams-per-address (100) from one address with a 429: every client here
    # comes from 127.0.0.1, so the fan-out asks for room for all of them on both counts.
    room = str(clients_wanted + 100)
    collector = ctx.collector("fanout", web=True,
                              extra_args=("--max-stream-clients", room, "--max-streams-per-address", room))
    try:
        profile = collector.work_dir / "py-spy.txt"
        with RssSampler(collector.process.pid, interval=0.2) as sampler:
            result = asyncio.run(_drive(collector, clients_wanted, mode.fanout_rate, mode.fanout_seconds,
                                        mode.fanout_drain_seconds, ctx.profile and profile))
        sent, clients, connect_seconds, drain_seconds = result
        expected = len(sent) * len(clients)
        delivered = sum(len(client.arrivals.keys() & sent.keys()) for client in clients)
        complete = sum(1 for client in clients if client.arrivals.keys() >= sent.keys())
        errors = [client.error for client in clients if client.error]
        step = max(1, len(clients) // SAMPLED_CLIENTS)
        delays = [arrival - sent[tag] for client in clients[::step]
                  for tag, arrival in client.arrivals.items() if tag in sent]
        figures = summary_ms(delays)
        share = delivered * 100 / expected if expected else float("nan")
        label = f"{len(clients):,} clients x {mode.fanout_rate} reads/s"
        ctx.add(Row("fan-out", f"{label}: events delivered (within {mode.fanout_drain_seconds:.0f} s of the last read)",
                    share, "%", DELIVERED_TARGET,
                    f"{delivered:,} of {expected:,}; {complete:,} clients got all", failed=share < 100),
                Row("fan-out", f"{label}: delay p50", figures["p50"], "ms"),
                Row("fan-out", f"{label}: delay p99", figures["p99"], "ms", DELAY_TARGET,
                    f"sample of {len(clients[::step])} clients"),
                Row("fan-out", f"{label}: delay max", figures["max"], "ms"),
                Row("fan-out", "collector VmRSS peak during fan-out", sampler.peak, "MB"))
        ctx.note(f"fan-out: {len(clients):,} clients connected in {connect_seconds:.1f} s; after the last read"
                 f" waited {drain_seconds:.1f} s for deliveries (limit {mode.fanout_drain_seconds:.0f} s)")
        if errors:
            ctx.note(f"fan-out: {len(errors)} client errors, e.g. {errors[0]}")
        if len(clients) < mode.fanout_clients:
            ctx.note(f"fan-out: open-file limit {limit} allowed only {len(clients)} clients")
        print(f"  delivered {share:.1f}%, p99 {figures['p99']:.0f} ms", flush=True)
        if ctx.profile:
            for line in summarize_profile(profile, f"fan-out to {len(clients)} clients"):
                ctx.note(line)
    finally:
        collector.stop()


async def _drive(collector, count: int, rate: int, seconds: float, drain: float, profile=None):
    started = time.monotonic()
    clients = [SseClient(collector.web_port) for _ in range(count)]
    for first in range(0, count, 100):  # connect in waves, like a crowd opening the page
        batch = clients[first:first + 100]
        await asyncio.gather(*(client.open() for client in batch))
        await asyncio.gather(*(asyncio.wait_for(client.answered.wait(), 60) for client in batch),
                             return_exceptions=True)
    connected = [client for client in clients if client.connected.is_set()]
    connect_seconds = time.monotonic() - started
    controller = PacedController(collector.ctp01_port, "fanout", "bench-fanout")
    await controller.connect()
    await asyncio.sleep(0.3)
    profiler = start_profiler(collector.process.pid, profile, max(2, int(seconds))) if profile else None
    await controller.stream(rate, seconds)
    finished = time.monotonic()
    wanted = set(controller.sent_at)
    while time.monotonic() - finished < drain:
        if all(client.arrivals.keys() >= wanted for client in connected):
            break
        await asyncio.sleep(0.2)
    drain_seconds = time.monotonic() - finished
    if profiler is not None:
        await asyncio.to_thread(profiler.wait, 120)
    await controller.close()
    for client in clients:
        await client.close()
    return controller.sent_at, clients, connect_seconds, drain_seconds
