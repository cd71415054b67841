"""Ed25519 (RFC 8032) signatures, compact JWS with alg EdDSA (RFC 7515, RFC 8037), and the
public half as a JWK whose kid is usually its RFC 7638 thumbprint."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from tessera.shared.keys.encoding import b64url, canonical_json


def thumbprint(public_key: bytes) -> str:
    """RFC 7638 JWK thumbprint: a kid derived from the key itself."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(public_key)}
    return b64url(hashlib.sha256(canonical_json(members)).digest())


def public_jwk(kid: str, public_key: bytes) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(public_key),
        "kid": kid,
        "use": "sig",
        "alg": "EdDSA",
    }


@dataclass(frozen=True)
class Signer:
    """A private key and the kid it signs under."""

    kid: str
    key: SigningKey

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message).signature

    @functools.cached_property
    def jws_header(self) -> str:
        return b64url(canonical_json({"alg": "EdDSA", "kid": self.kid, "typ": "JWT"}))

    def jws(self, claims: dict[str, Any]) -> str:
        """A compact JWS (a JWT: header typ "JWT") over the canonical JSON of `claims`."""
        signing_input = f"{self.jws_header}.{b64url(canonical_json(claims))}"
        return f"{signing_input}.{b64url(self.sign(signing_input.encode()))}"

    def jws_typed(self, claims: dict[str, Any], typ: str) -> str:
        """A compact JWS whose header names its type (a key set is never taken for a lease)."""
        header = b64url(canonical_json({"alg": "EdDSA", "kid": self.kid, "typ": typ}))
        signing_input = f"{header}.{b64url(canonical_json(claims))}"
        return f"{signing_input}.{b64url(self.sign(signing_input.encode()))}"

    @functools.cached_property
    def public_key(self) -> bytes:
        return bytes(self.key.verify_key)

    @property
    def seed(self) -> bytes:
        """The 32-byte private seed: what is sealed at rest or written to a root key file."""
        return bytes(self.key)


def signer_of(seed: bytes, kid: str | None = None) -> Signer:
    """The signer of a 32-byte seed, under `kid` (default: the key's thumbprint)."""
    key = SigningKey(seed)
    return Signer(kid or thumbprint(bytes(key.verify_key)), key)


def new_signer(kid: str | None = None) -> Signer:
    """A fresh key from the OS CSPRNG, under `kid` (default: the key's thumbprint)."""
    key = SigningKey.generate()
    return Signer(kid or thumbprint(bytes(key.verify_key)), key)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True only for a valid Ed25519 signature of `message` by `public_key`."""
    if len(signature) != 64 or len(public_key) != 32:
        return False
    try:
        VerifyKey(public_key).verify(message, signature)
    except BadSignatureError:
        return False
    return True
