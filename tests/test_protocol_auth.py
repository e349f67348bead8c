"""CTP01 authentication in the server protocol: StringTransport, a Clock, in-memory store and logins.

With authentication on, a connection gets the ``authentication`` setting (and a fresh
seed), no command until it has authorized, and on any failure ``err~authorize``, a
closed connection and nothing stored.
"""

from __future__ import annotations

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from chronotrack.accounts.controller_auth import ControllerAuthenticator
from chronotrack.accounts.controller_logins import ControllerLogin
from chronotrack.accounts.ctp01_auth import expected_proof
from chronotrack.accounts.failure_throttle import FailureThrottle
from chronotrack.accounts.secret_box import SecretKeyError
from chronotrack.ctp01 import HandshakeSettings
from chronotrack.protocol import CTP01ServerFactory
from tests.memory_logins import MemoryControllerLogins
from tests.memory_store import MemoryReadStore
from tests.test_protocol import (  # noqa: F401 - log_events is a fixture
    DENVER,
    GREETING,
    HANDSHAKE,
    READ,
    TOLERANCE,
    Controller,
    log_events,
    make_factory,
)

PASSWORD = "correct horse~battery"
LOGIN = ControllerLogin(partner_id=7, user_id="timer1", password=PASSWORD)
FAST = HandshakeSettings(greeting_delay=0, setting_delay=0, command_delay=0,
                         event_timezone=DENVER)
SETTINGS = HANDSHAKE[1:7]
COMMANDS = HANDSHAKE[7:]
MODES = ("plaintext", "hmac-sha1", "hmac-md5", "seed-sha1", "seed-md5")


def auth_factory(mode: str = "hmac-sha1", logins: MemoryControllerLogins | None = None,
                 store: MemoryReadStore | None = None,
                 settings: HandshakeSettings = FAST) -> CTP01ServerFactory:
    factory = make_factory(settings, store or MemoryReadStore())
    throttle = FailureThrottle(factory.clock, max_failures=5, window=60, block_for=300)
    factory.authenticator = ControllerAuthenticator(
        mode, logins if logins is not None else MemoryControllerLogins(LOGIN), throttle,
        factory.clock)
    return factory


def greet(controller: Controller) -> dict[str, str]:
    """Greet; returns the settings we were sent (and checks the reply's shape)."""
    controller.feed(GREETING)
    lines = controller.sent()
    reply, settings = lines[0], lines[1:]
    assert reply == f"ChronoTrackHub~0.1.0~{len(settings)}"
    assert settings[:6] == SETTINGS
    return dict(line.split("=", 1) for line in settings)


def proof_for(settings: dict[str, str], password: str = PASSWORD) -> str:
    return expected_proof(settings["authentication"], password,
                          settings.get("authentication-seed", ""))


def authorize(controller: Controller, user_id: str = "timer1", password: str = PASSWORD) -> list[str]:
    settings = greet(controller)
    controller.feed(f"authorize~{user_id}~{proof_for(settings, password)}")
    return controller.sent()


def logged_text(log_events) -> str:
    """Every log event as text, its fields included: what any observer could write out."""
    return "\n".join(repr(dict(event)) for event in log_events)


# --- what we send -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_authentication_setting_and_a_fresh_seed_for_each_connection(mode):
    factory = auth_factory(mode)
    first, second = Controller(factory, 40000), Controller(factory, 40001)
    one, two = greet(first), greet(second)
    assert one["authentication"] == two["authentication"] == mode
    if mode == "plaintext":
        assert "authentication-seed" not in one
    else:
        assert len(one["authentication-seed"]) >= 32
        assert one["authentication-seed"] != two["authentication-seed"]


def test_no_authentication_line_when_authentication_is_none():
    controller = Controller(make_factory(FAST))
    controller.feed(GREETING)
    assert not any(line.startswith("authentication") for line in controller.sent())


def test_commands_are_held_until_the_controller_authorizes():
    store = MemoryReadStore()
    factory = auth_factory(store=store)
    controller = Controller(factory)
    greet(controller)
    factory.clock.advance(9)  # past the reply timeout, short of the greeting deadline
    assert controller.sent() == []
    assert store.calls == []  # not even the connection row


@pytest.mark.parametrize("mode", MODES)
def test_right_credentials_are_acknowledged_then_the_commands_follow(mode):
    store = MemoryReadStore()
    factory = auth_factory(mode, store=store)
    controller = Controller(factory)
    assert authorize(controller) == ["ack~authorize"] + COMMANDS
    assert controller.protocol.partner_id == 7 and controller.protocol.user_id == "timer1"
    assert [peer for peer, _ in store.connected] == ["10.1.2.3:40000"]
    controller.feed("ack~geteventinfo~Boston~E1~x", "ack~getlocations~start",
                    "ack~getconnectionid~C1")
    assert controller.sent() == ["start~start"]
    controller.feed(READ)
    [(read, source)] = store.reads
    assert source.partner_id == 7
    assert store.identified_partners == [(7, "timer1")]
    assert factory.authentication_failures == 0


def test_uppercase_hex_proof_is_accepted_over_the_wire():
    controller = Controller(auth_factory("seed-md5"))
    settings = greet(controller)
    controller.feed(f"authorize~timer1~{proof_for(settings).upper()}")
    assert controller.sent()[0] == "ack~authorize"


def test_the_seed_of_another_connection_does_not_authorize():
    factory = auth_factory("hmac-sha1")
    first, second = Controller(factory, 40000), Controller(factory, 40001)
    first_settings = greet(first)
    greet(second)
    second.feed(f"authorize~timer1~{proof_for(first_settings)}")
    assert second.sent() == ["err~authorize~invalid user id or password"]


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("user_id, password", [("timer1", "Tr0ub4dor&3"), ("nobody", PASSWORD)])
def test_wrong_credentials_are_refused_closed_and_nothing_is_stored(user_id, password, log_events):
    store = MemoryReadStore()
    factory = auth_factory("plaintext", store=store)
    controller = Controller(factory)
    greet(controller)
    controller.feed(f"authorize~{user_id}~{password}", READ, "ack~geteventinfo~B~E1~x")
    assert controller.sent() == ["err~authorize~invalid user id or password"]
    assert controller.transport.disconnecting
    assert store.calls == []
    assert factory.authentication_failures == 1 and factory.lines_rejected == 0
    assert factory.reads_received == 0
    text = logged_text(log_events)
    assert "authorization refused" in text and user_id in text
    assert password not in text
    controller.lose()
    assert store.calls == [] and factory.clock.getDelayedCalls() == []


def test_the_proof_of_a_failed_hmac_authorize_is_never_logged(log_events):
    controller = Controller(auth_factory("hmac-sha1"))
    settings = greet(controller)
    proof = proof_for(settings, "a wrong password")
    controller.feed(f"authorize~timer1~{proof}")
    assert controller.transport.disconnecting
    text = logged_text(log_events)
    assert proof not in text and PASSWORD not in text and "wrong password" not in text


@pytest.mark.parametrize("early", [READ, "garbage line", "SimpleClient~0.5.0~CTP01"])
def test_anything_but_authorize_after_the_greeting_is_refused_and_not_stored(early):
    store = MemoryReadStore()
    factory = auth_factory(store=store)
    controller = Controller(factory)
    greet(controller)
    controller.feed(early, READ)
    assert controller.sent() == ["err~authorize~not authorized"]
    assert controller.transport.disconnecting
    assert store.calls == [] and factory.authentication_failures == 1


def test_tag_line_before_the_greeting_is_refused_and_not_stored():
    store = MemoryReadStore()
    factory = auth_factory(store=store)
    controller = Controller(factory)
    controller.feed(READ)
    assert controller.sent() == ["err~authorize~not authorized"]
    assert controller.transport.disconnecting and store.calls == []


def test_replies_before_authorizing_are_ignored_not_stored():
    store = MemoryReadStore()
    controller = Controller(auth_factory(store=store))
    greet(controller)
    controller.feed("ack~geteventinfo~Boston~E1~x", "ack~getlocations~start", "ping")
    assert controller.sent() == ["ack~ping"]
    assert not controller.transport.disconnecting and store.calls == []


def test_authorize_before_the_greeting_is_refused():
    controller = Controller(auth_factory("plaintext"))
    controller.feed(f"authorize~timer1~{PASSWORD}")
    assert controller.sent() == ["err~authorize~greet once, then authorize once"]
    assert controller.transport.disconnecting


def test_failed_lookup_refuses_with_a_clear_log_line_and_no_traceback(log_events):
    logins = MemoryControllerLogins(LOGIN)
    logins.fail_with = SecretKeyError("a stored controller password cannot be decrypted")
    store = MemoryReadStore()
    factory = auth_factory("plaintext", logins, store)
    controller = Controller(factory)
    greet(controller)
    controller.feed(f"authorize~timer1~{PASSWORD}")
    assert controller.sent() == ["err~authorize~cannot check credentials now; try again later"]
    assert controller.transport.disconnecting and store.calls == []
    assert factory.authentication_failures == 0  # our fault, not a guess
    assert not factory.authenticator.throttle.is_blocked("10.1.2.3")
    assert any("cannot be decrypted" in str(event.get("error")) for event in log_events)
    assert not any("log_failure" in event for event in log_events)


def test_losing_the_connection_while_the_login_is_looked_up_is_harmless():
    logins = MemoryControllerLogins(LOGIN)
    logins.hold = True
    store = MemoryReadStore()
    factory = auth_factory("plaintext", logins, store)
    controller = Controller(factory)
    greet(controller)
    controller.feed(f"authorize~timer1~{PASSWORD}")
    controller.lose()
    [(_, held)] = logins.held
    held.callback(LOGIN)
    assert controller.sent() == [] and store.calls == []
    assert factory.clock.getDelayedCalls() == []


def test_a_login_removed_while_running_is_refused_on_the_next_connection():
    logins = MemoryControllerLogins(LOGIN)
    factory = auth_factory("plaintext", logins)
    assert authorize(Controller(factory, 40000))[0] == "ack~authorize"
    del logins.logins["timer1"]
    assert authorize(Controller(factory, 40001)) == ["err~authorize~invalid user id or password"]
    assert logins.lookups == ["timer1", "timer1"]


# --- greeting deadline -------------------------------------------------------------------


def test_connection_that_does_not_greet_in_time_is_closed_even_if_it_trickles_bytes(log_events):
    """The idle timer resets on every byte; the greeting deadline must not."""
    factory = make_factory(FAST)
    controller = Controller(factory)
    for _ in range(9):
        factory.clock.advance(1)
        controller.protocol.dataReceived(b"S")  # never a whole line
    factory.clock.advance(1 - TOLERANCE)
    assert not controller.transport.disconnected
    factory.clock.advance(2 * TOLERANCE)
    assert controller.transport.disconnected
    assert any("did not greet" in event["log_format"].format(**event)
               for event in log_events if "missing" in event)


def test_greeting_in_time_without_authentication_meets_the_deadline():
    factory = make_factory(FAST)
    controller = Controller(factory)
    factory.clock.advance(9)
    controller.feed(GREETING)
    factory.clock.advance(5)
    assert not controller.transport.disconnected


def test_greeting_deadline_follows_the_setting():
    factory = make_factory(HandshakeSettings(greeting_timeout=3, event_timezone=DENVER))
    controller = Controller(factory)
    factory.clock.advance(3 + TOLERANCE)
    assert controller.transport.disconnected


def test_with_authentication_the_deadline_includes_authorizing():
    store = MemoryReadStore()
    factory = auth_factory(store=store)
    controller = Controller(factory)
    greet(controller)
    for _ in range(9):
        factory.clock.advance(1)
        controller.feed("ping")
    factory.clock.advance(1 + TOLERANCE)
    assert controller.transport.disconnected
    assert store.calls == []


def test_authorized_in_time_the_deadline_is_cancelled():
    factory = auth_factory()
    controller = Controller(factory)
    factory.clock.advance(5)
    assert authorize(controller)[0] == "ack~authorize"
    factory.clock.advance(6)
    assert not controller.transport.disconnected


# --- repeated failures ------------------------------------------------------------------


def test_repeated_failures_from_one_address_close_its_new_connections_at_once(log_events):
    store = MemoryReadStore()
    factory = auth_factory("plaintext", store=store)
    for attempt in range(5):
        controller = Controller(factory, 41000 + attempt)
        assert authorize(controller, password="guess") == ["err~authorize~invalid user id or password"]
        controller.lose()
    assert factory.authentication_failures == 5

    blocked = [Controller(factory, 42000 + n) for n in range(3)]
    for controller in blocked:
        assert controller.transport.disconnecting  # closed before reading anything
        controller.feed(GREETING, f"authorize~timer1~{PASSWORD}", READ)
        assert controller.sent() == []
        controller.lose()
    assert store.calls == [] and factory.open_connections == set()
    refusals = [event for event in log_events if "blocked after repeated" in event["log_format"]]
    assert len(refusals) == 1, "refusals are logged sparingly"

    other = _controller_from(factory, "10.9.9.9")
    assert authorize(other)[0] == "ack~authorize", "another address is not blocked"

    factory.clock.advance(300)
    again = Controller(factory, 44000)
    assert not again.transport.disconnecting
    assert authorize(again)[0] == "ack~authorize"


def _controller_from(factory: CTP01ServerFactory, host: str) -> Controller:
    controller = Controller.__new__(Controller)
    controller.factory = factory
    controller.transport = StringTransport(peerAddress=IPv4Address("TCP", host, 45000))
    controller.protocol = factory.buildProtocol(controller.transport.getPeer())
    controller.protocol.makeConnection(controller.transport)
    return controller
