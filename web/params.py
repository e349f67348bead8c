"""Reading query parameters: one place that decides what a bad value is."""

from __future__ import annotations

import re

from twisted.web.iweb import IRequest

from web.errors import BadParameter


# C0 and C1 control characters: no name, tag or filter has them, and PostgreSQL refuses NUL.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")


def text_param(request: IRequest, name: str, max_length: int = 200) -> str | None:
    """A text parameter, stripped; None when absent or blank (an empty filter means no filter).

    Not UTF-8, longer than ``max_length`` or holding a control character (NUL, newline,
    escape, ...) is a BadParameter naming ``name``: such a value never reaches a query.
    """
    values = request.args.get(name.encode("ascii"))
    if not values:
        return None
    raw = values[0]
    if len(raw) > 4 * max_length:  # more bytes than max_length characters can take
        raise BadParameter(name, f"must be at most {max_length} characters")
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadParameter(name, "must be UTF-8 text") from None
    if CONTROL_CHARACTERS.search(value):
        raise BadParameter(name, "must not contain control characters")
    value = value.strip()
    if len(value) > max_length:
        raise BadParameter(name, f"must be at most {max_length} characters")
    return value or None


def int_param(request: IRequest, name: str, default: int | None, minimum: int, maximum: int) -> int | None:
    """A whole number within bounds, or ``default`` when absent; anything else is a BadParameter."""
    raw = text_param(request, name)
    return parse_bounded_int(name, raw, default, minimum, maximum)


def parse_bounded_int(name: str, raw: str | None, default: int | None, minimum: int, maximum: int) -> int | None:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(name, f"must be a whole number from {minimum} to {maximum}") from None
    if not minimum <= value <= maximum:
        raise BadParameter(name, f"must be a whole number from {minimum} to {maximum}")
    return value
