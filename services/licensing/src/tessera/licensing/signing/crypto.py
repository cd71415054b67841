"""Ed25519 (PyNaCl) for compact JWS and JWKs; SecretBox for secrets at rest."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from nacl.secret import SecretBox
from nacl.signing import SigningKey, VerifyKey

_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url(data: bytes) -> str:
    # What base64.urlsafe_b64encode does, in two C calls instead of several Python ones.
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical_json(value: Any) -> bytes:
    # Sorted keys, no spaces, UTF-8: the same claims always give the same bytes (the test
    # vectors hold them to it).
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


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
    """The key that signs now."""

    kid: str
    key: SigningKey

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message).signature

    @functools.cached_property
    def jws_header(self) -> str:
        return b64url(canonical_json({"alg": "EdDSA", "kid": self.kid, "typ": "JWT"}))

    def jws(self, claims: dict[str, Any]) -> str:
        """A compact JWS (RFC 7515) with alg EdDSA (RFC 8037)."""
        signing_input = f"{self.jws_header}.{b64url(canonical_json(claims))}"
        return f"{signing_input}.{b64url(self.sign(signing_input.encode()))}"

    def jws_typed(self, claims: dict[str, Any], typ: str) -> str:
        """A compact JWS whose header names its type (a key set is never taken for a lease)."""
        header = b64url(canonical_json({"alg": "EdDSA", "kid": self.kid, "typ": typ}))
        signing_input = f"{header}.{b64url(canonical_json(claims))}"
        return f"{signing_input}.{b64url(self.sign(signing_input.encode()))}"

    @property
    def public_key(self) -> bytes:
        return bytes(self.key.verify_key)


KEY_SET_TYPE = "tessera-key-set+jwt"


def key_set_claims(version: int, iat: int, exp: int, keys: list[dict[str, str]]) -> dict[str, Any]:
    """The key set's payload (docs/licensing-client.md, "The key set")."""
    return {
        "iss": "tessera-licensing",
        "typ": "tessera-key-set",
        "version": version,
        "iat": iat,
        "exp": exp,
        "keys": keys,
    }


def signer_of(seed: bytes) -> Signer:
    key = SigningKey(seed)
    return Signer(thumbprint(bytes(key.verify_key)), key)


def new_signer() -> Signer:
    key = SigningKey.generate()
    return Signer(thumbprint(bytes(key.verify_key)), key)


def verify_key(public_key: bytes) -> VerifyKey:
    return VerifyKey(public_key)


class Sealer:
    """Authenticated encryption of small secrets at rest (XSalsa20-Poly1305, random nonce)."""

    def __init__(self, key: bytes) -> None:
        self._box = SecretBox(key)

    def seal(self, plaintext: bytes) -> bytes:
        return bytes(self._box.encrypt(plaintext))

    def open(self, sealed: bytes) -> bytes:
        return bytes(self._box.decrypt(sealed))
