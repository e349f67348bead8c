"""``--log-format json``: every line the real twistd collector writes is one JSON object."""

from __future__ import annotations

import io
import json
from datetime import datetime

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from chronotrack.accounts.secret_box import KEY_FILE_NAME, SecretBox
from chronotrack.logs import json_file_observer
from chronotrack.tap import Options
from tests.postgres import query
from tests.processes import CollectorProcess, run_simulator, wait_for

PASSWORD = "correct horse battery"
WRONG_PASSWORD = "not the staple"
USER_ID = "finish-line-1"
KEYS = {"time", "level", "namespace", "message", "fields"}


def json_lines(text: str) -> list[dict]:
    """Every non-empty line parsed as JSON; a line that is not an object fails the test."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("===== start"):  # CollectorProcess's own marker
            continue
        record = json.loads(line)
        assert isinstance(record, dict), f"line {number} is not a JSON object: {line!r}"
        assert KEYS <= set(record), f"line {number} lacks {KEYS - set(record)}: {line!r}"
        assert datetime.fromisoformat(record["time"]).tzinfo is not None
        records.append(record)
    return records


def test_an_authenticated_run_logs_json_lines_and_no_password(tmp_path, pg_dsn):
    """Real twistd with --log-format json and hmac-sha1: parseable lines, the events we log, no password."""
    box = SecretBox.from_file(tmp_path / "var" / KEY_FILE_NAME)
    collector = CollectorProcess(tmp_path, dsn=pg_dsn,
                                 extra_args=("--authentication", "hmac-sha1", "--log-format", "json")).start()
    try:
        [(partner_id,)] = query(pg_dsn, "INSERT INTO timing_partners (slug, name) VALUES ('acme', 'Acme')"
                                        " RETURNING id")
        query(pg_dsn, "INSERT INTO controller_credentials (timing_partner_id, user_id, password_encrypted)"
                      " VALUES (%s, %s, %s)", (partner_id, USER_ID, box.encrypt(PASSWORD)))
        run_simulator(collector.ctp01_port, "--user", USER_ID, "--password", WRONG_PASSWORD,
                      "--reads", "3", "--rate", "0", "--reconnect-delay", "30",
                      "--exit-after-seconds", "1.5", check=False)
        run_simulator(collector.ctp01_port, "--user", USER_ID, "--password", PASSWORD, "--locations", "start",
                      "--reads", "5", "--rate", "0", "--malformed-every", "2", "--linger", "0.3", "--quiet")
        wait_for(lambda: query(pg_dsn, "SELECT count(*) FROM timing_reads")[0][0] >= 5, 30, "5 reads")
    finally:
        collector.stop()
    text = collector.log_path.read_text()
    records = json_lines(text)
    assert len(records) > 10
    messages = [record["message"] for record in records]
    assert any(f"authorized as {USER_ID}" in message for message in messages)
    assert any("authorization refused" in message for message in messages)
    assert {"info", "warn"} <= {record["level"] for record in records}
    assert any(record["namespace"].startswith("chronotrack.") and record["fields"] for record in records)
    assert PASSWORD not in text and WRONG_PASSWORD not in text
    assert "correct horse" not in text


def test_a_json_line_holds_the_rendered_message_fields_and_traceback_on_one_line():
    out = io.StringIO()
    log = Logger(namespace="chronotrack.test", observer=json_file_observer(out))
    log.warn("stored {count} reads\nfrom {peer}", count=3, peer=("10.0.0.1", 5), when=object())
    try:
        1 / 0
    except ZeroDivisionError:
        log.failure("write failed", Failure())
    first, second = out.getvalue().splitlines()
    record = json.loads(first)
    assert record["level"] == "warn" and record["namespace"] == "chronotrack.test"
    assert record["message"] == "stored 3 reads\nfrom ('10.0.0.1', 5)"
    assert record["fields"]["count"] == 3 and record["fields"]["peer"] == ["10.0.0.1", 5]
    assert record["fields"]["when"].startswith("<object object")
    failed = json.loads(second)
    assert failed["level"] == "critical" and "ZeroDivisionError" in failed["traceback"]
    assert LogLevel.levelWithName(failed["level"]) is LogLevel.critical


def test_log_format_json_sets_twistds_logger_and_text_leaves_it():
    class Twistd(dict):
        pass

    for chosen, expected in (("json", "chronotrack.logs.json_observer"), ("text", None)):
        options = Options()
        options.parent = Twistd(logger=None)
        options.parseOptions(["--log-format", chosen, "--dsn", "host=db dbname=x"])
        assert options.parent["logger"] == expected
