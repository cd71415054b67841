"""Keys at rest: authenticated encryption of small secrets under a 32-byte key-encryption key.

The format is libsodium's secretbox (XSalsa20-Poly1305): a random 24-byte nonce, then the
16-byte tag and the ciphertext (`nonce || tag || ciphertext`, 40 bytes more than the secret).
Licensing has sealed its keys this way since it began; auth's older AES-GCM blobs are read
once and re-sealed by auth (docs/auth.md, "Signing keys").
"""

from __future__ import annotations

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox


class SealingError(ValueError):
    """A sealed value that does not open: another key, another format, or tampered bytes."""


class Sealer:
    """Seals and opens secrets with one key-encryption key (32 bytes)."""

    OVERHEAD = SecretBox.NONCE_SIZE + SecretBox.MACBYTES

    def __init__(self, key: bytes) -> None:
        self._box = SecretBox(key)

    def seal(self, plaintext: bytes) -> bytes:
        return bytes(self._box.encrypt(plaintext))

    def open(self, sealed: bytes) -> bytes:
        try:
            return bytes(self._box.decrypt(sealed))
        except CryptoError as error:
            raise SealingError("the sealed value does not open with this key") from error
