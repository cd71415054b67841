"""License keys: 24 Crockford base32 symbols from a CSPRNG (120 bits) and one Luhn mod 32
check symbol, in five groups of five: `XXXXX-XXXXX-XXXXX-XXXXX-XXXXC`.

The format itself (alphabet, check symbol, normalising what a person typed) is the licensing
client's `tessera.licensing_client.keyformat`, so the desktop app and the service cannot
disagree about which keys are well formed. This module adds what only the service does:
minting keys and hashing them for lookup.
"""

from __future__ import annotations

import hashlib
import secrets

from tessera.licensing_client.keyformat import (
    ALPHABET,
    RANDOM_SYMBOLS,
    check_symbol,
    display,
    normalise,
)

__all__ = [
    "ALPHABET",
    "check_symbol",
    "display",
    "generate",
    "key_hash",
    "lookup_hash",
    "normalise",
]


def generate() -> str:
    payload = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_SYMBOLS))
    return display(payload + check_symbol(payload))


def key_hash(canonical: str) -> bytes:
    # 120 random bits need no salt: the hash only keeps the keys out of a database dump.
    return hashlib.sha256(canonical.encode()).digest()


def lookup_hash(text: str) -> bytes:
    """The hash to look a typed key up by. A malformed key hashes too (to a value no key has),
    so a bad key costs the same lookup as a good one."""
    canonical = normalise(text)
    return key_hash(canonical if canonical is not None else "malformed:" + text[:64])
