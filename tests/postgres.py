"""A real PostgreSQL for the integration and end-to-end tests.

``CHRONOTRACK_TEST_DSN`` points at a server to use (the role needs CREATEDB); without
it one embedded server is started for the whole run. Every test gets a database of
its own, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg2
import psycopg2.extensions

from chronotrack.storage.embedded_db import EmbeddedPostgres


class PostgresForTests:
    def __init__(self) -> None:
        self._embedded: EmbeddedPostgres | None = None
        self._base_dir: Path | None = None
        configured = os.environ.get("CHRONOTRACK_TEST_DSN")
        if configured:
            self.admin_dsn = configured
        else:
            self._embedded = self.private_server()
            self._base_dir = self._embedded.data_dir
            self.admin_dsn = self._embedded.start_blocking()

    @staticmethod
    def private_server() -> EmbeddedPostgres:
        """A new embedded server (not started) under a short /tmp path: its socket lives there."""
        base = Path(tempfile.mkdtemp(prefix="ctpg-", dir="/tmp"))
        base.chmod(0o755)
        return EmbeddedPostgres(base, owner=True)

    @property
    def embedded(self) -> EmbeddedPostgres | None:
        return self._embedded

    def _admin(self):
        connection = psycopg2.connect(self.admin_dsn)
        connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
        return connection

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:16]
        connection = self._admin()
        try:
            connection.cursor().execute(f"CREATE DATABASE {name}")
        finally:
            connection.close()
        params = psycopg2.extensions.parse_dsn(self.admin_dsn)
        params["dbname"] = name
        return " ".join(f"{key}={value}" for key, value in params.items())

    def drop_database(self, dsn: str) -> None:
        name = psycopg2.extensions.parse_dsn(dsn)["dbname"]
        connection = self._admin()
        try:
            connection.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            connection.close()

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.stop_blocking()
        if self._base_dir is not None:
            shutil.rmtree(self._base_dir, ignore_errors=True)


def query(dsn: str, sql: str, params=None) -> list[tuple]:
    """A blocking query for test assertions (never used by the program itself)."""
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else []
        connection.commit()
        return rows
    finally:
        connection.close()
