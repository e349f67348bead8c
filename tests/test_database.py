"""The database layer against a real PostgreSQL: schema creation, upgrades, reconnection."""


import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred

from chronotrack.storage.database import RECONNECT_INITIAL_DELAY, Database, check_dsn_syntax, redact_dsn
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


class _SocketProxy:
    """A Unix-socket hop in front of PostgreSQL that can cut every link and then go silent:
    it still accepts connections but never answers, as a server that hangs does."""

    def __init__(self, target_socket: str, directory: str) -> None:
        from twisted.internet import protocol
        from twisted.protocols import portforward

        proxy = self

        class Silent(protocol.Protocol):
            def connectionMade(self):
                proxy.silent_links.append(self.transport)

        class Forwarding(portforward.ProxyFactory):
            def buildProtocol(self, address):
                return Silent() if proxy.silent else super().buildProtocol(address)

        self.silent = False
        self.silent_links = []
        self.factory = Forwarding(None, None)
        self.factory.protocol = type("Hop", (portforward.ProxyServer,), {
            "connectionMade": lambda hop: (proxy.links.append(hop.transport),
                                           portforward.ProxyServer.connectionMade(hop)),
        })
        self.factory.protocol.reactor = _UnixClientReactor(target_socket)
        self.links = []
        self.port = reactor.listenUNIX(f"{directory}/.s.PGSQL.5432", self.factory)

    def go_silent(self) -> None:
        self.silent = True
        for link in self.links:
            link.abortConnection()

    def stop(self) -> None:
        for link in self.silent_links:
            link.abortConnection()
        return self.port.stopListening()


class _UnixClientReactor:
    """What ``portforward.ProxyServer`` calls ``connectTCP`` on, connecting to a Unix socket."""

    def __init__(self, path: str) -> None:
        self.path = path

    def connectTCP(self, host, port, factory):
        return reactor.connectUNIX(self.path, factory)


@pytest_twisted.ensureDeferred
async def test_closing_while_a_reconnect_waits_on_a_silent_server_neither_raises_nor_leaks(pg_dsn, tmp_path):
    """The server went away and the pool is reconnecting to one that accepted the socket but has
    not answered yet: psycopg2 refuses to cancel a connect attempt under way, and close() must
    still stop everything cleanly (a service stopping during an outage)."""
    import psycopg2

    params = psycopg2.extensions.parse_dsn(pg_dsn)
    target = f"{params['host']}/.s.PGSQL.{params.get('port', 5432)}"
    proxy = _SocketProxy(target, str(tmp_path))
    params["host"] = str(tmp_path)
    params["port"] = "5432"
    database = Database(reactor, " ".join(f"{key}={value}" for key, value in params.items()), pool_size=1)
    try:
        assert await database.start()
        assert await database.run_query("SELECT 1") == [(1,)]

        proxy.go_silent()
        await wait_until(lambda: not database.connected)
        await wait_until(lambda: len(proxy.silent_links) >= 1)  # a reconnect is waiting on it
        await task.deferLater(reactor, 0.1, lambda: None)

        database.close()  # must not raise
        assert not database.connected
        await task.deferLater(reactor, RECONNECT_INITIAL_DELAY * 3, lambda: None)
        assert not database.connected  # nothing revived it
    finally:
        database.close()
        await proxy.stop()
