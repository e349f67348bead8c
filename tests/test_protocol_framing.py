"""The protocol splits each received chunk into lines once (not once per line, as
LineReceiver does): lines cut anywhere between chunks, overlong lines in the middle of a
chunk, lines arriving while a line is handled, and a pause mid-chunk all keep every line,
in order, once."""

from __future__ import annotations

from tests.test_protocol import FAST, Controller, make_factory


def line(number: int, location: str = "start") -> str:
    return f"CT01_33~{number}~{location}~{9000 + number}~14:02:{number % 60:02d}.31~0~0F2A38~1"


def started():
    factory = make_factory(FAST)
    controller = Controller(factory)
    controller.handshake(("start",))
    return factory, controller


def stored_numbers(factory) -> list[int]:
    return [read.sequence_number for read, _ in factory.store.reads]


def test_lines_cut_at_every_byte_between_chunks_are_each_read_once_in_order():
    factory, controller = started()
    data = "".join(line(number) + ("\r\n" if number % 2 else "\n") for number in range(1, 31)).encode()
    cuts = [0, 1, 2, 7, 50, 51, 52, 300, 301, 777, 778, len(data) - 1, len(data)]
    for start, end in zip(cuts, cuts[1:]):
        controller.protocol.dataReceived(data[start:end])
    assert stored_numbers(factory) == list(range(1, 31))
    assert controller.protocol._buffer == b""


def test_an_overlong_line_inside_a_chunk_is_rejected_and_the_lines_around_it_are_read():
    factory, controller = started()
    overlong = "X" * (controller.protocol.MAX_LENGTH + 10)
    chunk = f"{line(1)}\r\n{overlong}\r\n{line(2)}\r\n{line(3)}\r\nCT01_33~4~st".encode()
    controller.protocol.dataReceived(chunk)
    controller.protocol.dataReceived(f"art~9004~14:02:04.31~0~0F2A38~1\r\n".encode())
    assert stored_numbers(factory) == [1, 2, 3, 4]
    assert factory.rejections.by_kind["too_long"] == 1


def test_a_partial_line_longer_than_the_limit_is_dropped_up_to_its_end():
    factory, controller = started()
    controller.protocol.dataReceived(f"{line(1)}\r\n".encode() + b"Y" * (controller.protocol.MAX_LENGTH + 5))
    controller.protocol.dataReceived(b"YYYY\r\n" + f"{line(2)}\r\n".encode())
    assert stored_numbers(factory) == [1, 2]
    assert factory.rejections.by_kind["too_long"] == 1


def test_data_arriving_while_a_line_is_handled_is_read_after_the_chunk():
    factory, controller = started()
    protocol = controller.protocol
    handle = protocol.lineReceived
    fed = []

    def reentrant(data: bytes):
        result = handle(data)
        if not fed:
            fed.append(True)
            protocol.dataReceived(f"{line(3)}\r\n{line(4)}".encode())  # as a transport might
        return result

    protocol.lineReceived = reentrant
    protocol.dataReceived(f"{line(1)}\r\n{line(2)}\r\n".encode())
    protocol.dataReceived(b"\r\n")
    assert stored_numbers(factory) == [1, 2, 3, 4]


def test_lines_behind_a_pause_wait_in_the_buffer_until_resumed():
    factory, controller = started()
    protocol = controller.protocol
    handle = protocol.lineReceived

    def pausing(data: bytes):
        result = handle(data)
        if len(factory.store.reads) == 2:
            protocol.pauseProducing()
        return result

    protocol.lineReceived = pausing
    protocol.dataReceived("".join(line(number) + "\r\n" for number in range(1, 6)).encode())
    assert stored_numbers(factory) == [1, 2]
    protocol.lineReceived = handle
    protocol.resumeProducing()
    assert stored_numbers(factory) == [1, 2, 3, 4, 5]
