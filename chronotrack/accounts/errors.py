"""What an account operation refuses, with a message fit to show the person who asked.

Messages never carry a password or a token.
"""

from __future__ import annotations


class AccountError(ValueError):
    """A request about partners, logins or tokens cannot be carried out; the message says why."""


class UnknownPartner(AccountError):
    """No timing partner has this slug."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"no timing partner {slug!r}; see `chronotrack partner list`")
        self.slug = slug


class AlreadyExists(AccountError):
    """The slug, user id or e-mail is taken."""


class NotFound(AccountError):
    """Nothing to show, change or remove under that name."""


def text_problem(value: str, what: str, max_length: int) -> str | None:
    """Why a free-text label (a partner's name, a token's name) cannot be stored, or None."""
    if len(value) > max_length:
        return f"{what} may have at most {max_length} characters"
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        return f"{what} may not contain control characters"
    return None
