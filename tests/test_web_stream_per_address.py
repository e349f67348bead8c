"""One client address cannot take every live stream: past ``max-streams-per-address`` it gets
429 with ``Retry-After``, while other addresses (here: told apart by the X-Forwarded-For of a
proxy on this machine) still get theirs, and a stream that ends frees its address's place.
Real app, real port, real HTTP."""

from __future__ import annotations

from types import SimpleNamespace

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString

from tests.test_web_stream import KEEPALIVE_FOR_TESTS, database, insert_read, open_stream  # noqa: F401 (fixture)
from tests.waiting import wait_until
from web.app import DisplayApp
from web.service import WebService

PHONE = {"X-Forwarded-For": "203.0.113.7"}
OTHER_PHONE = {"X-Forwarded-For": "198.51.100.20"}


@pytest_twisted.async_yield_fixture
async def served_two_per_address(database):  # noqa: F811 (the fixture imported above)
    display = DisplayApp(reactor, SimpleNamespace(database=database), keepalive_interval=KEEPALIVE_FOR_TESTS)
    service = WebService(reactor, serverFromString(reactor, "tcp:0:interface=127.0.0.1"), display,
                         max_stream_clients=10, max_streams_per_address=2)
    service.startService()
    port = await service.when_listening()
    yield f"http://127.0.0.1:{port.getHost().port}", display, service.site.stream_gate
    await service.stopService()


@pytest_twisted.ensureDeferred
async def test_past_the_most_streams_from_one_address_it_gets_429_and_others_still_get_theirs(
        pg_dsn, served_two_per_address):
    base, display, gate = served_two_per_address
    _, first, first_finished = await open_stream(base + "/stream", PHONE)
    _, second, second_finished = await open_stream(base + "/stream", PHONE)
    refused = await treq.get(base + "/stream", headers=PHONE, persistent=False)
    assert refused.code == 429
    assert refused.headers.getRawHeaders("retry-after") == ["10"]
    body = await refused.json()
    assert body["success"] is False and body["error"] == "too many live streams from your address"
    # Another address is let in, and everyone's stream carries the next read.
    _, other, other_finished = await open_stream(base + "/stream", OTHER_PHONE)
    assert gate.open_by_address == {"203.0.113.7": 2, "198.51.100.20": 1}
    read_id = insert_read(pg_dsn, "101")
    await wait_until(lambda: first.ids == [read_id] and second.ids == [read_id] and other.ids == [read_id])
    # One of the first address's streams ends: that address may open one again.
    first.hang_up = True
    await first_finished
    await wait_until(lambda: gate.open_by_address.get("203.0.113.7") == 1)
    _, again, again_finished = await open_stream(base + "/stream", PHONE)
    assert display.open_streams == 3
    for stream in (second, other, again):
        stream.hang_up = True
    for finished in (second_finished, other_finished, again_finished):
        await finished
    await wait_until(lambda: gate.open_by_address == {} and gate.open_streams == 0)
