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


class NotSignedIn(Exception):
    """Nobody is signed in and this needs someone: pages redirect to /login, feeds answer 401."""


class BadCredentials(Exception):
    """A bearer token that is not one of ours, or revoked: 401 with ``WWW-Authenticate: Bearer``."""


class Forbidden(Exception):
    """Refused whoever asks (cross-site POST, missing or wrong CSRF token, read-only credentials): 403."""


class NotFound(Exception):
    """Not there, or not this viewer's to see (the two look the same from outside): 404."""


class TooManyAttempts(Exception):
    """Sign-in attempts from this address or for this e-mail are paused: 429 with Retry-After."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed sign-ins; try again in {int(retry_after) + 1} s")
        self.retry_after = retry_after
