"""The trust anchor: the seller's root public keys, pinned in the app at build time, and the
key set they sign (docs/licensing-client.md, "Trust").

A lease-signing key is trusted only when a key set signed by a pinned root lists it (or when
the app pins lease keys directly). Nothing the server or the cache file says can add a root.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nacl.signing import VerifyKey

from tessera.licensing_client.jose import (
    JoseError,
    b64url_decode,
    jws_header,
    keys_by_kid,
    thumbprint,
    verify_jws,
)

KEY_SET_TYPE = "tessera-key-set+jwt"
ISSUER = "tessera-licensing"
SKEW_SECONDS = 300


class KeySetError(Exception):
    """Why a key set cannot be trusted; `code` is stable: UNSIGNED (no key set, or none with
    alg EdDSA), FOREIGN_ROOT (signed, but by no pinned root), BAD_SIGNATURE (names a pinned
    root, signature does not verify), MALFORMED, ROLLED_BACK (version lower than one already
    accepted), EXPIRED, ISSUED_IN_FUTURE."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


@dataclass(frozen=True)
class KeySet:
    token: str
    root_kid: str
    version: int
    issued_at: int
    expires_at: int
    jwks: dict[str, Any]

    @property
    def keys(self) -> dict[str, VerifyKey]:
        return keys_by_kid(self.jwks)


def pinned_key(pin: str) -> tuple[str, VerifyKey]:
    """A pin is the base64url of a 32-byte Ed25519 public key; its kid is the thumbprint."""
    try:
        raw = b64url_decode(pin)
    except JoseError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"not an Ed25519 public key (32 bytes, base64url): {pin!r}")
    return thumbprint(raw), VerifyKey(raw)


def pinned_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    """Lease keys pinned directly (no root): only Ed25519 keys whose kid is their thumbprint."""
    keys = _lease_keys(jwks.get("keys"))
    if not keys:
        raise ValueError("no Ed25519 key to pin")
    return {"keys": keys}


def _lease_keys(entries: object) -> list[dict[str, Any]]:
    if not isinstance(entries, list):
        raise KeySetError("MALFORMED", "keys must be a list")
    keys = []
    for jwk in entries:
        if not isinstance(jwk, dict):
            raise KeySetError("MALFORMED", "a key is not an object")
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue  # another kind of key: not ours to use, ignored
        try:
            raw = b64url_decode(str(jwk.get("x", "")))
        except JoseError:
            raw = b""
        if len(raw) != 32 or jwk.get("kid") != thumbprint(raw):
            raise KeySetError("MALFORMED", "a key's kid is not its RFC 7638 thumbprint")
        keys.append(
            {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"], "kid": jwk["kid"], "alg": "EdDSA"}
        )
    return keys


def _integer(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise KeySetError("MALFORMED", f"{name} must be an integer")
    return value


class Roots:
    """The pinned roots. `verify` is the whole key-set algorithm."""

    def __init__(self, pins: Iterable[str]) -> None:
        self.keys = dict(pinned_key(pin) for pin in pins)
        if not self.keys:
            raise ValueError("pin at least one root public key")

    def verify(
        self,
        tokens: object,
        *,
        now: float | None,
        min_version: int = 0,
        skew: int = SKEW_SECONDS,
    ) -> KeySet:
        """The key set among `tokens` (the `key_sets` of /v1/public-keys: one JWS per root
        that signed it) that a pinned root signed. `now=None` skips the time checks (used to
        re-verify a cached set offline, where the lease's own times decide)."""
        if isinstance(tokens, str):
            tokens = [tokens]
        if not isinstance(tokens, list) or not tokens:
            raise KeySetError("UNSIGNED", "no key set")
        verdict = "UNSIGNED"
        for token in tokens:
            try:
                header = jws_header(token)
            except JoseError:
                verdict = "MALFORMED" if verdict == "UNSIGNED" else verdict
                continue
            if header.get("alg") != "EdDSA":
                continue  # "none" or another algorithm: not a signature we accept
            if str(header.get("kid")) not in self.keys:
                if verdict in ("UNSIGNED", "MALFORMED"):
                    verdict = "FOREIGN_ROOT"
                continue
            try:
                header, claims = verify_jws(str(token), self.keys, typ=KEY_SET_TYPE)
            except JoseError:
                verdict = "BAD_SIGNATURE"  # names a pinned root: wrong typ or signature
                continue
            return self._accept(str(token), str(header["kid"]), claims, now, min_version, skew)
        raise KeySetError(verdict)

    def _accept(
        self,
        token: str,
        root_kid: str,
        claims: dict[str, Any],
        now: float | None,
        min_version: int,
        skew: int,
    ) -> KeySet:
        if claims.get("typ") != "tessera-key-set" or claims.get("iss") != ISSUER:
            raise KeySetError("MALFORMED", "not a Tessera key set")
        version, iat, exp = (_integer(claims, n) for n in ("version", "iat", "exp"))
        if version < 1:
            raise KeySetError("MALFORMED", "version must be positive")
        keys = _lease_keys(claims.get("keys"))
        if any(k["kid"] in self.keys for k in keys):
            raise KeySetError("MALFORMED", "a root must never sign leases")
        if version < min_version:
            raise KeySetError("ROLLED_BACK", f"version {version} < {min_version} already seen")
        if now is not None:
            if iat > now + skew:
                raise KeySetError("ISSUED_IN_FUTURE")
            if now >= exp:
                raise KeySetError("EXPIRED")
        return KeySet(token, root_kid, version, iat, exp, {"keys": keys})
