"""Secrets at rest: keyed hashes for bearer secrets, AES-GCM for signing keys.

A link token, a one-time code, a session id or a refresh token is stored only as
HMAC-SHA256 under the server key: a copy of Redis (or a backup) cannot be replayed, and the
key never leaves the service.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


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


@dataclass(frozen=True)
class Sealer:
    """AES-256-GCM under a key derived from the settings' key-encryption key."""

    key: bytes

    @classmethod
    def from_secret(cls, secret: str) -> Sealer:
        return cls(derive(secret, b"tessera-auth/key-encryption"))

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + AESGCM(self.key).encrypt(nonce, plaintext, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes:
        return AESGCM(self.key).decrypt(sealed[:12], sealed[12:], associated)


def new_token(nbytes: int = 32) -> str:
    """A bearer secret from the OS CSPRNG (32 bytes = 256 bits), URL-safe."""
    return secrets.token_urlsafe(nbytes)


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def normalize_email(email: str) -> str:
    # Addresses compare case-insensitively in practice; the domain is case-insensitive by
    # the RFC and providers treat the local part so, too.
    return email.strip().lower()
