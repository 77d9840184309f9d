"""Secrets at rest and generated credentials.

Every stored secret (API secret keys, app keys, callback keys, storage keys) is encrypted with
Fernet (AES-128-CBC + HMAC-SHA256) under a key generated into the data directory on first start.
Losing that file makes the stored secrets unreadable, so it is written once and never rotated
silently.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import string
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBoxError(Exception):
    """A stored secret could not be decrypted (wrong or replaced key file)."""


class SecretBox:
    """Encrypts and decrypts short secrets for storage."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derive(self, purpose: str) -> bytes:
        """A stable sub-key for one purpose (e.g. signing IAM tokens), independent of the others."""
        return hmac.new(self._key, purpose.encode(), hashlib.sha256).digest()

    @classmethod
    def from_file(cls, path: Path) -> SecretBox:
        """Load the key file, creating it (mode 0600) if this is a new data directory."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_bytes().strip()
        else:
            key = Fernet.generate_key()
            with os.fdopen(fd, "wb") as fh:
                fh.write(key + b"\n")
        return cls(key)

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken as exc:
            raise SecretBoxError("stored secret cannot be decrypted with this data directory's key") from exc


_ALNUM = string.ascii_letters + string.digits
_UPPER_DIGITS = string.ascii_uppercase + string.digits


def random_string(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_secret_id() -> str:
    """A TRTC-shaped SecretId (``AKID`` + 32 characters), also accepted as a SparkRTC AK / JOYY key."""
    return "AKID" + random_string(32)


def new_secret_key() -> str:
    return random_string(32)


def new_hex_id() -> str:
    """32 lower-case hex characters: account ids, project ids."""
    return secrets.token_hex(16)


def new_app_id() -> str:
    """A SparkRTC-style app id: 24 lower-case hex characters."""
    return secrets.token_hex(12)


def new_app_key() -> str:
    """The key that signs room-join tokens (a TRTC SDKSecretKey is 64 hex characters)."""
    return secrets.token_hex(32)
