import shutil

import pytest
import pytest_twisted
from twisted.internet import reactor

from chronotrack.storage.database import Database
from chronotrack.storage.migrations import migrate

from tests.postgres import PostgresForTests


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresForTests()
    yield server
    server.stop()


@pytest.fixture
def private_postgres():
    """An embedded PostgreSQL of this test's own, not yet started, to stop and start at will."""
    server = PostgresForTests.private_server()
    yield server
    server.stop_blocking()
    shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture
def pg_dsn(postgres_server):
    """The DSN of a fresh, empty database on a real PostgreSQL."""
    dsn = postgres_server.create_database()
    yield dsn
    postgres_server.drop_database(dsn)


@pytest_twisted.async_yield_fixture
async def database(pg_dsn):
    """A started txpostgres Database on a fresh database with the schema applied."""
    database = Database(reactor, pg_dsn)
    assert await database.start()
    await migrate(database)
    yield database
    database.close()
