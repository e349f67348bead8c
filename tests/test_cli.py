"""The ``chronotrack`` command end to end: the installed console script as a separate process
against a real PostgreSQL, the way an operator runs it from a shell.

Every test passes ``--dsn`` (or the environment) except the embedded-server tests at the end,
which point ``--data-dir`` at a directory of their own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from chronotrack.accounts.passwords import verify_password
from chronotrack.accounts.secret_box import SecretBox
from chronotrack.storage.embedded_db import EmbeddedPostgres
from tests.postgres import query
from tests.processes import free_port

BIN = Path(sys.executable).parent
ROSTER_CSV = "bib,first_name,last_name\n4242,Eliud,Kipchoge\n77,Ada,Lovelace\n"


def run(*args: str, dsn: str | None = None, stdin: str = "", cwd: Path, program: str = "chronotrack",
        environment: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """One run of an installed console script, with no CHRONOTRACK_* setting leaking in from outside."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHRONOTRACK_")}
    env.update(environment or {})
    command = [str(BIN / program), *args, *(["--dsn", dsn] if dsn else [])]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=cwd, env=env, timeout=180)


def assert_clean_failure(result: subprocess.CompletedProcess, status: int, *phrases: str) -> None:
    """A user error: the given exit status, one line on stderr saying why, and no traceback."""
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


@pytest.fixture
def partner(pg_dsn, tmp_path):
    """A partner 'acme' made with the command itself."""
    result = run("partner", "add", "acme", "--name", "Acme Timing", dsn=pg_dsn, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return "acme"


# Partners


def test_partner_add_stores_the_partner_and_list_shows_it(pg_dsn, tmp_path, partner):
    assert query(pg_dsn, "SELECT slug, name FROM timing_partners WHERE slug = 'acme'") == [("acme", "Acme Timing")]
    listed = run("partner", "list", dsn=pg_dsn, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["SLUG", "NAME", "CREATED"]
    assert any(line.startswith("acme ") and "Acme Timing" in line for line in lines)
    assert any(line.startswith("default ") for line in lines)  # the partner every hub starts with


def test_partner_add_without_a_name_uses_the_slug(pg_dsn, tmp_path):
    assert run("partner", "add", "beta", dsn=pg_dsn, cwd=tmp_path).returncode == 0
    assert query(pg_dsn, "SELECT name FROM timing_partners WHERE slug = 'beta'") == [("beta",)]


def test_partner_add_refuses_a_duplicate_slug(pg_dsn, tmp_path, partner):
    result = run("partner", "add", "acme", dsn=pg_dsn, cwd=tmp_path)
    assert_clean_failure(result, 1, "already exists", "'acme'")
    assert query(pg_dsn, "SELECT count(*) FROM timing_partners WHERE slug = 'acme'") == [(1,)]


@pytest.mark.parametrize("slug", ["Acme", "acme!", "", "acme_timing", "a" * 64, "acmé"])
def test_partner_add_refuses_a_bad_slug(pg_dsn, tmp_path, slug):
    result = run("partner", "add", slug, dsn=pg_dsn, cwd=tmp_path)
    assert_clean_failure(result, 1, "bad partner slug")


# Controller logins


def test_controller_add_encrypts_the_password_from_stdin_with_the_server_key(pg_dsn, tmp_path, partner):
    key_file = tmp_path / "keys" / "server.key"
    result = run("controller", "add", "acme", "box-1", "--secret-key-file", str(key_file),
                 dsn=pg_dsn, stdin="Tr1ckY pass!\n", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(key_file) in result.stdout and "created" in result.stdout  # says where the new key is
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    [(stored, slug)] = query(pg_dsn, "SELECT c.password_encrypted, p.slug FROM controller_credentials c "
                                     "JOIN timing_partners p ON p.id = c.timing_partner_id WHERE user_id = 'box-1'")
    assert slug == "acme"
    assert stored.startswith("gAAAA") and "Tr1ckY" not in stored  # a Fernet token, not the password
    assert SecretBox.from_file(key_file, create=False).decrypt(stored) == "Tr1ckY pass!"
    assert "Tr1ckY" not in result.stdout + result.stderr


def test_controller_add_keeps_the_key_in_the_data_directory_by_default(pg_dsn, tmp_path, partner):
    data_dir = tmp_path / "var"
    first = run("controller", "add", "acme", "box-1", "--data-dir", str(data_dir), dsn=pg_dsn,
                stdin="first-pass\n", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert str(data_dir / "secret.key") in first.stdout
    second = run("controller", "add", "acme", "box-2", dsn=pg_dsn, stdin="second-pass\n", cwd=tmp_path,
                 environment={"CHRONOTRACK_DATA_DIR": str(data_dir)})
    assert second.returncode == 0, second.stderr
    assert "created" not in second.stdout  # the same key, found again
    box = SecretBox.from_file(data_dir / "secret.key", create=False)
    stored = dict(query(pg_dsn, "SELECT user_id, password_encrypted FROM controller_credentials"))
    assert {user: box.decrypt(token) for user, token in stored.items()} == {"box-1": "first-pass",
                                                                           "box-2": "second-pass"}


@pytest.mark.parametrize("password, reason", [
    ("", "may not be empty"),
    ("pass~word", "'~'"),
    ("pass\rword", "carriage return"),
    ("pass\0word", "NUL"),
    ("p" * 129, "at most 128 characters"),
])
def test_controller_add_refuses_a_password_ctp01_cannot_carry(pg_dsn, tmp_path, partner, password, reason):
    result = run("controller", "add", "acme", "box-1", "--secret-key-file", str(tmp_path / "server.key"),
                 dsn=pg_dsn, stdin=password + "\n", cwd=tmp_path)
    assert_clean_failure(result, 1, reason)
    if password:
        assert password not in result.stdout + result.stderr
    assert query(pg_dsn, "SELECT count(*) FROM controller_credentials") == [(0,)]


def test_controller_add_refuses_a_bad_user_id_and_one_taken_by_another_partner(pg_dsn, tmp_path, partner):
    assert run("partner", "add", "beta", dsn=pg_dsn, cwd=tmp_path).returncode == 0
    key = ["--secret-key-file", str(tmp_path / "server.key")]
    assert_clean_failure(run("controller", "add", "acme", "box 1", *key, dsn=pg_dsn, stdin="pw\n", cwd=tmp_path),
                         1, "bad controller user id")
    assert run("controller", "add", "acme", "box-1", *key, dsn=pg_dsn, stdin="pw\n", cwd=tmp_path).returncode == 0
    taken = run("controller", "add", "beta", "box-1", *key, dsn=pg_dsn, stdin="other\n", cwd=tmp_path)
    assert_clean_failure(taken, 1, "'box-1' is already taken", "acme")
    assert query(pg_dsn, "SELECT count(*) FROM controller_credentials") == [(1,)]


def test_controller_add_for_an_unknown_partner_points_at_partner_list(pg_dsn, tmp_path):
    key_file = tmp_path / "server.key"
    result = run("controller", "add", "nobody", "box-1", "--secret-key-file", str(key_file),
                 dsn=pg_dsn, stdin="pw\n", cwd=tmp_path)
    assert_clean_failure(result, 1, "no timing partner 'nobody'", "chronotrack partner list")
    assert not key_file.exists()


def test_controller_add_refuses_a_server_key_that_cannot_read_the_stored_passwords(pg_dsn, tmp_path, partner):
    assert run("controller", "add", "acme", "box-1", "--secret-key-file", str(tmp_path / "a.key"),
               dsn=pg_dsn, stdin="pw\n", cwd=tmp_path).returncode == 0
    wrong_key = run("controller", "add", "acme", "box-2", "--secret-key-file", str(tmp_path / "a.key.new"),
                    dsn=pg_dsn, stdin="pw\n", cwd=tmp_path)
    assert_clean_failure(wrong_key, 2, "already stored", "--secret-key-file")
    assert not (tmp_path / "a.key.new").exists()
    SecretBox.from_file(tmp_path / "b.key")  # a valid key, but another one
    other_key = run("controller", "add", "acme", "box-2", "--secret-key-file", str(tmp_path / "b.key"),
                    dsn=pg_dsn, stdin="pw\n", cwd=tmp_path)
    assert_clean_failure(other_key, 2, "cannot decrypt")
    (tmp_path / "garbage.key").write_text("not a key\n")
    garbage = run("controller", "add", "acme", "box-2", "--secret-key-file", str(tmp_path / "garbage.key"),
                  dsn=pg_dsn, stdin="pw\n", cwd=tmp_path)
    assert_clean_failure(garbage, 2, "does not hold a valid server key")
    assert query(pg_dsn, "SELECT user_id FROM controller_credentials") == [("box-1",)]


def test_controller_list_shows_logins_without_passwords_and_remove_deletes_one(pg_dsn, tmp_path, partner):
    assert run("partner", "add", "beta", dsn=pg_dsn, cwd=tmp_path).returncode == 0
    key = ["--secret-key-file", str(tmp_path / "server.key")]
    for slug, user in (("acme", "box-1"), ("acme", "box-2"), ("beta", "gate@beta")):
        assert run("controller", "add", slug, user, *key, dsn=pg_dsn, stdin=f"{user}-secret\n",
                   cwd=tmp_path).returncode == 0
    everyone = run("controller", "list", dsn=pg_dsn, cwd=tmp_path)
    assert everyone.returncode == 0, everyone.stderr
    assert everyone.stdout.splitlines()[0].split() == ["USER", "PARTNER", "CREATED"]
    assert [line.split()[:2] for line in everyone.stdout.splitlines()[1:]] == [
        ["box-1", "acme"], ["box-2", "acme"], ["gate@beta", "beta"]]
    assert "secret" not in everyone.stdout and "gAAAA" not in everyone.stdout
    only_beta = run("controller", "list", "beta", dsn=pg_dsn, cwd=tmp_path)
    assert [line.split()[0] for line in only_beta.stdout.splitlines()[1:]] == ["gate@beta"]
    assert_clean_failure(run("controller", "list", "nobody", dsn=pg_dsn, cwd=tmp_path), 1,
                         "chronotrack partner list")

    removed = run("controller", "remove", "box-1", dsn=pg_dsn, cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert query(pg_dsn, "SELECT user_id FROM controller_credentials ORDER BY user_id") == [("box-2",),
                                                                                           ("gate@beta",)]
    assert_clean_failure(run("controller", "remove", "box-1", dsn=pg_dsn, cwd=tmp_path), 1,
                         "no controller login 'box-1'")


# Operators


def test_operator_add_stores_only_an_argon2id_hash_under_the_lower_cased_email(pg_dsn, tmp_path, partner):
    result = run("operator", "add", "acme", " Ada@Example.COM ", dsn=pg_dsn, stdin="correct horse battery\n",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ada@example.com" in result.stdout
    [(email, password_hash)] = query(pg_dsn, "SELECT email, password_hash FROM operators")
    assert email == "ada@example.com"
    assert password_hash.startswith("$argon2id$") and "horse" not in password_hash
    assert verify_password(password_hash, "correct horse battery")
    assert not verify_password(password_hash, "correct horse batterY")
    assert "horse" not in result.stdout + result.stderr


def test_operator_add_refuses_a_short_password_a_bad_email_and_a_taken_one(pg_dsn, tmp_path, partner):
    short = run("operator", "add", "acme", "ada@example.com", dsn=pg_dsn, stdin="short1\n", cwd=tmp_path)
    assert_clean_failure(short, 1, "at least 10 characters")
    assert "short1" not in short.stderr
    assert_clean_failure(run("operator", "add", "acme", "not-an-email", dsn=pg_dsn, stdin="long enough pw\n",
                             cwd=tmp_path), 1, "does not look like an e-mail address")
    assert query(pg_dsn, "SELECT count(*) FROM operators") == [(0,)]
    assert run("operator", "add", "acme", "ada@example.com", dsn=pg_dsn, stdin="long enough pw\n",
               cwd=tmp_path).returncode == 0
    assert_clean_failure(run("operator", "add", "acme", "ADA@example.com", dsn=pg_dsn, stdin="long enough pw\n",
                             cwd=tmp_path), 1, "already exists")
    assert_clean_failure(run("operator", "add", "nobody", "bob@example.com", dsn=pg_dsn,
                             stdin="long enough pw\n", cwd=tmp_path), 1, "chronotrack partner list")


def test_operator_list_and_remove(pg_dsn, tmp_path, partner):
    assert run("partner", "add", "beta", dsn=pg_dsn, cwd=tmp_path).returncode == 0
    for slug, email in (("acme", "ada@acme.example"), ("beta", "bob@beta.example")):
        assert run("operator", "add", slug, email, dsn=pg_dsn, stdin="long enough pw\n",
                   cwd=tmp_path).returncode == 0
    everyone = run("operator", "list", dsn=pg_dsn, cwd=tmp_path)
    assert everyone.returncode == 0, everyone.stderr
    assert everyone.stdout.splitlines()[0].split() == ["EMAIL", "PARTNER", "CREATED", "DISABLED"]
    assert [line.split()[:2] for line in everyone.stdout.splitlines()[1:]] == [
        ["ada@acme.example", "acme"], ["bob@beta.example", "beta"]]
    assert "argon2" not in everyone.stdout
    only_acme = run("operator", "list", "acme", dsn=pg_dsn, cwd=tmp_path)
    assert [line.split()[0] for line in only_acme.stdout.splitlines()[1:]] == ["ada@acme.example"]
    assert run("operator", "remove", "ADA@acme.example", dsn=pg_dsn, cwd=tmp_path).returncode == 0
    assert query(pg_dsn, "SELECT email FROM operators") == [("bob@beta.example",)]
    assert_clean_failure(run("operator", "remove", "ada@acme.example", dsn=pg_dsn, cwd=tmp_path), 1,
                         "no operator")


# API tokens


def test_token_create_prints_the_token_once_on_the_last_line_and_stores_only_its_hash(pg_dsn, tmp_path, partner):
    result = run("token", "create", "acme", "--name", "scoreboard", dsn=pg_dsn, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    token = result.stdout.splitlines()[-1]
    assert token.startswith("ctk_") and len(token) > 40
    assert (result.stdout + result.stderr).count(token) == 1
    [(name, stored_hash, slug)] = query(pg_dsn, "SELECT t.name, t.token_hash, p.slug FROM api_tokens t "
                                                "JOIN timing_partners p ON p.id = t.timing_partner_id")
    assert (name, slug) == ("scoreboard", "acme")
    assert stored_hash == hashlib.sha256(token.encode()).hexdigest()
    listed = run("token", "list", dsn=pg_dsn, cwd=tmp_path)
    assert listed.returncode == 0 and token not in listed.stdout and stored_hash not in listed.stdout
    assert listed.stdout.splitlines()[0].split() == ["ID", "PARTNER", "NAME", "CREATED", "LAST", "USED", "REVOKED"]


def test_token_create_for_an_unknown_partner_points_at_partner_list(pg_dsn, tmp_path):
    result = run("token", "create", "nobody", dsn=pg_dsn, cwd=tmp_path)
    assert_clean_failure(result, 1, "no timing partner 'nobody'", "chronotrack partner list")
    assert result.stdout == ""
    assert query(pg_dsn, "SELECT count(*) FROM api_tokens") == [(0,)]


def test_token_revoke_sets_revoked_at_and_list_shows_it(pg_dsn, tmp_path, partner):
    assert run("token", "create", "acme", dsn=pg_dsn, cwd=tmp_path).returncode == 0
    assert run("token", "create", "default", "--name", "kept", dsn=pg_dsn, cwd=tmp_path).returncode == 0
    [(token_id,)] = query(pg_dsn, "SELECT id FROM api_tokens WHERE name = ''")
    revoked = run("token", "revoke", str(token_id), dsn=pg_dsn, cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    assert query(pg_dsn, "SELECT name, revoked_at IS NOT NULL FROM api_tokens ORDER BY id") == [("", True),
                                                                                               ("kept", False)]
    again = run("token", "revoke", str(token_id), dsn=pg_dsn, cwd=tmp_path)
    assert again.returncode == 0 and "already revoked" in again.stdout
    only_acme = run("token", "list", "acme", dsn=pg_dsn, cwd=tmp_path).stdout.splitlines()
    assert len(only_acme) == 2 and only_acme[1].split()[:3] == [str(token_id), "acme", "-"]
    assert only_acme[1].endswith("UTC") and only_acme[1].count("UTC") == 2  # created and revoked, never used
    assert_clean_failure(run("token", "revoke", "999999", dsn=pg_dsn, cwd=tmp_path), 1, "no API token 999999")


# Roster and simulator, moved under the one command


def test_roster_import_with_an_event(pg_dsn, tmp_path, partner):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER_CSV)
    result = run("roster", "import", str(roster), "--event", "spring-10k", "--partner", "acme", dsn=pg_dsn,
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "imported 2 runners; 0 lines rejected" in result.stdout
    assert query(pg_dsn, "SELECT p.bib, e.event_key, t.slug FROM participants p "
                         "JOIN timing_events e ON e.id = p.timing_event_id "
                         "JOIN timing_partners t ON t.id = p.timing_partner_id ORDER BY p.bib") == [
        ("4242", "spring-10k", "acme"), ("77", "spring-10k", "acme")]
    unknown = run("roster", "import", str(roster), "--event", "x", "--partner", "nobody", dsn=pg_dsn, cwd=tmp_path)
    assert_clean_failure(unknown, 2, "chronotrack partner list")


def test_the_chronotrack_roster_alias_still_imports(pg_dsn, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER_CSV + ",Nobody,Here\n")
    result = run("import", str(roster), "--event", "spring-10k", dsn=pg_dsn, cwd=tmp_path,
                 program="chronotrack-roster")
    assert result.returncode == 1, result.stderr  # one line rejected, the good ones imported
    assert "imported 2 runners; 1 line rejected" in result.stdout
    assert query(pg_dsn, "SELECT count(*) FROM participants") == [(2,)]


def test_chronotrack_simulate_help_describes_the_simulator(tmp_path):
    result = run("simulate", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: chronotrack simulate") and "--host" in result.stdout
    bad = run("simulate", "--port", "not-a-port", cwd=tmp_path)
    assert bad.returncode == 2 and "chronotrack simulate" in bad.stderr


SUBCOMMANDS = [[], ["partner"], ["partner", "add"], ["partner", "list"],
               ["controller"], ["controller", "add"], ["controller", "list"], ["controller", "remove"],
               ["operator"], ["operator", "add"], ["operator", "list"], ["operator", "remove"],
               ["token"], ["token", "create"], ["token", "list"], ["token", "revoke"],
               ["roster"], ["roster", "import"], ["simulate"]]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda words: " ".join(words) or "chronotrack")
def test_help_of_every_subcommand_exits_zero(tmp_path, words):
    result = run(*words, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: chronotrack")
    if words and words[0] != "simulate" and len(words) == 2:
        assert "--dsn" in result.stdout and "--data-dir" in result.stdout and "--config" in result.stdout


# Settings and failures


def test_settings_come_from_the_environment_and_the_config_file(pg_dsn, tmp_path):
    from_environment = run("partner", "add", "from-env", cwd=tmp_path, environment={"CHRONOTRACK_DSN": pg_dsn})
    assert from_environment.returncode == 0, from_environment.stderr
    config = tmp_path / "hub.ini"
    config.write_text(f"[chronotrack]\ndsn = {pg_dsn}\n")
    from_file = run("partner", "list", "--config", str(config), cwd=tmp_path)
    assert from_file.returncode == 0 and "from-env" in from_file.stdout
    from_env_config = run("partner", "list", cwd=tmp_path, environment={"CHRONOTRACK_CONFIG": str(config)})
    assert from_env_config.returncode == 0 and "from-env" in from_env_config.stdout


def test_an_unreachable_database_is_one_line_with_the_password_hidden_and_status_2(tmp_path):
    dsn = f"host=127.0.0.1 port={free_port()} dbname=timing user=timer password=hunter2-secret"
    result = run("partner", "list", dsn=dsn, cwd=tmp_path)
    assert_clean_failure(result, 2, "cannot reach the database", "password=***")
    assert "hunter2" not in result.stderr + result.stdout
    url = run("token", "list", dsn=f"postgresql://timer:hunter2-secret@127.0.0.1:{free_port()}/timing",
              cwd=tmp_path)
    assert_clean_failure(url, 2, "cannot reach the database")
    assert "hunter2" not in url.stderr + url.stdout


def test_a_bad_config_value_is_one_line_and_status_2(tmp_path):
    config = tmp_path / "hub.ini"
    config.write_text("[chronotrack]\nno-such-setting = 1\n")
    assert_clean_failure(run("partner", "list", "--config", str(config), cwd=tmp_path), 2, "unknown setting")


# The embedded server of `make run`, without --dsn


@pytest.fixture
def data_dir():
    """A data directory of this test's own under a short /tmp path (the server's socket lives in it)."""
    directory = Path(tempfile.mkdtemp(prefix="ctcli-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    EmbeddedPostgres(directory).stop_blocking()
    shutil.rmtree(directory, ignore_errors=True)


def server_running(data_dir: Path) -> bool:
    return (data_dir / "postgres" / "postmaster.pid").exists()


def test_without_a_dsn_the_embedded_server_is_started_used_and_stopped_again(data_dir, tmp_path):
    added = run("partner", "add", "acme", "--data-dir", str(data_dir), cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert (data_dir / "postgres" / "PG_VERSION").exists()
    assert not server_running(data_dir)  # no collector was running: we started it, so we stopped it
    token = run("token", "create", "acme", cwd=tmp_path, environment={"CHRONOTRACK_DATA_DIR": str(data_dir)})
    assert token.returncode == 0, token.stderr
    listed = run("token", "list", "--data-dir", str(data_dir), cwd=tmp_path)
    assert listed.returncode == 0 and " acme " in listed.stdout
    assert not server_running(data_dir)


def test_with_the_embedded_server_already_running_it_is_used_and_left_running(data_dir, tmp_path):
    """As when the collector of `make run` is up: the command must not stop the collector's database."""
    server = EmbeddedPostgres(data_dir)
    dsn = server.start_blocking()
    added = run("partner", "add", "acme", "--data-dir", str(data_dir), cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert server_running(data_dir)
    assert query(dsn, "SELECT name FROM timing_partners WHERE slug = 'acme'") == [("acme",)]


def test_the_old_module_entry_point_still_runs_the_roster_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "web.roster_command", "import", "--help"], capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parent.parent, timeout=60)
    assert result.returncode == 0 and "--event" in result.stdout and "--dsn" in result.stdout


def run_at_a_terminal(args: list[str], answers: list[str], cwd: Path) -> tuple[int, str]:
    """Run the command on a pseudo-terminal, typing each answer after its prompt appears."""
    import pty
    import select

    env = {key: value for key, value in os.environ.items() if not key.startswith("CHRONOTRACK_")}
    master, slave = pty.openpty()
    process = subprocess.Popen([str(BIN / "chronotrack"), *args], stdin=slave, stdout=slave, stderr=slave,
                               cwd=cwd, env=env, start_new_session=True)
    os.close(slave)
    seen = b""

    def read_some(timeout: float) -> bool:
        nonlocal seen
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other side closed
            return False
        seen += chunk
        return bool(chunk)

    try:
        for prompt_count, answer in enumerate(answers, start=1):
            while seen.count(b"Password") < prompt_count:
                assert read_some(60), f"no prompt {prompt_count}: {seen!r}"
            os.write(master, answer.encode() + b"\n")
        process.wait(120)
        while read_some(0.5):
            pass
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    return process.returncode, seen.decode(errors="replace")


def test_at_a_terminal_the_password_is_asked_twice_and_must_match(pg_dsn, tmp_path, partner):
    status, output = run_at_a_terminal(["operator", "add", "acme", "ada@example.com", "--dsn", pg_dsn],
                                       ["long enough pw", "long enough pX"], tmp_path)
    assert status == 1 and "the two passwords typed differ" in output
    assert query(pg_dsn, "SELECT count(*) FROM operators") == [(0,)]
    status, output = run_at_a_terminal(["operator", "add", "acme", "ada@example.com", "--dsn", pg_dsn],
                                       ["long enough pw", "long enough pw"], tmp_path)
    assert status == 0, output
    assert "long enough" not in output  # never echoed
    [(password_hash,)] = query(pg_dsn, "SELECT password_hash FROM operators")
    assert verify_password(password_hash, "long enough pw")
