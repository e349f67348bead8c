"""Reading query parameters: one place that decides what a bad value is."""

from __future__ import annotations

from twisted.web.iweb import IRequest

from web.errors import BadParameter


def text_param(request: IRequest, name: str, max_length: int = 200) -> str | None:
    """A text parameter, stripped; None when absent or blank (an empty filter means no filter)."""
    values = request.args.get(name.encode("ascii"))
    if not values:
        return None
    try:
        value = values[0].decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadParameter(name, "must be UTF-8 text") from None
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
