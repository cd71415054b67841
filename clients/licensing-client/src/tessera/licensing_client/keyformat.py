"""License keys: 24 Crockford base32 symbols from a CSPRNG (120 bits) and one Luhn mod 32
check symbol, in five groups of five: `XXXXX-XXXXX-XXXXX-XXXXX-XXXXC`.

The same rules as the service's `tessera.licensing.licenses.keyformat` (a test holds them
equal): check a typed key here, before any call.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
VALUES = {c: i for i, c in enumerate(ALPHABET)}
# Crockford's reading of look-alikes, so a key typed from paper still matches.
ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
RANDOM_SYMBOLS = 24
LENGTH = RANDOM_SYMBOLS + 1
GROUP = 5


# Each symbol's Luhn addend, doubled and not (a table: validate normalises every key it
# is sent, and a loop over the symbols cost it more than the hash).
PLAIN = VALUES
DOUBLED = {c: (2 * v) // len(ALPHABET) + (2 * v) % len(ALPHABET) for c, v in VALUES.items()}


def _luhn_sum(symbols: str, double_first: bool) -> int:
    """Luhn mod N, from the last symbol back, doubling every other one."""
    backwards = symbols[::-1]
    doubled, plain = (backwards[0::2], backwards[1::2])[:: 1 if double_first else -1]
    return sum(map(DOUBLED.__getitem__, doubled)) + sum(map(PLAIN.__getitem__, plain))


def check_symbol(payload: str) -> str:
    """Luhn mod N: catches every single wrong symbol and most swaps of neighbours."""
    n = len(ALPHABET)
    return ALPHABET[(n - _luhn_sum(payload, double_first=True) % n) % n]


def normalise(text: str) -> str | None:
    """The canonical 25 symbols, or None when `text` is not a well-formed key."""
    compact = "".join(text.split()).replace("-", "").upper().translate(ALIASES)
    if len(compact) != LENGTH or not VALUES.keys() >= set(compact):
        return None
    if _luhn_sum(compact, double_first=False) % len(ALPHABET) != 0:
        return None
    return compact


def display(canonical: str) -> str:
    return "-".join(canonical[i : i + GROUP] for i in range(0, len(canonical), GROUP))


def is_well_formed(text: str) -> bool:
    return normalise(text) is not None
