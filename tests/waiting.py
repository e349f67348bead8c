"""Waiting on the running reactor inside pytest-twisted tests, without blocking it."""

from twisted.internet import reactor, task


async def wait_until(predicate, timeout: float = 30.0, step: float = 0.02) -> None:
    """Poll ``predicate`` every ``step`` seconds; fail after ``timeout`` seconds."""
    waited = 0.0
    while not predicate():
        if waited > timeout:
            raise AssertionError("condition not reached in time")
        await task.deferLater(reactor, step, lambda: None)
        waited += step
