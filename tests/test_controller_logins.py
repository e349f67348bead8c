"""DatabaseControllerLogins against a real PostgreSQL with the real txpostgres pool."""

from __future__ import annotations

import os
import stat

import pytest
import pytest_twisted
from cryptography.fernet import Fernet
from twisted.internet import reactor

from chronotrack.accounts.controller_logins import (
    ControllerLogin,
    DatabaseControllerLogins,
    LoginsUnavailable,
)
from chronotrack.accounts.secret_box import SecretBox, SecretKeyError
from chronotrack.storage.database import Database
from chronotrack.storage.migrations import migrate
from tests.postgres import query


def add_login(dsn: str, user_id: str, encrypted: str) -> int:
    [(partner_id,)] = query(dsn, "INSERT INTO timing_partners (slug, name) VALUES (%s, %s) RETURNING id",
                            (user_id.lower().replace(".", "-"), user_id))
    query(dsn, "INSERT INTO controller_credentials (timing_partner_id, user_id, password_encrypted)"
               " VALUES (%s, %s, %s)", (partner_id, user_id, encrypted))
    return partner_id


def test_the_key_file_is_created_with_mode_0600(tmp_path):
    logins = DatabaseControllerLogins(lambda: None, tmp_path / "var" / "secret.key")
    logins.load_key()
    mode = stat.S_IMODE(os.stat(tmp_path / "var" / "secret.key").st_mode)
    assert mode == 0o600


def test_a_file_that_is_not_a_key_is_a_clear_error(tmp_path):
    (tmp_path / "secret.key").write_text("not a key\n")
    with pytest.raises(SecretKeyError, match="does not hold a valid server key"):
        DatabaseControllerLogins(lambda: None, tmp_path / "secret.key").load_key()


@pytest_twisted.ensureDeferred
async def test_lookup_before_the_database_starts_fails_clearly(tmp_path):
    logins = DatabaseControllerLogins(lambda: None, tmp_path / "secret.key")
    logins.load_key()
    with pytest.raises(LoginsUnavailable):
        await logins.lookup("timer1")


@pytest_twisted.ensureDeferred
async def test_lookup_decrypts_finds_nothing_for_unknown_ids_and_sees_changes_at_once(tmp_path, pg_dsn):
    database = Database(reactor, pg_dsn)
    await database.start()
    try:
        await migrate(database)
        logins = DatabaseControllerLogins(lambda: database, tmp_path / "secret.key")
        logins.load_key()
        box = SecretBox.from_file(tmp_path / "secret.key")
        assert await logins.lookup("timer1") is None
        partner_id = add_login(pg_dsn, "timer1", box.encrypt("s3cret pass"))
        assert await logins.lookup("timer1") == ControllerLogin(partner_id, "timer1", "s3cret pass")
        assert "s3cret" not in repr(await logins.lookup("timer1"))
        query(pg_dsn, "DELETE FROM controller_credentials WHERE user_id = 'timer1'")
        assert await logins.lookup("timer1") is None, "no cache hides a removed login"
    finally:
        database.close()


@pytest_twisted.ensureDeferred
async def test_a_password_encrypted_with_another_key_is_a_clear_failure(tmp_path, pg_dsn):
    database = Database(reactor, pg_dsn)
    await database.start()
    try:
        await migrate(database)
        add_login(pg_dsn, "timer2", SecretBox(Fernet.generate_key()).encrypt("pw"))
        logins = DatabaseControllerLogins(lambda: database, tmp_path / "secret.key")
        logins.load_key()
        with pytest.raises(SecretKeyError, match="cannot be decrypted"):
            await logins.lookup("timer2")
    finally:
        database.close()
