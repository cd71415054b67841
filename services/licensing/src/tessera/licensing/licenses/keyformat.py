"""License keys: 24 Crockford base32 symbols from a CSPRNG (120 bits) and one Luhn mod 32
check symbol, in five groups of five: `XXXXX-XXXXX-XXXXX-XXXXX-XXXXC`.

The same rules live in `tessera.licensing_client.keyformat` (a test holds them equal), so the
desktop app catches a typo before it calls.
"""

from __future__ import annotations

import hashlib
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
VALUES = {c: i for i, c in enumerate(ALPHABET)}
# Crockford's reading of look-alikes, so a key typed from paper still matches.
ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
RANDOM_SYMBOLS = 24
LENGTH = RANDOM_SYMBOLS + 1
GROUP = 5


def _luhn_sum(symbols: str, double_first: bool) -> int:
    total, double = 0, double_first
    n = len(ALPHABET)
    for ch in reversed(symbols):
        addend = VALUES[ch] * (2 if double else 1)
        total += addend // n + addend % n
        double = not double
    return total


def check_symbol(payload: str) -> str:
    """Luhn mod N: catches every single wrong symbol and most swaps of neighbours."""
    n = len(ALPHABET)
    return ALPHABET[(n - _luhn_sum(payload, double_first=True) % n) % n]


def normalise(text: str) -> str | None:
    """The canonical 25 symbols, or None when `text` is not a well-formed key."""
    compact = "".join(text.split()).replace("-", "").upper().translate(ALIASES)
    if len(compact) != LENGTH or any(c not in VALUES for c in compact):
        return None
    if _luhn_sum(compact, double_first=False) % len(ALPHABET) != 0:
        return None
    return compact


def display(canonical: str) -> str:
    return "-".join(canonical[i : i + GROUP] for i in range(0, len(canonical), GROUP))


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
