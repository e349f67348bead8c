"""The collector's start-up side of authentication: the warning for an open port, the settings."""

from __future__ import annotations

import pytest

from chronotrack.ctp01 import settings_from_config
from chronotrack.service import open_to_anyone_warning
from chronotrack.tap import Options


@pytest.mark.parametrize("port", [
    "tcp:61611", "61611", "tcp:port=61611", "tcp:61611:interface=0.0.0.0",
    "tcp:61611:interface=192.168.1.20", "tcp6:61611:interface=\\:\\:",
])
def test_no_authentication_on_a_port_beyond_loopback_is_warned_about(port):
    warning = open_to_anyone_warning("none", port)
    assert warning is not None and "anyone" in warning and port in warning


@pytest.mark.parametrize("port", [
    "tcp:61611:interface=127.0.0.1", "tcp:61611:interface=127.0.0.2",
    "tcp6:61611:interface=\\:\\:1", "tcp:61611:interface=localhost", "unix:/run/ctp01.sock",
])
def test_a_loopback_or_local_port_is_not_warned_about(port):
    assert open_to_anyone_warning("none", port) is None


@pytest.mark.parametrize("mode", ["plaintext", "hmac-sha1", "seed-md5"])
def test_with_authentication_on_an_open_port_is_fine(mode):
    assert open_to_anyone_warning(mode, "tcp:61611") is None


def test_collector_options_take_authentication_key_file_and_greeting_timeout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = Options()
    options.parseOptions(["--authentication", "HMAC-SHA1", "--secret-key-file", "/etc/ct/key",
                          "--greeting-timeout", "4"])
    assert options.settings["authentication"] == "hmac-sha1"
    assert options.settings["secret_key_file"] == "/etc/ct/key"
    assert options.handshake.greeting_timeout == 4.0


def test_the_greeting_timeout_defaults_to_ten_seconds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = Options()
    options.parseOptions([])
    assert options.settings["authentication"] == "none"
    assert options.handshake.greeting_timeout == 10.0
    assert settings_from_config({}).greeting_timeout == 10.0
