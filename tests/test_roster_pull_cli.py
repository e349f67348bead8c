"""``chronotrack roster pull``: the real command, against a RunSignUp stub and a real PostgreSQL.

Credentials come from the environment, never the command line, and never appear in what
the command prints."""

from __future__ import annotations

import os

import pytest_twisted
from twisted.internet.utils import getProcessOutputAndValue

from tests import rows
from tests.postgres import query
from tests.processes import BIN
from tests.stubs.registration_platforms import RUNSIGNUP_KEY, RUNSIGNUP_SECRET, RunSignUpStub, make_runners


@pytest_twisted.async_yield_fixture
async def runsignup():
    platform = RunSignUpStub(make_runners(7)).install()
    platform.server.start()
    yield platform
    await platform.server.stop()


async def run_pull(dsn: str, base: str, secret: str):
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHRONOTRACK_")}
    env.update(CHRONOTRACK_RUNSIGNUP_API_KEY=RUNSIGNUP_KEY, CHRONOTRACK_RUNSIGNUP_API_SECRET=secret,
               CHRONOTRACK_ROSTER_RUNSIGNUP_URL=base)
    out, err, code = await getProcessOutputAndValue(
        str(BIN / "chronotrack"), ["roster", "pull", "runsignup", "--race-id", RunSignUpStub.race_id,
                                   "--platform-event", RunSignUpStub.event_id, "--event", "Spring 10K",
                                   "--partner", "acme", "--dsn", dsn], env=env)
    return out.decode(), err.decode(), code


@pytest_twisted.ensureDeferred
async def test_the_command_pulls_the_roster_into_the_named_event(pg_dsn, database, runsignup):
    rows.insert_partner(pg_dsn, "acme")
    out, err, code = await run_pull(pg_dsn, runsignup.server.base, RUNSIGNUP_SECRET)
    assert code == 0, err
    assert out.strip() == "pulled 7 runners in 1 page; 0 rejected"
    stored = query(pg_dsn, """SELECT count(*) FROM participants p JOIN timing_events e ON e.id = p.timing_event_id
                              WHERE e.event_key = 'Spring 10K'""")
    assert stored == [(7,)]
    assert RUNSIGNUP_SECRET not in out + err and RUNSIGNUP_KEY not in out + err


@pytest_twisted.ensureDeferred
async def test_wrong_credentials_exit_2_with_the_platforms_refusal(pg_dsn, database, runsignup):
    rows.insert_partner(pg_dsn, "acme")
    out, err, code = await run_pull(pg_dsn, runsignup.server.base, "not-the-secret-42")
    assert code == 2
    assert "RunSignUp refused the credentials" in err
    assert "not-the-secret-42" not in out + err
