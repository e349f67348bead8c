"""Two timing companies on one hub at the same time (issue 8), through the real twistd over TCP.

Both partners' controllers authenticate, stream two different races at once and even use
the same connection ids: every read is stored once, in its own partner's event session.
"""

from __future__ import annotations

import pytest

import json
import urllib.request

from chronotrack.accounts.secret_box import SecretBox
from chronotrack.accounts.tokens import new_api_token, token_hash
from tests.postgres import query
from tests.processes import CollectorProcess, EventStream, start_simulator, wait_for

READS_PER_LOCATION = 150
PASSWORDS = {"acme": "acme password 1", "bolt": "bolt password 2"}


def add_token(dsn: str, partner_id: int) -> str:
    token = new_api_token()
    query(dsn, "INSERT INTO api_tokens (timing_partner_id, name, token_hash) VALUES (%s, 'test', %s)",
          (partner_id, token_hash(token)))
    return token


def get_json_as(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def add_partner_with_controller(dsn: str, box: SecretBox, slug: str, user: str, password: str) -> int:
    partner = query(dsn, "INSERT INTO timing_partners (slug, name) VALUES (%s, %s) RETURNING id",
                    (slug, slug.title()))[0][0]
    query(dsn, "INSERT INTO controller_credentials (timing_partner_id, user_id, password_encrypted)"
               " VALUES (%s, %s, %s)", (partner, user, box.encrypt(password)))
    return partner


@pytest.fixture
def hub(tmp_path, pg_dsn):
    """A collector asking for hmac-sha1; two partners and their logins added while it runs."""
    collector = CollectorProcess(tmp_path, dsn=pg_dsn, web=True,
                                 extra_args=("--authentication", "hmac-sha1")).start()
    box = SecretBox.from_file(collector.data_dir / "secret.key", create=False)  # the collector made it
    partners = {
        slug: add_partner_with_controller(pg_dsn, box, slug, f"{slug}-finish", password)
        for slug, password in PASSWORDS.items()
    }
    yield collector, partners
    collector.stop()


def test_two_partners_stream_two_events_at_once_each_read_stored_once_in_its_own_session(hub, pg_dsn, tmp_path):
    collector, partners = hub
    simulators = []
    for slug, event_id, event_name in (("acme", "101", "Turkey Trot"), ("bolt", "202", "Harbor Half")):
        simulators.append(start_simulator(
            collector.ctp01_port, "--user", f"{slug}-finish", "--password", PASSWORDS[slug],
            "--event-id", event_id, "--event-name", event_name, "--connection-id", "box",
            "--locations", "start,finish", "--reads", str(READS_PER_LOCATION), "--rate", "0", "--gun-time",
            "--linger", "0.5", "--quiet", log_path=tmp_path / f"{slug}.log"))
    for simulator in simulators:
        assert simulator.wait(120) == 0, (tmp_path / "acme.log").read_text() + (tmp_path / "bolt.log").read_text()

    per_partner = 2 * (READS_PER_LOCATION + 1)  # two locations, each with its gun time
    wait_for(lambda: query(pg_dsn, "SELECT count(*) FROM timing_reads")[0][0] >= 2 * per_partner, 60,
             "both partners' reads")
    rows = query(pg_dsn, """
        SELECT p.slug, s.event_name, s.event_id, count(*), count(DISTINCT (r.location_name, r.sequence_number)),
               count(DISTINCT r.session_id)
        FROM timing_reads r
        JOIN timing_sessions s ON s.id = r.session_id
        JOIN timing_partners p ON p.id = r.timing_partner_id AND p.id = s.timing_partner_id
        GROUP BY 1, 2, 3 ORDER BY 1""")
    assert rows == [("acme", "Turkey Trot", "101", per_partner, per_partner, 1),
                    ("bolt", "Harbor Half", "202", per_partner, per_partner, 1)]
    assert query(pg_dsn, "SELECT count(*) FROM timing_sessions WHERE status = 'active'") == [(2,)]
    # Each connection is recorded with the login it used and its partner.
    assert sorted(query(pg_dsn, "SELECT p.slug, c.user_id FROM controller_connections c"
                                " JOIN timing_partners p ON p.id = c.timing_partner_id")) == [
        ("acme", "acme-finish"), ("bolt", "bolt-finish")]


def test_each_partners_token_sees_only_its_own_reads_on_the_feeds_and_the_stream(hub, pg_dsn, tmp_path):
    """Over the real twistd's web port: the JSON feeds and /stream of one partner never show the other's."""
    collector, partners = hub
    tokens = {slug: add_token(pg_dsn, partner_id) for slug, partner_id in partners.items()}
    # An operator account exists, so the hub is closed to anonymous visitors.
    query(pg_dsn, "INSERT INTO operators (timing_partner_id, email, password_hash) VALUES (%s, 'ops@acme.example', 'x')",
          (partners["acme"],))
    base = f"http://127.0.0.1:{collector.web_port}"
    stream = EventStream(f"{base}/stream", headers={"Authorization": f"Bearer {tokens['bolt']}"})
    try:
        for slug, bib_start in (("acme", "1000"), ("bolt", "5000")):
            simulator = start_simulator(
                collector.ctp01_port, "--user", f"{slug}-finish", "--password", PASSWORDS[slug],
                "--event-id", slug, "--locations", "finish", "--reads", "20", "--bib-start", bib_start,
                "--rate", "0", "--linger", "0.3", "--quiet", log_path=tmp_path / f"{slug}-feed.log")
            assert simulator.wait(120) == 0
        wait_for(lambda: query(pg_dsn, "SELECT count(*) FROM timing_reads")[0][0] >= 40, 60, "40 reads")
        for slug, bibs in (("acme", range(1000, 1020)), ("bolt", range(5000, 5020))):
            reads = get_json_as(f"{base}/api/timing/recent-reads?limit=100", tokens[slug])["reads"]
            assert sorted(int(read["bib"]) for read in reads) == list(bibs), slug
            stats = get_json_as(f"{base}/api/timing/stats", tokens[slug])
            assert stats["total_reads"] == 20, slug
        # bolt's stream carried bolt's reads only, in order.
        events = stream.events(20)
        assert sorted(int(event["data"]["bib"]) for event in events) == list(range(5000, 5020))
    finally:
        stream.close()
