"""Bearer tokens and browser session tokens: random, shown once, stored as a hash.

The tokens are 256 random bits, so a plain SHA-256 is enough to keep them useless to
whoever reads the table (no slow hash needed, unlike a person's password).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_TOKEN_PREFIX = "ctk_"
MAX_TOKEN_LENGTH = 200  # longer is not one of ours; refused before hashing


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(expected: str, given: str) -> bool:
    """Constant-time comparison, for CSRF tokens and the like."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))
