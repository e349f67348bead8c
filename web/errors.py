"""The two failures the web layer turns into clean HTTP answers instead of tracebacks."""

from __future__ import annotations


class DatabaseUnavailable(Exception):
    """The database is not started, not reachable, or a query failed: answer 503."""


class BadParameter(ValueError):
    """A request parameter has a value we cannot use: answer 400 and name it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message
