"""The server key that encrypts controller passwords at rest (Fernet).

CTP01's hmac and seed modes need each controller's password itself, not a one-way hash
of it, so the database keeps it encrypted with a key that lives elsewhere: a file in the
data directory, created with mode 0600 on first use, or one named in the configuration
(``--secret-key-file`` / ``CHRONOTRACK_SECRET_KEY_FILE``). Every collector that shares a
database needs a copy of the same file.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE_NAME = "secret.key"


class SecretKeyError(RuntimeError):
    """The key file is missing, unreadable or not a key; the message says which."""


def key_file_path(data_dir: Path, configured: str | None = None) -> Path:
    return Path(configured) if configured else Path(data_dir) / KEY_FILE_NAME


def load_or_create_key(path: Path, create: bool = True) -> bytes:
    """The key in ``path``; a new one is written there (mode 0600) when it does not exist."""
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        if not create:
            raise SecretKeyError(f"no server key at {path}") from None
        return _create_key(path)
    except OSError as error:
        raise SecretKeyError(f"cannot read the server key {path}: {error.strerror}") from error
    try:
        Fernet(key)
    except ValueError as error:
        raise SecretKeyError(f"{path} does not hold a valid server key") from error
    return key


def _create_key(path: Path) -> bytes:
    key = Fernet.generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting together must not write two different keys.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_key(path, create=False)
    except OSError as error:
        raise SecretKeyError(f"cannot create the server key {path}: {error.strerror}") from error
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key


class SecretBox:
    """Encrypts and decrypts controller passwords with the server key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_file(cls, path: Path, create: bool = True) -> "SecretBox":
        return cls(load_or_create_key(path, create))

    def encrypt(self, password: str) -> str:
        return self._fernet.encrypt(password.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError) as error:
            raise SecretKeyError("a stored controller password cannot be decrypted with this "
                                 "server key (was the key file replaced?)") from error
