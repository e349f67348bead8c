"""The simulator authenticates to our own collector protocol in every mode (in memory)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from chronotrack.accounts.controller_auth import ControllerAuthenticator
from chronotrack.accounts.controller_logins import ControllerLogin
from chronotrack.accounts.failure_throttle import FailureThrottle
from chronotrack.ctp01 import HandshakeSettings
from chronotrack.protocol import CTP01ServerFactory
from chronotrack.simulator import SimulatedController, SimulatorConfig, build_parser, config_from_arguments
from tests.memory_logins import MemoryControllerLogins
from tests.memory_store import MemoryReadStore

MODES = ("plaintext", "hmac-sha1", "hmac-md5", "seed-sha1", "seed-md5")
BASE = datetime(2024, 6, 1, 8, 0, 0, tzinfo=timezone.utc)


def run_pair(mode: str, password: str) -> tuple[MemoryReadStore, StringTransport, list[str]]:
    """Connect a simulated controller to a server protocol and pump bytes until both are quiet."""
    clock = task.Clock()
    clock.advance(BASE.timestamp())
    store = MemoryReadStore()
    logins = MemoryControllerLogins(ControllerLogin(3, "timer1", "s3cret pass"))
    factory = CTP01ServerFactory(
        store, clock, HandshakeSettings(greeting_delay=0, setting_delay=0, command_delay=0,
                                        event_timezone=timezone.utc),
        authenticator=ControllerAuthenticator(mode, logins, FailureThrottle(clock), clock))
    config = SimulatorConfig(locations=("start",), reads=3, base_time=BASE, read_spacing=1.0,
                             reconnect_delay=60, linger=0.0, user_id="timer1", password=password)
    controller = SimulatedController(config, clock, 0)
    client = controller.build_protocol()
    client_transport = StringTransport()
    server_transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.5", 4000))
    server = factory.buildProtocol(server_transport.getPeer())
    server.makeConnection(server_transport)
    client.makeConnection(client_transport)
    from_server: list[str] = []
    for _ in range(50):
        to_server, to_client = client_transport.value(), server_transport.value()
        client_transport.clear()
        server_transport.clear()
        if not to_server and not to_client:
            clock.advance(0.5)
            if not client_transport.value() and not server_transport.value():
                break
            continue
        from_server += to_client.decode().split("\r\n")[:-1]
        if to_server and not server_transport.disconnecting:
            server.dataReceived(to_server)
        if to_client:
            client.dataReceived(to_client)
    return store, server_transport, from_server


@pytest.mark.parametrize("mode", MODES)
def test_the_simulator_authenticates_and_its_reads_are_kept_under_its_partner(mode):
    store, transport, lines = run_pair(mode, "s3cret pass")
    assert "ack~authorize" in lines
    assert not transport.disconnecting
    assert [read.sequence_number for read, _ in store.reads] == [1, 2, 3]
    assert {source.partner_id for _, source in store.reads} == {3}


@pytest.mark.parametrize("mode", MODES)
def test_the_simulator_with_a_wrong_password_is_refused(mode):
    store, transport, lines = run_pair(mode, "not the password")
    assert lines[-1] == "err~authorize~invalid user id or password"
    assert transport.disconnecting and store.reads == [] and store.calls == []


def test_user_is_an_alias_of_user_id():
    arguments = build_parser().parse_args(["--user", "timer9", "--password", "pw"])
    assert config_from_arguments(arguments).user_id == "timer9"
    arguments = build_parser().parse_args(["--user-id", "timer8"])
    assert config_from_arguments(arguments).user_id == "timer8"
