"""CTP01 authentication end to end: the real twistd collector, PostgreSQL and the simulator over TCP.

For each mode: the simulator with the right password has its reads stored under its
partner; the simulator with a wrong password, and a raw client that streams tag lines
without authorizing, store nothing at all.
"""

from __future__ import annotations

import socket

import pytest

from chronotrack.accounts.secret_box import KEY_FILE_NAME, SecretBox
from tests.postgres import query
from tests.processes import CollectorProcess, run_simulator, wait_for

PASSWORD = "correct horse battery"
USER_ID = "finish-line-1"
READS = 5
TAG_LINES = [f"CT01_33~{n}~start~{900 + n}~08:00:0{n}.00~0~0F2A38~1" for n in range(1, 6)]


@pytest.fixture
def key_box(tmp_path):
    """The collector's key file, made before it starts (as `chronotrack controller add` would)."""
    return SecretBox.from_file(tmp_path / "var" / KEY_FILE_NAME)


def add_controller_login(dsn: str, box: SecretBox) -> int:
    wait_for(lambda: query(dsn, "SELECT to_regclass('controller_credentials')")[0][0], 30,
             "the collector to create its schema")
    [(partner_id,)] = query(dsn, "INSERT INTO timing_partners (slug, name) VALUES ('acme', 'Acme Timing')"
                                 " RETURNING id")
    query(dsn, "INSERT INTO controller_credentials (timing_partner_id, user_id, password_encrypted)"
               " VALUES (%s, %s, %s)", (partner_id, USER_ID, box.encrypt(PASSWORD)))
    return partner_id


def stream_without_authorizing(port: int) -> str:
    """A raw client: greets, then pushes tag lines without ever sending authorize."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"RawClient~1.0~CTP01\r\n")
        client.sendall("".join(line + "\r\n" for line in TAG_LINES).encode())
        received = b""
        while chunk := client.recv(4096):
            received += chunk
    return received.decode()


@pytest.mark.parametrize("mode", ["plaintext", "hmac-sha1", "hmac-md5", "seed-sha1", "seed-md5"])
def test_only_the_authorized_controller_has_its_reads_stored(tmp_path, pg_dsn, key_box, mode):
    collector = CollectorProcess(tmp_path, dsn=pg_dsn, extra_args=("--authentication", mode)).start()
    try:
        partner_id = add_controller_login(pg_dsn, key_box)  # added while the collector runs

        wrong = run_simulator(collector.ctp01_port, "--user", USER_ID, "--password", "not it",
                              "--event-id", "WRONG", "--reads", str(READS), "--rate", "0",
                              "--reconnect-delay", "30", "--exit-after-seconds", "1.5",
                              "--verbose", check=False)
        assert "authorization refused" in wrong.stderr + wrong.stdout
        raw = stream_without_authorizing(collector.ctp01_port)
        assert "err~authorize~" in raw

        run_simulator(collector.ctp01_port, "--user", USER_ID, "--password", PASSWORD,
                      "--event-id", "RIGHT", "--locations", "start", "--reads", str(READS),
                      "--rate", "0", "--linger", "0.3", "--quiet")
        wait_for(lambda: query(pg_dsn, "SELECT count(*) FROM timing_reads")[0][0] >= READS, 30,
                 f"{READS} reads")
        rows = query(pg_dsn, "SELECT timing_partner_id, sequence_number FROM timing_reads"
                             " ORDER BY sequence_number")
        assert rows == [(partner_id, n) for n in range(1, READS + 1)]
        assert query(pg_dsn, "SELECT event_id FROM timing_sessions") == [("RIGHT",)]
        assert query(pg_dsn, "SELECT count(*) FROM rejected_lines") == [(0,)]
        assert query(pg_dsn, "SELECT timing_partner_id, user_id FROM controller_connections") == [
            (partner_id, USER_ID)]
        assert collector.status()["authentication_failures"] == 2
        log = collector.log()
        assert PASSWORD not in log and "not it" not in log
        assert log.count("authorization refused") == 2 and f"authorized as {USER_ID}" in log
    finally:
        collector.stop()
