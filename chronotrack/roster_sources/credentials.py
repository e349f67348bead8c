"""Remembered platform credentials: sealed with the server key (Fernet), never stored in the clear.

The same key file that protects controller passwords (``secret_box``) seals a JSON object
of one platform's credentials. Loading the key reads a small file, so it is done once and
kept; a hub without a key file configured simply cannot remember credentials.
"""

from __future__ import annotations

import json
from pathlib import Path

from chronotrack.accounts.secret_box import SecretBox, SecretKeyError


class CredentialSeal:
    def __init__(self, key_file: Path | None) -> None:
        self.key_file = key_file
        self._box: SecretBox | None = None

    @property
    def available(self) -> bool:
        return self.key_file is not None

    def _the_box(self) -> SecretBox:
        if self.key_file is None:
            raise SecretKeyError("this hub has no server key file configured, so it cannot remember credentials")
        if self._box is None:
            self._box = SecretBox.from_file(self.key_file)
        return self._box

    def seal(self, credentials: dict[str, str]) -> str:
        return self._the_box().encrypt(json.dumps(credentials, sort_keys=True))

    def open(self, sealed: str) -> dict[str, str]:
        try:
            value = json.loads(self._the_box().decrypt(sealed))
        except ValueError as error:
            raise SecretKeyError("remembered credentials are unreadable; enter them again") from error
        except SecretKeyError:
            raise SecretKeyError("remembered credentials cannot be opened with this server key; "
                                 "enter them again") from None
        if not isinstance(value, dict):
            raise SecretKeyError("remembered credentials are unreadable; enter them again")
        return {str(key): str(item) for key, item in value.items()}
