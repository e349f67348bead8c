"""``twistd chronotrack-display``: options through the settings table, and the service tree."""

import pytest
from twisted.application.service import IServiceCollection
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage

from chronotrack.storage.db_service import DatabaseService
from web.service import WebService
from web.tap import Options, makeService


def parse(argv, monkeypatch, tmp_path, environ=None):
    monkeypatch.chdir(tmp_path)  # no ./chronotrack.ini from the developer's tree
    for name in ("CHRONOTRACK_WEB", "CHRONOTRACK_DSN", "CHRONOTRACK_MESSAGES", "CHRONOTRACK_COLLECTOR_STATUS",
                 "CHRONOTRACK_CONFIG", "CHRONOTRACK_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (environ or {}).items():
        monkeypatch.setenv(name, value)
    options = Options()
    options.parseOptions(argv)
    return options


def test_defaults_serve_on_localhost_5000_with_the_operators_messages(monkeypatch, tmp_path):
    settings = parse([], monkeypatch, tmp_path).settings
    assert settings["web"] == "tcp:5000:interface=127.0.0.1"
    assert settings["dsn"] is None and settings["data_dir"] == "./var"
    assert settings["collector_status"] == "http://127.0.0.1:61612/status"
    assert settings["messages"][0] == "Welcome to Race Display" and len(settings["messages"]) == 5


def test_environment_and_config_file_are_honoured(monkeypatch, tmp_path):
    config = tmp_path / "display.ini"
    config.write_text("[chronotrack]\nmessages = Go go go|Finish strong\ncollector-status = none\n")
    settings = parse(["--config", str(config)], monkeypatch, tmp_path,
                     {"CHRONOTRACK_WEB": "tcp:8080:interface=127.0.0.1"}).settings
    assert settings["web"] == "tcp:8080:interface=127.0.0.1"
    assert settings["messages"] == ("Go go go", "Finish strong")
    assert settings["collector_status"] == "none"


def test_bad_settings_are_usage_errors(monkeypatch, tmp_path):
    with pytest.raises(usage.UsageError, match="messages"):
        parse(["--messages", "|"], monkeypatch, tmp_path)
    with pytest.raises(usage.UsageError, match="nothing to do"):
        parse(["--web", "none"], monkeypatch, tmp_path)


def test_make_service_builds_database_then_web_without_doing_io(monkeypatch, tmp_path):
    options = parse(["--web", "tcp:0:interface=127.0.0.1", "--dsn", "host=/nowhere dbname=x"],
                    monkeypatch, tmp_path)
    reactor = MemoryReactorClock()
    root = makeService(options, reactor=reactor)
    assert IServiceCollection.providedBy(root)
    services = list(root)
    assert isinstance(services[0], DatabaseService) and services[0].embedded is None
    assert isinstance(services[1], WebService)
    assert services[1].display_app.database_source is services[0]
    assert services[1].display_app.collector_status is not None
    assert reactor.tcpServers == []  # nothing listens until startService


def test_display_does_not_own_the_embedded_server(monkeypatch, tmp_path):
    options = parse(["--data-dir", str(tmp_path / "var")], monkeypatch, tmp_path)
    database = list(makeService(options, reactor=MemoryReactorClock()))[0]
    assert database.embedded is not None and database.embedded.owner is False


def test_stream_limit_and_cors_origins_reach_the_site(monkeypatch, tmp_path):
    defaults = parse([], monkeypatch, tmp_path).settings
    assert defaults["max_stream_clients"] == 1000 and defaults["cors_origins"] == ()
    options = parse(["--web", "tcp:0:interface=127.0.0.1", "--dsn", "host=/nowhere dbname=x",
                     "--max-stream-clients", "25",
                     "--cors-origins", "https://results.example.org, http://localhost:8080/"],
                    monkeypatch, tmp_path)
    web = list(makeService(options, reactor=MemoryReactorClock()))[1]
    assert web.site.stream_gate.max_streams == 25
    assert web.site.header_policy.cors_origins == {b"https://results.example.org", b"http://localhost:8080"}


def test_bad_stream_limit_or_origin_is_a_usage_error(monkeypatch, tmp_path):
    with pytest.raises(usage.UsageError, match="max-stream-clients"):
        parse(["--max-stream-clients", "0"], monkeypatch, tmp_path)
    with pytest.raises(usage.UsageError, match="cors-origins"):
        parse(["--cors-origins", "*"], monkeypatch, tmp_path)
    with pytest.raises(usage.UsageError, match="cors-origins"):
        parse(["--cors-origins", "https://results.example.org/page"], monkeypatch, tmp_path)
