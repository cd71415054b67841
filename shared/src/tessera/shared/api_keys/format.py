"""The API key format: `<pk|sk>_<test|live>_` + 32 random base62 characters + a 6-character
base62 CRC32 of everything before it (46 characters in all).

The scheme is GitHub's and Stripe's: a fixed prefix lets secret scanners (GitHub's, GitGuardian,
trufflehog) recognise a leaked key with a plain pattern, and the checksum lets them, and
`parse`, tell a real key from a look-alike or a typo offline, with no lookup. CRC32 is not a
secret and is no defence against forgery (the hash lookup is); it only makes mistakes cheap.
An insertion or deletion changes the length; a substitution or an adjacent swap inside the
prefix and body changes the CRC (a CRC32 detects every error burst of up to 32 bits); a
substitution in the checksum changes the number it encodes. Only a swap across the
body/checksum boundary is caught by chance alone (all but 1 in 2^32).

**Entropy.** The body is 32 characters drawn uniformly by `secrets` from 62: 32 * log2(62) =
190.5 bits. The prefix and checksum add none (both are derived). A listing shows the
type prefix and the last four characters, which are checksum characters: at most log2(62^4)
= 23.8 bits about the body, leaving more than 166 unknown.

**Hashing.** Keys are stored and looked up as SHA-256(key), one fast hash with no salt and
no stretching. Slow hashes (bcrypt, argon2) exist for passwords, whose entropy is low enough
that an attacker who steals the hashes can try every likely password; stretching multiplies
the cost of each guess. Against 190 bits no guessing is possible at any cost per guess
(2^190 SHA-256 evaluations is far beyond any computer), so stretching buys nothing and would
cost every request milliseconds. A salt defends against precomputed tables, which cannot
exist for a 190-bit space either; and without a salt the hash is the lookup key, so a check
is one dictionary lookup. This is what GitHub, Stripe and Unkey do.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import zlib
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["publishable", "secret"]
Mode = Literal["test", "live"]

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 32
CHECKSUM_LENGTH = 6  # 62^6 > 2^32: every CRC32 fits
PREFIX_LENGTH = 8
KEY_LENGTH = PREFIX_LENGTH + BODY_LENGTH + CHECKSUM_LENGTH
ENTROPY_BITS = BODY_LENGTH * math.log2(len(ALPHABET))

PREFIXES: dict[str, tuple[Kind, Mode]] = {
    "pk_test_": ("publishable", "test"),
    "pk_live_": ("publishable", "live"),
    "sk_test_": ("secret", "test"),
    "sk_live_": ("secret", "live"),
}
PREFIX_OF: dict[tuple[Kind, Mode], str] = {v: k for k, v in PREFIXES.items()}
# Every two-character base62 string in order: `_PAIRS[n]` is n in two digits.
_PAIRS = tuple(a + b for a in ALPHABET for b in ALPHABET)
_PAIR_BASE = len(_PAIRS)  # 62^2; 62^6 = _PAIR_BASE^3 > 2^32


class KeyRefused(Exception):
    """A key that does not authenticate. Subclasses name why; none carries the key's text."""

    reason = "refused"


class MalformedKey(KeyRefused):
    """Not a key: wrong prefix, length, alphabet or checksum (a typo, or not ours)."""

    reason = "malformed"


@dataclass(frozen=True, slots=True)
class ParsedKey:
    kind: Kind
    mode: Mode
    text: str = field(repr=False)

    @property
    def prefix(self) -> str:
        return self.text[:PREFIX_LENGTH]


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: `plaintext` goes to its owner once and is never stored; the rest is what
    a store keeps (`key_hash`) and a listing shows (`display_prefix` ... `last_four`)."""

    kind: Kind
    mode: Mode
    plaintext: str = field(repr=False)
    key_hash: bytes
    display_prefix: str
    last_four: str

    @property
    def hash_hex(self) -> str:
        return self.key_hash.hex()


def checksum(text: str) -> str:
    """The 6-character base62 CRC32 of `text` (prefix + body): three base-3844 digits, each
    two characters from a table (it runs on every key check; a per-digit loop took 1.3 µs)."""
    high, rest = divmod(zlib.crc32(text.encode("ascii")), _PAIR_BASE * _PAIR_BASE)
    middle, low = divmod(rest, _PAIR_BASE)
    return _PAIRS[high] + _PAIRS[middle] + _PAIRS[low]


def hash_key(text: str) -> bytes:
    """SHA-256 of the key (see the module docstring for why a fast hash is right)."""
    return hashlib.sha256(text.encode()).digest()


def generate(kind: Kind, mode: Mode) -> IssuedKey:
    prefix = PREFIX_OF[(kind, mode)]
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    text = prefix + body + checksum(prefix + body)
    return IssuedKey(
        kind=kind,
        mode=mode,
        plaintext=text,
        key_hash=hash_key(text),
        display_prefix=prefix,
        last_four=text[-4:],
    )


def kind_and_mode(text: str) -> tuple[Kind, Mode]:
    """The key's kind and mode, or `MalformedKey`. Offline: no lookup happens here."""
    if len(text) != KEY_LENGTH:
        raise MalformedKey("wrong length")
    found = PREFIXES.get(text[:PREFIX_LENGTH])
    if found is None:
        raise MalformedKey("unknown prefix")
    rest = text[PREFIX_LENGTH:]
    # isascii + isalnum is exactly [0-9A-Za-z], checked in C.
    if not (rest.isascii() and rest.isalnum()):
        raise MalformedKey("not base62")
    if checksum(text[:-CHECKSUM_LENGTH]) != text[-CHECKSUM_LENGTH:]:
        raise MalformedKey("wrong checksum")
    return found


def parse(text: str) -> ParsedKey:
    """`kind_and_mode` as a `ParsedKey` that also holds the text (hidden from its repr)."""
    kind, mode = kind_and_mode(text)
    return ParsedKey(kind=kind, mode=mode, text=text)
