"""Settings: command line over environment over config file over defaults, with clear errors."""

import pytest
from twisted.python import usage

from chronotrack.config import SETTINGS, ConfigError, resolve_settings
from chronotrack.tap import COLLECTOR_SETTINGS, Options


def test_defaults_apply_when_nothing_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    values = resolve_settings({}, environ={})
    assert values["port"] == "tcp:61611"
    assert values["status"] == "tcp:61612:interface=127.0.0.1"
    assert values["dsn"] is None
    assert (values["greeting_delay"], values["setting_delay"], values["command_delay"]) == (0.5, 0.1, 0.2)
    assert values["ping_interval"] == 30.0 and values["retention_days"] == 30
    assert values["messages"][0] == "Welcome to Race Display" and len(values["messages"]) == 5


def test_command_line_beats_environment_beats_config_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "site.ini"
    config.write_text("[chronotrack]\nport = tcp:1000\nstatus = tcp:2000\ndata-dir = /srv/a\n")
    environ = {"CHRONOTRACK_STATUS": "tcp:3000", "CHRONOTRACK_DATA_DIR": "/srv/b"}
    values = resolve_settings({"data-dir": "/srv/c"}, environ=environ, config_path=str(config))
    assert values["port"] == "tcp:1000"  # file
    assert values["status"] == "tcp:3000"  # environment over file
    assert values["data_dir"] == "/srv/c"  # command line over both


def test_config_file_found_through_environment_and_in_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chronotrack.ini").write_text("[chronotrack]\nretention-days = 7\n")
    assert resolve_settings({}, environ={})["retention_days"] == 7
    other = tmp_path / "other.ini"
    other.write_text("[chronotrack]\nretention_days = 9\n")
    assert resolve_settings({}, environ={"CHRONOTRACK_CONFIG": str(other)})["retention_days"] == 9


@pytest.mark.parametrize("name, value, message", [
    ("greeting-delay", "-1", "must be zero or more"),
    ("ping-interval", "0", "must be more than zero"),
    ("results-freshness", "nan", "must be a finite number"),  # would freeze the results for good
    ("ping-interval", "inf", "must be a finite number"),
    ("batch-size", "lots", "bad value"),
    ("pushmode-ack", "maybe", "true or false"),
])
def test_bad_values_name_the_setting_and_the_source(name, value, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=message) as raised:
        resolve_settings({name: value}, environ={})
    assert f"--{name}" in str(raised.value)


def test_unknown_key_in_config_file_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "c.ini"
    config.write_text("[chronotrack]\nsurprise = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'surprise'"):
        resolve_settings({}, environ={}, config_path=str(config))


def test_zero_handshake_delays_are_allowed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = Options()
    options.parseOptions(["--greeting-delay", "0", "--setting-delay", "0", "--command-delay", "0"])
    assert (options.handshake.greeting_delay, options.handshake.setting_delay,
            options.handshake.command_delay) == (0, 0, 0)


def test_bad_option_is_a_usage_error_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(usage.UsageError, match="event-timezone"):
        Options().parseOptions(["--event-timezone", "Mars/Olympus_Mons"])


def test_help_documents_every_collector_option_and_its_environment_variable():
    text = " ".join(str(Options()).split())
    unwrapped = "".join(text.split())  # a long variable name may be wrapped mid-word
    for setting in SETTINGS:
        if setting.name in COLLECTOR_SETTINGS:
            assert f"--{setting.name}=" in text
            assert f"env{setting.environment_variable}]" in unwrapped
