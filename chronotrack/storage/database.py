"""The PostgreSQL connection: a txpostgres pool that reconnects, plus one LISTEN connection.

txpostgres 1.7 neither retries a failed first connect nor reconnects by itself, so each
pooled connection gets its own ``DeadConnectionDetector`` (backoff 0.5 s to 5 s, forever)
and queries are sent to a live connection when there is one. LISTENs live on a
dedicated connection and are issued again after every reconnect.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import psycopg2
from twisted.internet.defer import CancelledError, Deferred, DeferredList, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from txpostgres import reconnection, retrying, txpostgres

log = Logger()

RECONNECT_INITIAL_DELAY = 0.5
RECONNECT_MAX_DELAY = 5.0
STATEMENT_TIMEOUT_MS = 30_000


def redact_dsn(dsn: str) -> str:
    """The DSN with any password hidden, for messages and logs."""
    dsn = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn, flags=re.IGNORECASE)
    return re.sub(r"(postgres(?:ql)?://[^:/@]*:)[^@]*@", r"\1***@", dsn)


def check_dsn_syntax(dsn: str) -> None:
    """Raise ValueError with a clear message if the DSN cannot even be parsed."""
    try:
        psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError as error:
        raise ValueError(f"the DSN {redact_dsn(dsn)!r} is not valid: {str(error).strip()}") from error


def _reconnect_delays():
    return retrying.simpleBackoffIterator(
        initialDelay=RECONNECT_INITIAL_DELAY, maxDelay=RECONNECT_MAX_DELAY,
        factor=1.7, maxRetries=0, now=False)


class _Detector(reconnection.DeadConnectionDetector):
    """Reconnects with backoff, tells its owner when the connection dies, and can be stopped."""

    def __init__(self, reactor, on_death: Callable[[Any], None] | None) -> None:
        super().__init__(reconnectionIterator=_reconnect_delays, reactor=reactor)
        self._on_death = on_death
        self._retrying: Deferred | None = None
        self.stopped = False

    def checkForDeadConnection(self, failure):
        was_dead = self.connectionIsDead
        result = super().checkForDeadConnection(failure)
        if self.connectionIsDead and not was_dead and self._on_death is not None:
            self._on_death(failure)
        return result

    def mark_dead(self, failure) -> None:
        """For failures the default checker does not know (e.g. a refused first connect)."""
        if not self.connectionIsDead:
            self.connectionIsDead = True
            self.startReconnecting(failure)
            if self._on_death is not None:
                self._on_death(failure)

    def startReconnecting(self, failure) -> None:
        if self.stopped:
            return
        call = retrying.RetryingCall(self.reconnect)
        call.reactor = self.reactor
        self._retrying = call.start(self.reconnectionIterator())
        self._retrying.addCallback(self._reconnected)
        self._retrying.addErrback(self._gave_up)

    def _gave_up(self, failure) -> None:
        if not self.stopped:
            failure.trap(CancelledError)
        # Stopped: whatever the abandoned attempt failed with is nobody's concern.

    def _reconnected(self, _) -> None:
        if self.stopped:
            # A connect attempt that was under way when we stopped: nobody wants it.
            try:
                self.reconnectable.close()
            except Exception:
                pass  # it may not have got far enough to close (AttributeError)
            return
        self.connectionRecovered()

    def stop(self) -> None:
        self.stopped = True
        self.connectionIsDead = True
        if self._retrying is not None:
            try:
                self._retrying.cancel()
            except (txpostgres._CancelInProgress, psycopg2.OperationalError):
                # txpostgres lets a query that is being polled finish before it can be
                # cancelled, and psycopg2 cannot cancel a connect still under way (a server
                # that accepted the socket but has not answered). The owner closes the
                # connection next; if the attempt completes anyway, ``_reconnected`` closes it.
                pass


class _Connection(txpostgres.Connection):
    """A txpostgres connection with its own reconnecting detector."""

    def __init__(self, reactor, cooperator, on_death=None) -> None:
        super().__init__(reactor, cooperator, detector=_Detector(reactor, on_death))
        self.established = False  # the asynchronous connect has completed

    def connect(self, *args, **kwargs) -> Deferred:
        self.established = False
        d = super().connect(*args, **kwargs)

        def established(result):
            self.established = True
            return result

        return d.addCallback(established)

    @property
    def alive(self) -> bool:
        return (self.established and not self.detector.connectionIsDead
                and self._connection is not None and not self._connection.closed)


class _LivePool(txpostgres.ConnectionPool):
    """The txpostgres pool, but a query goes to a live connection whenever one is free."""

    def __init__(self, reactor, database: "Database", size: int, dsn: str, **connect_kwargs) -> None:
        self.reactor = reactor
        self.connectionFactory = lambda reactor, cooperator: database._new_pool_connection(reactor, cooperator)
        super().__init__(None, dsn, min=size, **connect_kwargs)

    def _checkout(self) -> _Connection:
        live = [connection for connection in self.connections if connection.alive]
        chosen = live[0] if live else next(iter(self.connections))
        self.connections.remove(chosen)
        return chosen

    def _run_on_live_connection(self, method: str, *args, **kwargs) -> Deferred:
        connection = self._checkout()
        d = getattr(connection, method)(*args, **kwargs)
        return d.addBoth(self._putBackAndPassthrough, connection)

    # The pool's semaphore calls these once a connection is free.
    def _runQuery(self, *args, **kwargs):
        return self._run_on_live_connection("runQuery", *args, **kwargs)

    def _runOperation(self, *args, **kwargs):
        return self._run_on_live_connection("runOperation", *args, **kwargs)

    def _runInteraction(self, *args, **kwargs):
        return self._run_on_live_connection("runInteraction", *args, **kwargs)


class Database:
    """The one way the program talks to PostgreSQL.

    ``start()`` succeeds even when the server is down (reconnection goes on in the
    background), so the collector keeps accepting reads; ``connected`` says whether a
    query can be sent now, and ``check()`` asks the server for real.
    """

    def __init__(self, reactor: IReactorTime, dsn: str, pool_size: int = 3) -> None:
        check_dsn_syntax(dsn)
        self.reactor = reactor
        self.dsn = dsn
        self.pool_size = pool_size
        self._connect_kwargs = {"options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                                "application_name": "chronotrack"}
        self._pool_connections: list[_Connection] = []
        self._pool = _LivePool(reactor, self, pool_size, dsn, **self._connect_kwargs)
        self._listener: _Connection | None = None
        self._channels: dict[str, list[Callable[[str], Any]]] = {}
        self._on_connect: list[Callable[[], Any]] = []
        self._on_disconnect: list[Callable[[], Any]] = []
        self.last_error: str | None = None
        self._closed = False
        self._reachable = False  # what handlers were last told
        self._ever_connected = False

    def _new_pool_connection(self, reactor, cooperator) -> _Connection:
        connection = _Connection(reactor, cooperator, on_death=lambda failure: self._connection_died(failure))
        self._pool_connections.append(connection)  # the pool's own set lacks those checked out
        connection.detector.addRecoveryHandler(lambda: self._connection_recovered(connection))
        return connection

    @property
    def connected(self) -> bool:
        return not self._closed and any(connection.alive for connection in self._pool_connections)

    def on_connect(self, handler: Callable[[], Any]) -> None:
        """Call ``handler`` each time the database becomes reachable (first time included)."""
        self._on_connect.append(handler)

    def on_disconnect(self, handler: Callable[[], Any]) -> None:
        self._on_disconnect.append(handler)

    def start(self) -> Deferred[bool]:
        """Open the pool; fires True when connected, False when it will keep retrying."""
        attempts = []
        for connection in self._pool_connections:
            attempt = connection.connect(self.dsn, **self._connect_kwargs)
            attempt.addCallback(lambda _, c=connection: self._connection_recovered(c))
            attempt.addErrback(lambda failure, c=connection: c.detector.mark_dead(failure))
            attempts.append(attempt)
        done = DeferredList(attempts)
        done.addCallback(lambda _: self.connected)
        return done

    def _connection_died(self, failure) -> None:
        message = str(failure.value).strip().splitlines()[0] if str(failure.value).strip() else repr(failure.value)
        self.last_error = message
        if self._reachable and not self.connected and not self._closed:
            self._reachable = False
            log.error("PostgreSQL unreachable ({dsn}): {reason}; retrying with backoff",
                      dsn=redact_dsn(self.dsn), reason=message)
            for handler in self._on_disconnect:
                self._call(handler)

    def _connection_recovered(self, connection: _Connection) -> None:
        if self._reachable or self._closed or not connection.alive:
            return
        self._reachable = True
        if self._ever_connected:
            log.info("PostgreSQL reachable again ({dsn})", dsn=redact_dsn(self.dsn))
        else:
            log.info("connected to PostgreSQL ({dsn})", dsn=redact_dsn(self.dsn))
        self._ever_connected = True
        self.last_error = None
        for handler in self._on_connect:
            self._call(handler)

    def _call(self, handler: Callable[[], Any]) -> None:
        try:
            result = handler()
        except Exception:
            log.failure("database state handler failed")
            return
        if isinstance(result, Deferred):
            result.addErrback(lambda failure: log.failure("database state handler failed", failure))

    def run_query(self, sql: str, params: Any = None) -> Deferred[list[tuple]]:
        return self._pool.runQuery(sql, params)

    def run_operation(self, sql: str, params: Any = None) -> Deferred[None]:
        return self._pool.runOperation(sql, params)

    def run_interaction(self, interaction: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Run ``interaction(cursor, ...)`` in a transaction; it may return a Deferred."""
        return self._pool.runInteraction(interaction, *args, **kwargs)

    def check(self) -> Deferred[bool]:
        """Ask the server for real whether it answers."""
        if not self.connected:
            return succeed(False)
        d = self.run_query("SELECT 1")
        d.addCallbacks(lambda rows: rows == [(1,)], lambda failure: False)
        return d

    def listen(self, channel: str, callback: Callable[[str], Any]) -> Deferred[None]:
        """Call ``callback(payload)`` for every NOTIFY on ``channel``, across reconnects."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", channel):
            raise ValueError(f"bad channel name {channel!r}")
        first = channel not in self._channels
        self._channels.setdefault(channel, []).append(callback)
        if self._listener is None:
            return self._start_listener()
        if first and self._listener.alive:
            return self._listener.runOperation(f"LISTEN {channel}")
        return succeed(None)

    def _start_listener(self) -> Deferred[None]:
        listener = self._listener = _Connection(self.reactor, None)
        listener.detector.addRecoveryHandler(self._issue_listens)
        listener.addNotifyObserver(self._dispatch_notify)
        d = listener.connect(self.dsn, **self._connect_kwargs)
        d.addCallbacks(lambda _: self._issue_listens(), listener.detector.mark_dead)
        return d

    def _issue_listens(self) -> Deferred[None]:
        statements = [self._listener.runOperation(f"LISTEN {channel}") for channel in self._channels]
        return DeferredList(statements).addCallback(lambda _: None)

    def _dispatch_notify(self, notify) -> None:
        for callback in list(self._channels.get(notify.channel, [])):
            try:
                callback(notify.payload)
            except Exception:
                log.failure("NOTIFY handler for {channel} failed", channel=notify.channel)

    def close(self) -> None:
        self._closed = True
        for connection in self._pool_connections + ([self._listener] if self._listener else []):
            connection.detector.stop()  # no reconnect may revive it
            try:
                connection.close()
            except Exception:
                pass  # a connection that never connected cannot close (AttributeError)
