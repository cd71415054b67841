"""The little JOSE this client needs: base64url, Ed25519 JWKs, compact JWS verification."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey


class JoseError(ValueError):
    pass


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
            raw = b64url_decode(str(jwk.get("x", "")))
            if len(raw) == 32:
                keys[jwk["kid"]] = VerifyKey(raw)
    return keys


def verify_jws(token: str, keys: dict[str, VerifyKey]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWS whose EdDSA signature verifies; JoseError otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JoseError("not a compact JWS")
    try:
        header = json.loads(b64url_decode(parts[0]))
    except ValueError:
        raise JoseError("bad header") from None
    # The algorithm is pinned: never let the token choose (no "none", no HMAC confusion).
    if not isinstance(header, dict) or header.get("alg") != "EdDSA":
        raise JoseError("alg must be EdDSA")
    key = keys.get(str(header.get("kid")))
    if key is None:
        raise JoseError("unknown kid")
    try:
        key.verify(f"{parts[0]}.{parts[1]}".encode(), b64url_decode(parts[2]))
    except BadSignatureError:
        raise JoseError("bad signature") from None
    try:
        claims = json.loads(b64url_decode(parts[1]))
    except ValueError:
        raise JoseError("bad payload") from None
    if not isinstance(claims, dict):
        raise JoseError("bad payload")
    return header, claims
