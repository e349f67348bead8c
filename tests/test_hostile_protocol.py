"""The CTP01 protocol against hostile clients, over a StringTransport with a Clock.

Pins findings 2, 3, 4, 5, 7 and 8 of the hostile-port probe at the protocol level:
bounded cost per rejected line, the line length limit, admission, NUL and non-UTF-8
lines, clock-suspect reads. The end-to-end versions are in test_hostile_port.py.
"""

from __future__ import annotations

import ipaddress

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.logger import LogLevel

from chronotrack.admission import AdmissionLimits, AdmissionPolicy, parse_allow_list
from chronotrack.line_guard import LineLimits
from chronotrack.protocol import CTP01ServerFactory
from tests.memory_store import MemoryReadStore
from tests.test_protocol import FAST, Controller, log_events, make_factory  # noqa: F401


def read_line(sequence: int, location: str = "finish") -> str:
    return f"CT01_33~{sequence}~{location}~{1000 + sequence}~14:02:15.31~0~0F2A38~1"


def factory_with(limits: LineLimits | None = None, admission: AdmissionPolicy | None = None,
                 store: MemoryReadStore | None = None) -> CTP01ServerFactory:
    factory = make_factory(FAST, store or MemoryReadStore())
    if limits is not None:
        factory.limits = limits
        factory.rejections.limits = limits
    if admission is not None:
        factory.admission = admission
    return factory


def rejection_warnings(log_events):
    return [event for event in log_events if event["log_level"] == LogLevel.warn
            and event["log_format"].startswith("rejected line")]


# --- finding 5 and 7: NUL and non-UTF-8 -------------------------------------------------------


def test_nul_line_is_counted_and_stored_escaped_so_counter_and_rows_agree():
    store = MemoryReadStore()
    factory = factory_with(store=store)
    controller = Controller(factory)
    controller.handshake()
    controller.protocol.dataReceived(b"CT01_33~1~finish~12\x0034~14:02:15.31~0~0F2A38~1\r\n")
    assert factory.lines_rejected == len(store.rejected) == 1
    line, reason, _ = store.rejected[0]
    assert "\x00" not in line and "\\x00" in line and "NUL" in reason
    assert factory.rejections.by_kind == {"nul_byte": 1}


def test_tag_line_with_non_utf8_bytes_is_rejected_not_stored_as_a_read():
    store = MemoryReadStore()
    controller = Controller(factory_with(store=store))
    controller.handshake()
    controller.protocol.dataReceived(b"CT01_33~1~finish~12\xe934~14:02:15.31~0~0F2A38~1\r\n")
    assert store.reads == []
    assert store.rejected[0][0] == "CT01_33~1~finish~12\\xe934~14:02:15.31~0~0F2A38~1"


def test_a_stored_read_keeps_its_line_exactly_as_sent():
    store = MemoryReadStore()
    controller = Controller(factory_with(store=store))
    controller.handshake()
    controller.feed(read_line(1))
    assert store.reads[0][0].raw_data == read_line(1)


# --- finding 2: a garbage flood costs a bounded amount -----------------------------------------


def test_only_a_sample_of_rejected_lines_is_stored_and_logged_each_minute(log_events):
    store = MemoryReadStore()
    factory = factory_with(LineLimits(garbage_window=10_000, max_rejected_per_minute=10_000), store=store)
    controller = Controller(factory)
    controller.handshake()
    for index in range(50):
        controller.feed(f"garbage {index}", read_line(index + 1))
    assert factory.lines_rejected == 50
    assert len(store.rejected) == 20
    assert factory.rejections.not_stored == 30
    assert factory.rejections.by_kind == {"unknown_line": 50}
    assert len(rejection_warnings(log_events)) == 20
    assert len(store.reads) == 50  # every good read between them is kept
    factory.clock.advance(60)
    controller.feed("garbage after a minute")
    assert len(store.rejected) == 21
    [*_, last] = rejection_warnings(log_events)
    assert "30 similar warnings not logged" in last["log_format"].format(**last) or last["suppressed"]


def test_a_connection_sending_almost_only_garbage_is_closed_and_its_neighbour_is_not():
    store = MemoryReadStore()
    factory = factory_with(store=store)
    good, bad = Controller(factory, port=40001), Controller(factory, port=40002)
    good.handshake(connection_id="GOOD")
    bad.handshake(connection_id="BAD")
    chunk = b"".join(b"%d garbage line\r\n" % index for index in range(1000))
    bad.protocol.dataReceived(chunk)
    assert bad.transport.disconnected  # aborted, not a graceful close it could stall
    assert factory.rejections.closed_for_garbage == 1
    assert factory.lines_rejected < 300  # nothing after the decision was even split into lines
    assert len(store.rejected) <= 20
    for sequence in range(1, 101):
        good.feed(read_line(sequence))
    assert not good.transport.disconnecting
    assert len([read for read, source in store.reads if source.stream_id == "connection:GOOD"]) == 100


def test_a_controller_with_some_bad_lines_is_not_closed():
    factory = factory_with()
    controller = Controller(factory)
    controller.handshake()
    for sequence in range(1, 1001):
        controller.feed(read_line(sequence))
        if sequence % 3 == 0:
            controller.feed("CT01_33~x~finish~1~14:02:15.31~0~0F2A38~1")
    assert not controller.transport.disconnecting
    assert factory.rejections.closed_for_garbage == 0


def test_a_flood_of_blank_lines_is_closed_too():
    factory = factory_with()
    controller = Controller(factory)
    controller.handshake()
    controller.protocol.dataReceived(b"\r\n" * 65536)
    assert controller.transport.disconnected
    assert factory.lines_rejected == 0


def test_hard_count_of_rejected_lines_per_minute_closes_the_connection():
    limits = LineLimits(max_rejected_per_minute=30, garbage_window=10_000)
    factory = factory_with(limits)
    controller = Controller(factory)
    controller.handshake()
    for sequence in range(1, 40):
        controller.feed("junk", read_line(sequence))
    assert controller.transport.disconnected
    assert factory.lines_rejected == 31


# --- finding 3: the line length limit -----------------------------------------------------------


def test_line_at_the_limit_is_read_and_one_byte_over_is_rejected_with_a_counted_reason():
    store = MemoryReadStore()
    factory = factory_with(LineLimits(max_line_length=60), store=store)
    controller = Controller(factory)
    controller.handshake()
    at_limit = "hello".ljust(60, "x")
    controller.feed(at_limit, at_limit + "y", read_line(1))
    assert [reason for _, reason, _ in store.rejected] == [
        "not a CTP01 tag line or reply", "line longer than 60 bytes"]
    assert factory.rejections.by_kind["too_long"] == 1
    assert len(store.reads) == 1


def test_a_10_mb_line_without_newline_is_never_buffered_past_the_limit():
    store = MemoryReadStore()
    factory = factory_with(store=store)
    controller = Controller(factory)
    controller.handshake()
    chunk = b"A" * 65536
    for _ in range(160):  # 10 MB, in the chunks a TCP transport delivers
        controller.protocol.dataReceived(chunk)
        assert len(controller.protocol._buffer) <= 1024 + 1
    controller.protocol.dataReceived(b"\r\n" + read_line(1).encode() + b"\r\n")
    assert factory.rejections.by_kind == {"too_long": 1}
    assert len(store.rejected[0][0]) == 1024
    assert len(store.reads) == 1
    assert not controller.transport.disconnecting


# --- finding 4: admission ------------------------------------------------------------------------


def test_connections_over_the_total_limit_are_refused_and_counted():
    factory = factory_with(admission=AdmissionPolicy(AdmissionLimits(max_connections=2)))
    first, second = Controller(factory, port=1), Controller(factory, port=2)
    assert factory.buildProtocol(IPv4Address("TCP", "10.9.9.9", 3)) is None
    assert factory.admission.refused == {"max_connections": 1}
    first.lose()
    third = Controller(factory, port=4)
    assert third.protocol is not None and second.protocol is not None


def test_connections_over_the_per_address_limit_are_refused_other_addresses_admitted():
    factory = factory_with(admission=AdmissionPolicy(AdmissionLimits(max_connections_per_address=2)))
    Controller(factory, port=1), Controller(factory, port=2)
    assert factory.buildProtocol(IPv4Address("TCP", "10.1.2.3", 3)) is None
    assert factory.buildProtocol(IPv4Address("TCP", "10.1.2.4", 3)) is not None
    assert factory.admission.refused == {"max_connections_per_address": 1}


def test_allow_list_admits_only_its_ranges_ipv4_and_ipv6():
    policy = AdmissionPolicy(AdmissionLimits(allow=parse_allow_list("10.0.0.0/8, 2001:db8::/32")))
    assert policy.admit(IPv4Address("TCP", "10.1.2.3", 1))[0] is None
    assert policy.admit(IPv6Address("TCP", "2001:db8::7", 1))[0] is None
    assert policy.admit(IPv6Address("TCP", "::ffff:10.4.4.4", 1))[0] is None
    assert policy.admit(IPv4Address("TCP", "192.0.2.1", 1))[0] == "not_allowed"
    assert policy.admit(IPv6Address("TCP", "2001:db9::1", 1))[0] == "not_allowed"
    assert policy.admit(UNIXAddress(None))[0] is None


@pytest.mark.parametrize("text", ["", "10.0.0.1/8", "banana", "10.0.0.0/33"])
def test_bad_allow_lists_are_refused(text):
    with pytest.raises(ValueError):
        parse_allow_list(text)


def test_allow_list_single_addresses_are_host_ranges():
    assert parse_allow_list("192.0.2.7") == (ipaddress.ip_network("192.0.2.7/32"),)


def test_closing_releases_the_address_count():
    factory = factory_with(admission=AdmissionPolicy(AdmissionLimits(max_connections_per_address=1)))
    controller = Controller(factory)
    controller.lose()
    controller.lose()  # a second connectionLost must not release twice
    assert factory.admission.open_total == 0
    assert Controller(factory).protocol is not None


# --- finding 8: clock-suspect reads -------------------------------------------------------------


def test_a_read_far_from_the_server_clock_is_stored_and_counted_not_rejected():
    store = MemoryReadStore()
    factory = factory_with(store=store)
    controller = Controller(factory)
    controller.handshake()
    controller.feed("CT01_33~1~finish~1234~2019-01-01T10:00:00.00~0~0F2A38~1", read_line(2))
    assert len(store.reads) == 2 and store.rejected == []
    assert factory.rejections.reads_clock_suspect == 1


def test_an_address_closed_for_garbage_is_refused_for_the_penalty_then_admitted_again():
    factory = factory_with(admission=AdmissionPolicy(AdmissionLimits(garbage_penalty=10)))
    flooder = Controller(factory, port=1)
    flooder.protocol.dataReceived(b"junk\r\n" * 300)
    assert flooder.transport.disconnected
    flooder.lose()
    assert factory.buildProtocol(IPv4Address("TCP", "10.1.2.3", 2)) is None
    assert factory.admission.refused == {"garbage_penalty": 1}
    assert factory.buildProtocol(IPv4Address("TCP", "10.9.9.9", 2)) is not None  # others are not punished
    factory.clock.advance(10)
    assert factory.buildProtocol(IPv4Address("TCP", "10.1.2.3", 3)) is not None


def test_a_flood_of_pings_or_replies_is_not_answered_without_bound_and_is_closed():
    """A client that never reads would grow our write buffer with every ack~ping, and every
    ack~getlocations would cost a database statement."""
    store = MemoryReadStore()
    factory = factory_with(store=store)
    controller = Controller(factory)
    controller.handshake()
    controller.sent()
    controller.protocol.dataReceived(b"ping\r\n" * 200 + b"ack~getlocations~x\r\n" * 200)
    assert controller.sent().count("ack~ping") <= 120
    assert len(store.locations) <= 121
    assert factory.rejections.by_kind["reply_flood"] >= 1
    assert controller.transport.disconnected


def test_a_bad_allow_option_is_a_usage_error(tmp_path, monkeypatch):
    from twisted.python import usage

    from chronotrack.tap import Options

    monkeypatch.chdir(tmp_path)
    with pytest.raises(usage.UsageError, match="allow"):
        Options().parseOptions(["--allow", "10.0.0.0/8,banana"])
    options = Options()
    options.parseOptions(["--allow", "10.0.0.0/8, 2001:db8::/32", "--max-line-length", "2048"])
    assert options.settings["max_line_length"] == 2048 and len(options.settings["allow"]) == 2


def test_answers_to_our_keepalive_pings_are_never_counted_as_a_reply_flood():
    factory = factory_with()
    controller = Controller(factory)
    controller.handshake()
    controller.feed(*["ack~ping"] * 500)
    assert factory.lines_rejected == 0 and not controller.transport.disconnecting
