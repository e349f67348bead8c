"""The accounts database functions over the real txpostgres pool and a real PostgreSQL, and
the pure checks they rely on: what the command and, later, the web layer and collector call."""

from __future__ import annotations

import io

import pytest
import pytest_twisted
from twisted.internet import reactor

from chronotrack.accounts import api_tokens, controllers, operators, partners
from chronotrack.accounts.errors import AccountError, AlreadyExists, UnknownPartner
from chronotrack.accounts.tokens import token_hash
from chronotrack.cli.password_input import read_new_password
from chronotrack.cli.running import CommandFailed
from tests.postgres import query


# Pure checks


@pytest.mark.parametrize("password", ["x", "p" * 128, "with spaces and ünïcode", "a|b^c"])
def test_controller_password_problem_accepts_what_a_ctp01_line_can_carry(password):
    assert controllers.controller_password_problem(password) is None


@pytest.mark.parametrize("password, reason", [("", "empty"), ("a~b", "'~'"), ("a\rb", "carriage return"),
                                              ("a\nb", "line feed"), ("a\0b", "NUL"), ("p" * 129, "128")])
def test_controller_password_problem_refuses_and_never_quotes_the_password(password, reason):
    problem = controllers.controller_password_problem(password)
    assert problem is not None and reason in problem
    assert not password or password not in problem


@pytest.mark.parametrize("user_id, good", [("box-1", True), ("a.b_c@d-e", True), ("x" * 64, True),
                                           ("", False), ("x" * 65, False), ("box 1", False), ("box~1", False)])
def test_user_id_rule_matches_the_table(user_id, good):
    assert (controllers.user_id_problem(user_id) is None) is good


@pytest.mark.parametrize("email, good", [("ada@example.com", True), ("a@b", True), ("ada", False),
                                         ("ada@", False), ("@example.com", False), ("a b@example.com", False),
                                         ("a@b@c", False), ("a@.example.com", False),
                                         ("a@" + "b" * 260, False), ("a\x07@example.com", False)])
def test_email_problem(email, good):
    assert (operators.email_problem(email) is None) is good


def test_normalize_email_trims_and_lower_cases():
    assert operators.normalize_email("  Ada@Example.COM ") == "ada@example.com"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_password_typed_at_a_terminal_is_asked_twice_and_must_match():
    answers = iter(["long enough pw", "long enough pw"])
    prompts = []

    def prompt(text: str) -> str:
        prompts.append(text)
        return next(answers)

    assert read_new_password(lambda password: None, FakeTerminal(), prompt) == "long enough pw"
    assert len(prompts) == 2
    answers = iter(["long enough pw", "long enough pX"])
    with pytest.raises(CommandFailed, match="differ") as refused:
        read_new_password(lambda password: None, FakeTerminal(), lambda text: next(answers))
    assert "long enough" not in str(refused.value)


def test_a_refused_typed_password_is_not_asked_again():
    prompts = []
    with pytest.raises(CommandFailed, match="too short"):
        read_new_password(lambda password: "too short", FakeTerminal(), lambda text: prompts.append(text) or "x")
    assert len(prompts) == 1


def test_a_piped_password_is_its_first_line_without_the_line_ending():
    assert read_new_password(lambda password: None, io.StringIO("secret pw\r\nignored\n")) == "secret pw"
    assert read_new_password(lambda password: None, io.StringIO("no newline")) == "no newline"
    with pytest.raises(CommandFailed, match="no password on standard input"):
        read_new_password(lambda password: None, io.StringIO(""))


# Over the database


@pytest_twisted.ensureDeferred
async def test_partners_add_find_and_refuse_duplicates(database):
    added = await partners.add_partner(database, "acme", "  Acme Timing ")
    assert (added.slug, added.name) == ("acme", "Acme Timing")
    assert (await partners.find_partner(database, "acme")) == added
    assert await partners.find_partner(database, "nobody") is None
    assert [p.slug for p in await partners.list_partners(database)] == ["acme", "default"]
    with pytest.raises(AlreadyExists):
        await partners.add_partner(database, "acme")
    with pytest.raises(AccountError, match="bad partner slug"):
        await partners.add_partner(database, "Not A Slug")
    with pytest.raises(AccountError, match="control characters"):
        await partners.add_partner(database, "beta", "tab\there")
    with pytest.raises(UnknownPartner, match="chronotrack partner list"):
        await partners.partner_id(database, "nobody")


@pytest_twisted.ensureDeferred
async def test_a_controller_login_is_stored_and_removed(database):
    await partners.add_partner(database, "acme")
    await controllers.add_controller(database, "acme", "box-1", "encrypted-token")
    acme = await partners.partner_id(database, "acme")
    assert query(database.dsn, "SELECT timing_partner_id, password_encrypted FROM controller_credentials"
                               " WHERE user_id = 'box-1'") == [(acme, "encrypted-token")]
    assert await controllers.any_encrypted_password(database) == "encrypted-token"
    assert await controllers.remove_controller(database, "box-1")
    assert not await controllers.remove_controller(database, "box-1")
    assert await controllers.any_encrypted_password(database) is None


@pytest_twisted.ensureDeferred
async def test_a_token_is_stored_as_its_hash_and_revoked_once(database):
    await partners.add_partner(database, "acme")
    created = await api_tokens.create_api_token(database, "acme", "scoreboard")
    [listed] = await api_tokens.list_api_tokens(database, "acme")
    assert listed.last_used_at is None and listed.revoked_at is None
    assert query(database.dsn, "SELECT token_hash FROM api_tokens") == [(token_hash(created.token),)]
    revoked_at, already = await api_tokens.revoke_api_token(database, created.id)
    assert not already
    assert await api_tokens.revoke_api_token(database, created.id) == (revoked_at, True)
    assert await api_tokens.revoke_api_token(database, created.id + 100) is None
    with pytest.raises(AccountError, match="at most 100"):
        await api_tokens.create_api_token(database, "acme", "n" * 101)


@pytest_twisted.ensureDeferred
async def test_a_server_that_never_answers_ends_the_command_after_the_connect_timeout(monkeypatch):
    """A bare listening socket accepts the TCP connection and never speaks: the command must not hang."""
    import socket

    from chronotrack.cli import running

    monkeypatch.setattr(running, "CONNECT_TIMEOUT", 0.5)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        dsn = f"host=127.0.0.1 port={silent.getsockname()[1]} dbname=x user=u password=hunter2"

        async def work(database):
            raise AssertionError("never connected, so never called")

        with pytest.raises(CommandFailed, match="no answer within 0.5 seconds") as failed:
            await running._with_database(reactor, dsn, work)
    assert "hunter2" not in str(failed.value) and "password=***" in str(failed.value)


def test_ctrl_d_at_the_password_prompt_is_a_clean_refusal():
    def prompt(text: str) -> str:
        raise EOFError

    with pytest.raises(CommandFailed, match="no password typed"):
        read_new_password(lambda password: None, FakeTerminal(), prompt)


def test_a_command_whose_reactor_is_stopped_by_a_signal_says_it_was_interrupted():
    """Ctrl-C stops the reactor before the work finishes: one line and status 130, not a KeyError."""
    import subprocess
    import sys

    program = ("import os, signal, sys\n"
               "from twisted.internet.defer import Deferred\n"
               "from chronotrack.cli.running import react, CommandFailed\n"
               "async def never(reactor):\n"
               "    reactor.callLater(0.2, os.kill, os.getpid(), signal.SIGINT)\n"
               "    await Deferred()\n"
               "try:\n"
               "    react(never)\n"
               "except CommandFailed as failure:\n"
               "    print(failure, failure.status)\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "interrupted before it finished 130", result.stderr
