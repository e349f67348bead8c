"""The CTP01 ``authorize`` check as pure functions: no I/O, no clock.

CTP01.md defines five proofs a controller can send for a password. Kept here, apart from
the connection, so each mode can be pinned with known values and so the one comparison
that matters is visibly constant-time (``hmac.compare_digest``): a byte-by-byte compare
would tell a guesser how much of a proof was right.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

NO_AUTHENTICATION = "none"
PLAINTEXT = "plaintext"
HMAC_MODES = ("hmac-sha1", "hmac-md5")
SEED_MODES = ("seed-sha1", "seed-md5")
AUTHENTICATION_MODES = (NO_AUTHENTICATION, PLAINTEXT, *HMAC_MODES, *SEED_MODES)

SEED_BYTES = 16  # 128 random bits: a seed is never seen twice, so a proof cannot be replayed
MAX_PROOF_LENGTH = 1024  # longer is not a proof of ours; refused before any hashing


def needs_seed(mode: str) -> bool:
    """Whether ``mode`` proves the password over a per-connection seed."""
    return mode in HMAC_MODES or mode in SEED_MODES


def new_seed() -> str:
    """A fresh random seed for one connection (hex, so it survives any CTP01 separator)."""
    return secrets.token_hex(SEED_BYTES)


def authentication_settings(mode: str, seed: str | None) -> list[str]:
    """The ``key=value`` lines that ask the controller to authorize; none for ``none``."""
    if mode == NO_AUTHENTICATION:
        return []
    lines = [f"authentication={mode}"]
    if needs_seed(mode):
        if not seed:
            raise ValueError(f"{mode} authentication needs a seed")
        lines.append(f"authentication-seed={seed}")
    return lines


def expected_proof(mode: str, password: str, seed: str) -> str:
    """What a controller holding ``password`` sends for ``mode`` (digests in lowercase hex).

    hmac-*: HMAC with the seed as message and the password as key; seed-*: the hash of
    seed followed by password; plaintext: the password itself.
    """
    secret, message = password.encode("utf-8"), seed.encode("utf-8")
    if mode == PLAINTEXT:
        return password
    if mode in HMAC_MODES:
        return hmac.new(secret, message, _digest_name(mode)).hexdigest()
    if mode in SEED_MODES:
        return hashlib.new(_digest_name(mode), message + secret).hexdigest()
    raise ValueError(f"unknown authentication mode {mode!r}")


def verify_authorization(mode: str, password: str, seed: str, proof: str) -> bool:
    """True when ``proof`` is what ``password`` gives for ``mode`` and ``seed``.

    Hex digests are compared case-insensitively (controllers differ); the plaintext
    password is compared exactly. Either way the comparison takes the same time wherever
    the first wrong character is.
    """
    if len(proof) > MAX_PROOF_LENGTH:
        return False
    expected = expected_proof(mode, password, seed)
    given = proof if mode == PLAINTEXT else proof.lower()
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def _digest_name(mode: str) -> str:
    return mode.split("-", 1)[1]
