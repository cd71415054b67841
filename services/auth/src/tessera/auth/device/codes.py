"""User codes: 8 letters from RFC 8628 §6.1's 20-letter alphabet (no vowels, so no words;
no look-alike letters), shown as XXXX-XXXX, accepted in any case with or without the dash.
20^8 ≈ 2.6e10 codes, against a rate-limited entry page and a 10-minute life."""

from __future__ import annotations

import secrets

ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
LENGTH = 8


def new_user_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def display(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalize(entry: str) -> str | None:
    """The canonical code, or None when the entry cannot be one."""
    code = entry.strip().upper().replace("-", "").replace(" ", "")
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code
