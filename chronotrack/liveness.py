"""Timers that notice a controller that went quiet, through the injected clock.

- ``Deadline``: something must happen by a fixed time (greet, authorize); nothing the
  peer sends postpones it.
- ``IdleWatch``: the keepalive ping, and closing a connection silent for too long (a
  half-open one never closes by itself). Any byte received counts as life.

Both hold off while ``on_hold()`` says we are the ones not reading (back-pressure).
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger()


class Deadline:
    """Calls ``expired`` ``seconds`` after ``start`` unless ``met`` first."""

    def __init__(self, clock: IReactorTime, seconds: float, expired: Callable[[], None],
                 on_hold: Callable[[], bool]) -> None:
        self._clock, self._seconds = clock, seconds
        self._expired, self._on_hold = expired, on_hold
        self._call: IDelayedCall | None = None

    def start(self) -> None:
        self._call = self._clock.callLater(self._seconds, self._fire)

    def met(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _fire(self) -> None:
        self._call = None
        if self._on_hold():
            self.start()
        else:
            self._expired()


class IdleWatch:
    """Pings every ``ping_interval`` once started; calls ``idle(silent_for)`` after ``idle_timeout`` of silence."""

    def __init__(self, clock: IReactorTime, idle_timeout: float, ping_interval: float,
                 ping: Callable[[], None], idle: Callable[[float], None],
                 on_hold: Callable[[], bool], peer: str) -> None:
        self._clock = clock
        self._idle_timeout = idle_timeout
        self._ping_interval = ping_interval
        self._ping = ping
        self._idle = idle
        self._on_hold = on_hold
        self._peer = peer
        self._last_heard = clock.seconds()
        self._check: IDelayedCall | None = None
        self._keepalive: LoopingCall | None = None
        self._stopped = False

    def start(self) -> None:
        self._schedule(self._idle_timeout)

    def heard(self) -> None:
        """Something arrived (or we start listening again): the silence starts over."""
        self._last_heard = self._clock.seconds()

    def start_pinging(self) -> None:
        if self._keepalive is not None or self._stopped:
            return
        self._keepalive = LoopingCall(self._ping)
        self._keepalive.clock = self._clock
        done = self._keepalive.start(self._ping_interval, now=False)
        done.addErrback(lambda failure: log.failure(
            "keepalive to {peer} failed", failure, peer=self._peer))

    def stop(self) -> None:
        self._stopped = True
        if self._check is not None and self._check.active():
            self._check.cancel()
        self._check = None
        if self._keepalive is not None and self._keepalive.running:
            self._keepalive.stop()
        self._keepalive = None

    def _schedule(self, delay: float) -> None:
        self._check = self._clock.callLater(delay, self._check_silence)

    def _check_silence(self) -> None:
        self._check = None
        if self._on_hold():
            self._schedule(self._idle_timeout)
            return
        silent_for = self._clock.seconds() - self._last_heard
        if silent_for < self._idle_timeout:
            self._schedule(self._idle_timeout - silent_for)
            return
        self._idle(silent_for)
