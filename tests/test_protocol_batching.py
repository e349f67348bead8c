"""Per-chunk work in the CTP01 protocol: what is done once per dataReceived chunk instead of once
per line keeps each read's meaning (its arrival time, its source) and its error handling."""

from __future__ import annotations

from datetime import datetime, timezone

from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher

from tests.test_protocol import FAST, Controller, make_factory

READ_1 = "CT01_33~1~start~9478~14:02:15.31~0~0F2A38~1"
READ_2 = "CT01_33~2~start~9479~14:02:16.31~0~0F2A38~1"
READ_3 = "CT01_33~3~start~9480~14:02:17.31~0~0F2A38~1"
OTHER_READER = "CT01_33~1~start~9481~14:02:18.31~0~AAAAAA~1"


def test_lines_of_one_chunk_share_the_clock_time_the_chunk_arrived():
    factory = make_factory(FAST)
    controller = Controller(factory)
    controller.handshake(("start",))
    first_chunk_at = factory.clock.seconds()
    controller.protocol.dataReceived(f"{READ_1}\r\n{READ_2}\r\n".encode())
    factory.clock.advance(1.5)
    controller.protocol.dataReceived(f"{READ_3}\r\n".encode())
    stamps = [read.received_at for read, _ in factory.store.reads]
    assert stamps == [datetime.fromtimestamp(first_chunk_at, timezone.utc)] * 2 + [
        datetime.fromtimestamp(first_chunk_at + 1.5, timezone.utc)]


def test_a_line_handled_outside_a_chunk_gets_its_own_arrival_time():
    factory = make_factory(FAST)
    controller = Controller(factory)
    controller.handshake(("start",))
    controller.protocol.lineReceived(READ_1.encode())
    factory.clock.advance(2)
    controller.protocol.lineReceived(READ_2.encode())
    first, second = (read.received_at for read, _ in factory.store.reads)
    assert (second - first).total_seconds() == 2


def test_reads_of_one_reader_share_a_source_and_another_reader_gets_its_own_stream():
    factory = make_factory(FAST)
    controller = Controller(factory)
    controller.handshake(("start",), connection_id=None)
    controller.feed(READ_1, READ_2, OTHER_READER)
    (_, first), (_, second), (_, other) = factory.store.reads
    assert first is second
    assert first.stream_id == "event:E1/reader:0F2A38"
    assert other.stream_id == "event:E1/reader:AAAAAA"


def test_a_failed_record_read_is_logged_and_the_connection_keeps_reading():
    observer = EventLoggingObserver()
    globalLogPublisher.addObserver(observer)
    try:
        factory = make_factory(FAST)
        factory.store.fail_methods = {"record_read"}
        controller = Controller(factory)
        controller.handshake(("start",))
        controller.protocol.dataReceived(f"{READ_1}\r\n{READ_2}\r\n".encode())
    finally:
        globalLogPublisher.removeObserver(observer)
    assert not controller.transport.disconnecting
    assert factory.reads_received == 2
    failed = [event for event in observer if "log_failure" in event and event.get("method") == "record_read"]
    assert len(failed) == 2  # a Deferred per read from this store: each failure is logged
