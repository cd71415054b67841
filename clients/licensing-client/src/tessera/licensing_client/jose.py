"""The little JOSE this client needs: base64url, Ed25519 JWKs, compact JWS verification."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

SIGNATURE_BYTES = 64


class JoseError(ValueError):
    pass


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def thumbprint(public_key: bytes) -> str:
    """RFC 7638 thumbprint of an Ed25519 key: the kid of every Tessera key."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(public_key)}
    return b64url(hashlib.sha256(canonical_json(members)).digest())


def verify_signature(key: VerifyKey, message: bytes, signature: bytes) -> bool:
    """True only for a valid Ed25519 signature; a short, long or empty one is just invalid
    (never a crypto library exception)."""
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        key.verify(message, signature)
    except (CryptoError, ValueError, TypeError):
        return False
    return True


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JoseError("bad base64url") from None


def keys_by_kid(jwks: dict[str, Any]) -> dict[str, VerifyKey]:
    """Only Ed25519 signing keys; anything else in the set is ignored."""
    keys: dict[str, VerifyKey] = {}
    for jwk in jwks.get("keys", []):
        if (
            jwk.get("kty") == "OKP"
            and jwk.get("crv") == "Ed25519"
            and isinstance(jwk.get("kid"), str)
        ):
            try:
                raw = b64url_decode(str(jwk.get("x", "")))
            except JoseError:
                continue
            if len(raw) == 32:
                keys[jwk["kid"]] = VerifyKey(raw)
    return keys


def jws_header(token: object) -> dict[str, Any]:
    """The (unverified) header of a compact JWS; JoseError if it is not one."""
    if not isinstance(token, str):
        raise JoseError("not a compact JWS")
    parts = token.split(".")
    if len(parts) != 3:
        raise JoseError("not a compact JWS")
    try:
        header = json.loads(b64url_decode(parts[0]))
    except ValueError:
        raise JoseError("bad header") from None
    if not isinstance(header, dict):
        raise JoseError("bad header")
    return header


def verify_jws(
    token: str, keys: dict[str, VerifyKey], typ: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWS whose EdDSA signature verifies; JoseError otherwise
    (malformed input of any kind included: never a crypto or JSON library exception)."""
    header = jws_header(token)
    # The algorithm is pinned: never let the token choose (no "none", no HMAC confusion).
    if header.get("alg") != "EdDSA":
        raise JoseError("alg must be EdDSA")
    if typ is not None and header.get("typ") != typ:
        raise JoseError(f"typ must be {typ}")
    key = keys.get(str(header.get("kid")))
    if key is None:
        raise JoseError("unknown kid")
    head, payload, signature = token.split(".")
    raw = b64url_decode(signature)
    if len(raw) != SIGNATURE_BYTES:
        raise JoseError("signature is not 64 bytes")
    if not verify_signature(key, f"{head}.{payload}".encode(), raw):
        raise JoseError("bad signature")
    try:
        claims = json.loads(b64url_decode(payload))
    except ValueError:
        raise JoseError("bad payload") from None
    if not isinstance(claims, dict):
        raise JoseError("bad payload")
    return header, claims
