"""Secrets at rest: keyed hashes for bearer secrets; the key that seals signing keys.

A link token, a one-time code, a session id or a refresh token is stored only as
HMAC-SHA256 under the server key: a copy of Redis (or a backup) cannot be replayed, and the
key never leaves the service.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tessera.shared.keys import Sealer


def derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=purpose).derive(secret.encode())


@dataclass(frozen=True)
class Hasher:
    key: bytes

    @classmethod
    def from_secret(cls, secret: str) -> Hasher:
        return cls(derive(secret, b"tessera-auth/hmac"))

    def __call__(self, *parts: str) -> str:
        # Parts are joined with a separator no part can contain (they are ids, tokens, codes
        # and addresses), so ("a", "bc") and ("ab", "c") never collide.
        message = "\x1f".join(parts).encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()


def sealer_of(secret: str) -> Sealer:
    """The kernel's sealer (tessera.shared.keys) under a key derived from the settings'
    key-encryption key, for signing keys at rest."""
    return Sealer(derive(secret, b"tessera-auth/sealing"))


@dataclass(frozen=True)
class LegacySealed:
    """How auth sealed signing keys before the shared kernel: AES-256-GCM (12-byte nonce,
    then ciphertext and tag) under another derived key, with the kid as associated data.
    Only opened, never written: auth re-seals such keys with `sealer_of` when it starts
    (docs/auth.md, "Signing keys")."""

    key: bytes

    @classmethod
    def from_secret(cls, secret: str) -> LegacySealed:
        return cls(derive(secret, b"tessera-auth/key-encryption"))

    def open(self, sealed: bytes, kid: str) -> bytes | None:
        """The secret, or None when `sealed` is not in this format (or not under this key)."""
        if len(sealed) < 12 + 16:
            return None
        try:
            return AESGCM(self.key).decrypt(sealed[:12], sealed[12:], kid.encode())
        except InvalidTag:
            return None


def new_token(nbytes: int = 32) -> str:
    """A bearer secret from the OS CSPRNG (32 bytes = 256 bits), URL-safe."""
    return secrets.token_urlsafe(nbytes)


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"
