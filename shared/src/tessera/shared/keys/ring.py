"""Key rings: the key a replica signs with now, and every key it publishes (the current one
and the retiring ones, each until its publish-until has passed).

Rotation is the same in every service: a new key signs from the moment it is created; the
old one is retired but stays published for `publish_for(...)` seconds, long enough for the
longest-lived thing it signed (an access token, a lease) to expire, plus the time a replica
may keep signing with a cached key before it notices the rotation, plus a margin for clocks.
The SQL that stores a ring stays in each service (its own table); this module holds what a
ring is once loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tessera.shared.keys.ed25519 import Signer, public_jwk, signer_of
from tessera.shared.keys.sealing import Sealer

# Verifiers accept about 30 s of clock skew; the margin covers it twice over.
PUBLISH_MARGIN_SECONDS = 60


def publish_for(longest_signed_seconds: float, replica_lag_seconds: float) -> float:
    """How long a retired key stays published after its rotation."""
    return longest_signed_seconds + replica_lag_seconds + PUBLISH_MARGIN_SECONDS


def jwks(keys: Iterable[tuple[str, bytes]]) -> dict[str, Any]:
    """A JWKS (RFC 7517) of (kid, public key) pairs, in the order given (newest first)."""
    return {"keys": [public_jwk(kid, public_key) for kid, public_key in keys]}


class SealedKeyMismatch(ValueError):
    """A sealed private key that opens but is not the key its row publishes."""


def open_signer(sealer: Sealer, kid: str, sealed: bytes, public_key: bytes) -> Signer:
    """The signer of a sealed seed, checked against the public key stored beside it (so a
    sealed value copied onto another row is refused rather than signing under a wrong kid)."""
    signer = signer_of(sealer.open(sealed), kid)
    if signer.public_key != public_key:
        raise SealedKeyMismatch(f"the sealed key of {kid} is not the key it publishes")
    return signer


@dataclass
class KeyRing:
    """What one replica signs with, and what it publishes. Swapped whole on refresh."""

    signer: Signer
    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(str(k["kid"]) for k in self.jwks["keys"])
