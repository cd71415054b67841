"""The key set: the lease-signing public keys, signed by the seller's root(s)."""

from __future__ import annotations

from typing import Any

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
