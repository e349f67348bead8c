"""Unit tests of the pure CTP01 core: parsing, time formats, the handshake plan, keys."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from chronotrack import __version__
from chronotrack.config import ConfigError
from chronotrack.ctp01 import (
    Greeting,
    HandshakeSettings,
    IncomingLine,
    LineKind,
    MalformedLine,
    classify_line,
    command_plan,
    detect_time_format,
    handshake_plan,
    loggable_line,
    parse_greeting,
    parse_read_time,
    parse_tag_line,
    read_stream_id,
    reply_plan,
    server_greeting,
    server_settings,
    settings_from_config,
    start_commands,
    start_plan,
    stream_key,
)

DENVER = ZoneInfo("America/Denver")
UTC = timezone.utc
DAY = date(2024, 7, 20)  # summer: Denver is UTC-6 (MDT)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- tag lines --------------------------------------------------------------------------


def test_tilde_separated_line_keeps_every_field_in_its_place():
    """CT01_33: field 5 is the lap count, field 6 the reader id, field 7 the gator."""
    line = "CT01_33~1~start~9478~14:02:15.31~3~0F2A38~12"
    read = parse_tag_line(line, DENVER, DAY)
    assert read.format_id == "CT01_33"
    assert read.sequence_number == 1
    assert read.location_name == "start"
    assert read.tag_code == "9478"
    assert read.read_time == "14:02:15.31"
    assert read.read_timestamp == utc(2024, 7, 20, 20, 2, 15, 310000)
    assert read.lap_count == 3
    assert read.reader_id == "0F2A38"
    assert read.gator_number == 12
    assert read.raw_data == line


def test_comma_separated_line_ct01_13():
    """The high digit 1 after '_' means commas; tildes inside such a line are not separators."""
    line = "CT01_13,42,finish,1234,2024-07-20T09:15:00.50,7,a1b2c3,0"
    read = parse_tag_line(line, DENVER, DAY)
    assert (read.sequence_number, read.location_name, read.tag_code) == (42, "finish", "1234")
    assert read.lap_count == 7
    assert read.reader_id == "a1b2c3"  # any case, kept as sent
    assert read.gator_number == 0
    assert read.read_timestamp == utc(2024, 7, 20, 15, 15, 0, 500000)
    assert read.raw_data == line


@pytest.mark.parametrize("format_id, separator", [
    ("CT01_23", ";"), ("CT01_43", "|"), ("CT01_53", "\t"), ("CT01_63", " "),
])
def test_other_separators(format_id, separator):
    """Semicolon, pipe, tab and space separated lines parse to the same fields."""
    fields = [format_id, "5", "10k", "77", "10:00:00.00", "2", "ABC123", "4"]
    read = parse_tag_line(separator.join(fields), DENVER, DAY)
    assert (read.sequence_number, read.location_name, read.tag_code) == (5, "10k", "77")
    assert (read.lap_count, read.reader_id, read.gator_number) == (2, "ABC123", 4)


def test_trailing_line_end_is_not_part_of_the_gator():
    read = parse_tag_line("CT01_33~1~start~9478~14:02:15.31~0~0F2A38~1\r\n", DENVER, DAY)
    assert read.gator_number == 1


def test_guntime_and_newlocation_are_recognised():
    gun = parse_tag_line("CT01_33~4~start~guntime~14:02:15.31~0~DF239A~0", DENVER, DAY)
    new = parse_tag_line("CT01_33~2038~30k~newlocation~09:15:21.00~0~ED932A~0", DENVER, DAY)
    assert gun.is_gun_time and not gun.is_new_location
    assert new.is_new_location and not new.is_gun_time


@pytest.mark.parametrize("line, reason_part", [
    ("CT01_33~1~start~9478~14:02:15.31~0~0F2A38", "expected 8 fields"),
    ("CT01_33~1~start~9478~14:02:15.31~0~0F2A38~1~9", "expected 8 fields"),
    ("CT01_13~1~start~9478~14:02:15.31~0~0F2A38~1", "followed by its separator"),
    ("CT01_33~0~start~9478~14:02:15.31~0~0F2A38~1", "sequence number"),
    ("CT01_33~1000000~start~9478~14:02:15.31~0~0F2A38~1", "sequence number"),
    ("CT01_33~x1~start~9478~14:02:15.31~0~0F2A38~1", "sequence number"),
    ("CT01_33~1~seventeen-chars-xx~9478~14:02:15.31~0~0F2A38~1", "location"),
    ("CT01_33~1~~9478~14:02:15.31~0~0F2A38~1", "location"),
    ("CT01_13,1,a|b,9478,14:02:15.31,0,0F2A38,1", "location"),
    ("CT01_33~1~start~123456789~14:02:15.31~0~0F2A38~1", "tag"),
    ("CT01_33~1~start~~14:02:15.31~0~0F2A38~1", "tag"),
    ("CT01_33~1~start~9478~14:02:15.31~0~0F2A3~1", "reader id"),
    ("CT01_33~1~start~9478~14:02:15.31~0~0F2A38X~1", "reader id"),
    ("CT01_33~1~start~9478~14:02:15.31~0~0F-A38~1", "reader id"),
    ("CT01_33~1~start~9478~14:02~0~0F2A38~1", "time"),
    ("CT01_33~1~start~9478~14:61:15.31~0~0F2A38~1", "time"),
    ("CT01_33~1~start~9478~2024-13-01T10:00:00~0~0F2A38~1", "time"),
    ("CT01_33~1~start~9478~yesterday~0~0F2A38~1", "time"),
    ("CT01_33~1~start~9478~14:02:15.31~1000~0F2A38~1", "lap count"),
    ("CT01_33~1~start~9478~14:02:15.31~0~0F2A38~100", "gator"),
    ("CT01_93~1~start~9478~14:02:15.31~0~0F2A38~1", "unknown format id"),
    ("CT02_33~1~start~9478~14:02:15.31~0~0F2A38~1", "unknown format id"),
    ("XX01_33~1~start~9478~14:02:15.31~0~0F2A38~1", "format id"),
])
def test_malformed_lines_say_why(line, reason_part):
    """Every broken field raises MalformedLine (a ValueError) naming the problem."""
    with pytest.raises(MalformedLine) as caught:
        parse_tag_line(line, DENVER, DAY)
    assert reason_part in caught.value.reason
    assert isinstance(caught.value, ValueError)


# --- time formats -----------------------------------------------------------------------


def test_normal_time_is_wall_clock_in_the_event_zone():
    assert parse_read_time("14:02:15.31", DENVER, DAY) == utc(2024, 7, 20, 20, 2, 15, 310000)


def test_normal_time_in_winter_uses_standard_time():
    """Same text, a winter day: Denver is UTC-7, so one hour later in UTC."""
    winter = parse_read_time("14:02:15.31", DENVER, date(2024, 1, 15))
    assert winter == utc(2024, 1, 15, 21, 2, 15, 310000)


def test_normal_time_past_24_hours_counts_days_from_the_event_day():
    """102:12:32.37 is 4 days and 6:12:32.37 after midnight of the event day."""
    stamp = parse_read_time("102:12:32.37", DENVER, DAY)
    assert stamp == utc(2024, 7, 24, 12, 12, 32, 370000)
    assert stamp.tzinfo is not None


def test_normal_time_past_24_hours_across_a_dst_change_is_wall_clock():
    """Event starts Saturday 9 March 2024 (MST); 38:30 is Sunday 14:30 MDT (UTC-6)."""
    stamp = parse_read_time("38:30:00.00", DENVER, date(2024, 3, 9))
    assert stamp == utc(2024, 3, 10, 20, 30)


def test_iso_time_without_zone_is_event_local_and_dst_correct():
    assert parse_read_time("2008-10-16T14:02:15.31", DENVER, DAY) == utc(2008, 10, 16, 20, 2, 15, 310000)
    assert parse_read_time("2008-12-16T14:02:15.31", DENVER, DAY) == utc(2008, 12, 16, 21, 2, 15, 310000)


def test_iso_time_with_zone_honours_the_zone():
    assert parse_read_time("2008-10-16T14:02:15.31Z", DENVER, DAY) == utc(2008, 10, 16, 14, 2, 15, 310000)
    assert parse_read_time("2008-10-16T14:02:15+02:00", DENVER, DAY) == utc(2008, 10, 16, 12, 2, 15)


def test_unix_time_is_absolute():
    stamp = parse_read_time("1224165735.31", DENVER, DAY)
    assert stamp == utc(2008, 10, 16, 14, 2, 15, 310000)
    assert stamp.utcoffset() == timedelta(0)


def test_msecs_large_values_are_since_the_epoch():
    assert parse_read_time("1224165735310", DENVER, DAY) == utc(2008, 10, 16, 14, 2, 15, 310000)


def test_msecs_small_values_are_since_midnight_of_the_event_day():
    """50535310 ms is 14:02:15.31 local time on the event day."""
    assert parse_read_time("50535310", DENVER, DAY) == utc(2024, 7, 20, 20, 2, 15, 310000)


@pytest.mark.parametrize("text, kind", [
    ("14:02:15.31", "normal"), ("102:12:32.37", "normal"),
    ("2008-10-16T14:02:15.31", "iso"), ("2008-10-16T14:02:15.31Z", "iso"),
    ("1224165735.31", "unix"), ("1224165735310", "msecs"), ("50535310", "msecs"),
])
def test_time_format_is_detected_from_the_text(text, kind):
    assert detect_time_format(text) == kind


def test_every_parsed_timestamp_is_aware():
    for text in ("14:02:15.31", "2008-10-16T14:02:15.31", "1224165735.31", "50535310"):
        assert parse_read_time(text, DENVER, DAY).tzinfo is not None


# --- greeting and classification ---------------------------------------------------------


def test_greeting_with_spaces_in_name_and_version():
    greeting = parse_greeting("RunScore~Version 6.5 Level 2007.09.26~2")
    assert greeting == Greeting("RunScore", "Version 6.5 Level 2007.09.26", "2")


def test_any_program_name_is_accepted():
    assert parse_greeting("SimpleClient~0.5.0~CTP01\r\n") == Greeting("SimpleClient", "0.5.0", "CTP01")
    assert parse_greeting("My Own Tool~1~CTP01").program_name == "My Own Tool"


@pytest.mark.parametrize("line", ["SimpleClient~0.5.0", "hello", "~1.0~CTP01"])
def test_short_or_nameless_greeting_is_malformed(line):
    with pytest.raises(MalformedLine):
        parse_greeting(line)


@pytest.mark.parametrize("line, expected", [
    ("CT01_33~1~start~9478~14:02:15.31~0~0F2A38~1", IncomingLine(LineKind.TAG)),
    ("CT01_13,1,start", IncomingLine(LineKind.TAG)),
    ("ping", IncomingLine(LineKind.PING)),
    ("ack~ping", IncomingLine(LineKind.ACK, "ping")),
    ("ack~getlocations~start~finish", IncomingLine(LineKind.ACK, "getlocations", ("start", "finish"))),
    ("ack~geteventinfo~Boston~42~A race", IncomingLine(LineKind.ACK, "geteventinfo", ("Boston", "42", "A race"))),
    ("err~~unknown command", IncomingLine(LineKind.ERR, "", ("unknown command",))),
    ("err~getconnectionid~not supported", IncomingLine(LineKind.ERR, "getconnectionid", ("not supported",))),
    ("SimpleClient~0.5.0~CTP01", IncomingLine(LineKind.UNKNOWN)),
    ("ack", IncomingLine(LineKind.UNKNOWN)),
])
def test_classify_line(line, expected):
    assert classify_line(line) == expected


# --- what we send ----------------------------------------------------------------------


def test_default_settings_match_the_system_being_replaced():
    settings = HandshakeSettings()
    assert (settings.greeting_delay, settings.setting_delay, settings.command_delay) == (0.5, 0.1, 0.2)
    assert (settings.ping_interval, settings.idle_timeout, settings.reply_timeout) == (30.0, 90.0, 5.0)
    assert settings.pushmode_ack is False
    assert settings.server_name == "ChronoTrackHub"
    assert settings.server_version == __version__
    assert settings.event_timezone.utcoffset(datetime(2024, 7, 20)) is not None


def test_server_settings_ask_for_push_and_iso():
    assert server_settings(HandshakeSettings()) == [
        "stream-mode=push", "time-format=iso", "location=multi", "guntimes=true",
        "newlocations=true", "connection-id=true",
    ]


def test_pushmode_ack_is_requested_only_when_configured():
    lines = server_settings(HandshakeSettings(pushmode_ack=True))
    assert lines[-1] == "pushmode-ack=true"
    assert len(lines) == 7
    assert server_greeting(HandshakeSettings(), 7) == "ChronoTrackHub~0.1.0~7"


def test_handshake_plan_lines_and_delays():
    """Greeting reply 0.5 s after the greeting, settings 0.1 s apart, commands 0.2 s apart."""
    assert handshake_plan(HandshakeSettings()) == [
        (0.5, "ChronoTrackHub~0.1.0~6"),
        (0.1, "stream-mode=push"),
        (0.1, "time-format=iso"),
        (0.1, "location=multi"),
        (0.1, "guntimes=true"),
        (0.1, "newlocations=true"),
        (0.1, "connection-id=true"),
        (0.2, "geteventinfo"),
        (0.2, "getlocations"),
        (0.2, "getconnectionid"),
    ]


def test_handshake_plan_with_zero_delays():
    plan = handshake_plan(HandshakeSettings(greeting_delay=0, setting_delay=0, command_delay=0))
    assert {delay for delay, _ in plan} == {0}
    assert len(plan) == 10


def test_start_commands_resume_after_the_last_kept_read():
    assert start_commands(["start", "10k", "finish"], {"start": 41, "finish": 7}) == [
        "start~start~42", "start~10k", "start~finish~8",
    ]


def test_start_commands_bare_start_without_locations():
    assert start_commands([], {"start": 41}) == ["start"]


def test_start_commands_ignore_repeated_and_empty_locations():
    assert start_commands(["a", "", "a"], {}) == ["start~a"]


def test_start_plan_spaces_commands():
    assert start_plan(["start~a", "start~b"], HandshakeSettings(command_delay=0.2)) == [
        (0.2, "start~a"), (0.2, "start~b"),
    ]


def test_stream_keys():
    assert stream_key("ABC", "E1") == "connection:ABC"
    assert stream_key(None, "E1") == "event:E1/reader:*"
    assert stream_key("", "E1") == "event:E1/reader:*"
    assert read_stream_id("ABC", "E1", "0F2A38") == "connection:ABC"
    assert read_stream_id(None, "E1", "0F2A38") == "event:E1/reader:0F2A38"
    assert read_stream_id(None, None, "0F2A38") == "event:unknown/reader:0F2A38"


def test_settings_from_config_reads_zone_and_delays():
    settings = settings_from_config({"greeting_delay": 0.0, "event_timezone": "America/Denver",
                                     "pushmode_ack": True, "port": "tcp:61611"})
    assert settings.greeting_delay == 0.0
    assert settings.event_timezone == DENVER
    assert settings.pushmode_ack is True
    assert settings.command_delay == 0.2


def test_settings_from_config_rejects_unknown_zone():
    with pytest.raises(ConfigError):
        settings_from_config({"event_timezone": "Mars/Olympus_Mons"})


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize("line, expected", [
    ("authorize~timer1~s3cret", IncomingLine(LineKind.AUTHORIZE, "authorize", ("timer1", "s3cret"))),
    ("AUTHORIZE~timer1~a~b~c", IncomingLine(LineKind.AUTHORIZE, "authorize", ("timer1", "a~b~c"))),
    ("authorize~timer1", IncomingLine(LineKind.AUTHORIZE, "authorize", ("timer1", ""))),
    ("authorize", IncomingLine(LineKind.UNKNOWN)),
])
def test_classify_authorize_keeps_the_proof_whole(line, expected):
    assert classify_line(line) == expected


def test_loggable_line_hides_the_password_or_proof():
    assert loggable_line("authorize~timer1~s3cret~x") == "authorize~timer1~(hidden)"
    assert loggable_line("CT01_33~1~start~9478~14:02:15.31~0~0F2A38~1").startswith("CT01_33")


def test_authentication_settings_are_counted_in_the_greeting_reply():
    extra = ["authentication=hmac-sha1", "authentication-seed=abc"]
    plan = reply_plan(HandshakeSettings(), extra)
    assert plan[0] == (0.5, "ChronoTrackHub~0.1.0~8")
    assert [line for _, line in plan[-2:]] == extra
    assert handshake_plan(HandshakeSettings(), extra) == plan + command_plan(HandshakeSettings())
    assert [line for _, line in command_plan(HandshakeSettings())] == [
        "geteventinfo", "getlocations", "getconnectionid"]


def test_greeting_timeout_defaults_to_ten_seconds_and_comes_from_config():
    assert HandshakeSettings().greeting_timeout == 10.0
    assert settings_from_config({"greeting_timeout": 2.5}).greeting_timeout == 2.5
