"""The database layer against a real PostgreSQL: schema creation, upgrades, reconnection."""


import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred

from chronotrack.storage.database import Database, check_dsn_syntax, redact_dsn
from chronotrack.storage.migrations import available_migrations, migrate
from tests.postgres import query
from tests.waiting import wait_until

SPEC_QUERIES = [
    "SELECT COUNT(*) FROM timing_sessions",
    "SELECT * FROM timing_reads ORDER BY read_timestamp DESC LIMIT 3",
    "SELECT COUNT(*) AS total_reads, COUNT(DISTINCT session_id) AS sessions,"
    " COUNT(DISTINCT location_name) AS locations, MAX(read_timestamp) AS latest_read"
    " FROM timing_reads",
]


def test_redact_dsn_hides_passwords():
    assert "s3cret" not in redact_dsn("host=db user=timer password=s3cret dbname=t")
    assert "s3cret" not in redact_dsn("host=db password='s3 cret' dbname=t")
    assert "s3cret" not in redact_dsn("postgresql://timer:s3cret@db/timing")
    assert "host=db" in redact_dsn("host=db user=timer password=s3cret")


def test_malformed_dsn_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="is not valid"):
        check_dsn_syntax("host=db password=x dbname")


@pytest_twisted.ensureDeferred
async def test_schema_is_created_on_an_empty_database_and_spec_queries_work(pg_dsn):
    database = Database(reactor, pg_dsn)
    assert await database.start()
    try:
        applied = await migrate(database)
        assert applied == [m.name for m in available_migrations()]
        for sql in SPEC_QUERIES:
            query(pg_dsn, sql)  # the operators' psql queries run unchanged
        assert query(pg_dsn, "SELECT COUNT(*) FROM timing_sessions") == [(0,)]
    finally:
        database.close()


@pytest_twisted.ensureDeferred
async def test_schema_upgrade_on_an_existing_database_applies_nothing_twice(pg_dsn):
    database = Database(reactor, pg_dsn)
    await database.start()
    try:
        await migrate(database)
        assert await migrate(database) == []
        versions = query(pg_dsn, "SELECT version FROM schema_migrations ORDER BY version")
        assert versions == [(m.version,) for m in available_migrations()]
    finally:
        database.close()


@pytest_twisted.ensureDeferred
async def test_start_with_database_down_keeps_retrying_then_connects(private_postgres):
    server = private_postgres
    events = []
    database = None
    try:
        dsn = server.dsn  # not started yet: nothing listens on the socket
        database = Database(reactor, dsn)
        database.on_connect(lambda: events.append("connect"))
        database.on_disconnect(lambda: events.append("disconnect"))
        assert await database.start() is False
        assert not database.connected
        assert not await database.check()
        await server.start()
        await wait_until(lambda: database.connected)
        assert await database.check()
        assert "connect" in events

        # A restart of the server: the pool notices, reconnects, and LISTEN comes back.
        payloads = []
        await database.listen("probe", payloads.append)
        await server.stop()
        await wait_until(lambda: not database.connected or "disconnect" in events)
        with pytest.raises(Exception):
            await database.run_query("SELECT 1")
        await server.start()
        await wait_until(lambda: database.connected)
        await wait_until(lambda: events.count("connect") >= 2)

        async def notify_seen():
            await database.run_operation("NOTIFY probe, 'after-restart'")
            await task.deferLater(reactor, 0.2, lambda: None)
            return "after-restart" in payloads

        for _ in range(50):  # the LISTEN is re-issued asynchronously after recovery
            if await notify_seen():
                break
        assert "after-restart" in payloads
    finally:
        if database is not None:
            database.close()


def test_stopping_during_a_connect_attempt_neither_raises_nor_revives_the_connection():
    """txpostgres refuses to cancel a connect it is polling (_CancelInProgress) and finishes it
    later: closing the database at that moment must not fail, and the late connection is closed."""
    from twisted.internet.task import Clock
    from txpostgres import txpostgres

    from chronotrack.storage.database import _Detector

    class Reconnectable:
        closed = False

        def close(self):
            self.closed = True

    def refuse_to_cancel(deferred):
        raise txpostgres._CancelInProgress()

    detector = _Detector(Clock(), on_death=None)
    detector.reconnectable = Reconnectable()
    recovered = []
    detector.addRecoveryHandler(lambda: recovered.append(True))
    attempt = Deferred(refuse_to_cancel)
    detector._retrying = attempt
    attempt.addCallback(detector._reconnected)

    detector.stop()  # must not raise
    attempt.callback(None)  # the connect under way completes after all
    assert detector.reconnectable.closed and recovered == []
