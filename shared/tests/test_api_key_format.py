"""The API key format: prefixes, length, alphabet and the CRC32 checksum, all offline."""

import hashlib

import pytest

from tessera.shared.api_keys import ENTROPY_BITS, MalformedKey, generate, hash_key, parse
from tessera.shared.api_keys.format import ALPHABET, KEY_LENGTH, Kind, Mode, checksum

# One fixed, well-formed key (generated once), so the exhaustive typo test is deterministic.
KEY = "sk_live_0fQ8n3ZrUwXk2hYb7LcTq9MvDs4PjGa134cWp5"
NOT_BASE62 = "_- .+/=é\u00a0\uff2f"  # ...and a no-break space, a full-width O


def test_the_fixed_key_is_well_formed() -> None:
    parsed = parse(KEY)
    assert (parsed.kind, parsed.mode) == ("secret", "live")


@pytest.mark.parametrize(
    ("kind", "mode", "prefix"),
    [
        ("publishable", "test", "pk_test_"),
        ("publishable", "live", "pk_live_"),
        ("secret", "test", "sk_test_"),
        ("secret", "live", "sk_live_"),
    ],
)
def test_a_generated_key_parses_back_to_its_kind_and_mode(
    kind: Kind, mode: Mode, prefix: str
) -> None:
    issued = generate(kind, mode)
    assert issued.plaintext.startswith(prefix) and len(issued.plaintext) == KEY_LENGTH
    parsed = parse(issued.plaintext)
    assert (parsed.kind, parsed.mode, parsed.prefix) == (kind, mode, prefix)
    assert issued.key_hash == hashlib.sha256(issued.plaintext.encode()).digest()
    assert issued.key_hash == hash_key(issued.plaintext)
    assert issued.hash_hex == issued.key_hash.hex()
    assert (issued.display_prefix, issued.last_four) == (prefix, issued.plaintext[-4:])


def test_keys_are_random_with_at_least_190_bits() -> None:
    assert ENTROPY_BITS >= 190
    bodies = {generate("secret", "test").plaintext[8:40] for _ in range(2000)}
    assert len(bodies) == 2000
    # Every character of the alphabet shows up: the body is drawn from all 62.
    assert set("".join(bodies)) == set(ALPHABET)


def test_the_plaintext_never_appears_in_a_repr() -> None:
    issued = generate("secret", "live")
    assert issued.plaintext not in repr(issued)
    assert issued.plaintext not in repr(parse(issued.plaintext))


def typos(key: str) -> list[str]:
    """Every single-character substitution (by any base62 character, or a look-alike that
    is not one), deletion, insertion and adjacent transposition of `key`."""
    found: list[str] = []
    for i, original in enumerate(key):
        for c in ALPHABET + NOT_BASE62 + "_":
            if c != original:
                found.append(key[:i] + c + key[i + 1 :])
        found.append(key[:i] + key[i + 1 :])
        if i + 1 < len(key) and key[i + 1] != original:
            found.append(key[:i] + key[i + 1] + original + key[i + 2 :])
    for i in range(len(key) + 1):
        for c in ALPHABET:
            found.append(key[:i] + c + key[i:])
    return found


def test_every_single_character_typo_is_detected() -> None:
    candidates = typos(KEY)
    assert len(candidates) > 46 * 70  # the test really covers every position
    accepted = []
    for typo in candidates:
        try:
            parse(typo)
        except MalformedKey:
            continue
        accepted.append(typo)
    assert accepted == []


def test_a_substitution_in_the_body_is_caught_by_the_checksum_alone() -> None:
    # Same length, prefix and alphabet: only the checksum can tell.
    typo = KEY[:20] + ("A" if KEY[20] != "A" else "B") + KEY[21:]
    with pytest.raises(MalformedKey, match="wrong checksum"):
        parse(typo)


def with_checksum(prefix_and_body: str) -> str:
    return prefix_and_body + checksum(prefix_and_body)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (with_checksum("rk_live_" + KEY[8:40]), "unknown prefix"),
        (with_checksum("SK_LIVE_" + KEY[8:40]), "unknown prefix"),
        (with_checksum("sk-live_" + KEY[8:40]), "unknown prefix"),
        (with_checksum("sk_prod_" + KEY[8:40]), "unknown prefix"),
        (KEY[:-1], "wrong length"),
        (KEY + "0", "wrong length"),
        ("", "wrong length"),
        (KEY * 2, "wrong length"),
        (with_checksum("sk_live_" + KEY[8:39] + "-"), "not base62"),
        (KEY[:39] + "é" + KEY[40:], "not base62"),
        (with_checksum("sk_live_" + KEY[8:39] + "\x00"), "not base62"),
        ("sk_live_" + KEY[8:40] + "ZZZZZZ", "wrong checksum"),
    ],
    ids=[
        "prefix-rk",
        "prefix-upper",
        "prefix-dash",
        "prefix-prod",
        "short",
        "long",
        "empty",
        "doubled",
        "dash",
        "accent",
        "nul",
        "checksum",
    ],
)
def test_a_wrong_prefix_length_alphabet_or_checksum_is_refused(text: str, reason: str) -> None:
    with pytest.raises(MalformedKey, match=reason) as refused:
        parse(text)
    assert KEY[8:40] not in str(refused.value)


def test_the_checksum_covers_the_prefix() -> None:
    # A test key's body and checksum under the live prefix is not a live key.
    with pytest.raises(MalformedKey, match="wrong checksum"):
        parse("sk_test_" + KEY[8:])
