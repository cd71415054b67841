"""Offline verification with the published test vectors: leases, key sets against pinned
roots, cache records; and the lease store's integrity and clock-rollback guards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tessera.licensing_client import KeySetError, LeaseError, LeaseStore, Roots, verify_lease
from tessera.licensing_client.keyformat import check_symbol, is_well_formed
from tessera.licensing_client.lease import Lease
from tessera.licensing_client.testvectors import NOW, vectors

V: dict[str, Any] = vectors()
LEASES = {v["name"]: v for v in V["leases"]}
KEY_SETS = {v["name"]: v for v in V["key_sets"]}
CACHE = {v["name"]: v for v in V["cache"]}
VALID_SET = KEY_SETS["valid"]["key_sets"][0]


def check(lease: str, now: float | None = None, fingerprint: str | None = None) -> str:
    try:
        verify_lease(
            lease, V["jwks"], fingerprint=fingerprint or V["fingerprint"], now=now or V["now"]
        )
    except LeaseError as error:
        return error.code
    return "VALID"


@pytest.mark.parametrize("name", LEASES)
def test_each_vector_verifies_or_fails_as_documented(name: str) -> None:
    assert check(LEASES[name]["lease"]) == LEASES[name]["expect"]


def test_a_valid_lease_fails_for_another_machine_and_after_its_expiry() -> None:
    lease = LEASES["valid"]["lease"]
    assert check(lease, fingerprint="another-machine") == "FINGERPRINT_MISMATCH"
    assert check(lease, now=V["payload"]["exp"]) == "EXPIRED"
    assert check(lease, now=V["payload"]["exp"] - 1) == "VALID"


def test_a_lease_naming_an_unknown_key_or_another_alg_is_refused() -> None:
    lease = LEASES["valid"]["lease"]
    assert verify_lease.__name__
    with pytest.raises(LeaseError) as unknown:
        verify_lease(lease, {"keys": []}, fingerprint=V["fingerprint"], now=V["now"])
    assert unknown.value.code == "UNKNOWN_KEY"
    with pytest.raises(LeaseError) as malformed:
        verify_lease("e30.e30.", V["jwks"], fingerprint=V["fingerprint"], now=V["now"])
    assert malformed.value.code == "MALFORMED"


@pytest.mark.parametrize("sig", ["", "AA", "A" * 85, "!!!!", "A" * 88])
def test_a_short_long_or_garbled_signature_is_the_clients_own_error(sig: str) -> None:
    header, payload, _ = LEASES["valid"]["lease"].split(".")
    with pytest.raises(LeaseError) as error:
        verify_lease(f"{header}.{payload}.{sig}", V["jwks"], fingerprint=V["fingerprint"], now=NOW)
    assert error.value.code in {"MALFORMED", "BAD_SIGNATURE"}
    for token in ("", ".", "a.b", 42, None):
        with pytest.raises(LeaseError):
            verify_lease(token, V["jwks"], fingerprint=V["fingerprint"], now=NOW)  # type: ignore[arg-type]


def key_set_verdict(vector: dict[str, Any]) -> str:
    try:
        Roots(vector["pins"]).verify(
            vector["key_sets"], now=V["now"], min_version=vector["min_version"]
        )
    except KeySetError as error:
        return error.code
    return "VALID"


@pytest.mark.parametrize("name", KEY_SETS)
def test_each_key_set_vector_is_accepted_or_refused_as_documented(name: str) -> None:
    assert key_set_verdict(KEY_SETS[name]) == KEY_SETS[name]["expect"]


def test_a_key_set_accepted_vouches_for_the_lease_key_and_nothing_else() -> None:
    key_set = Roots(V["pins"]).verify([VALID_SET], now=V["now"])
    assert key_set.version == 2 and set(key_set.keys) == {V["jwks"]["keys"][0]["kid"]}
    assert check(LEASES["valid"]["lease"]) == "VALID"
    verify_lease(LEASES["valid"]["lease"], key_set.jwks, fingerprint=V["fingerprint"], now=NOW)


def test_pins_are_checked_and_a_root_is_required() -> None:
    with pytest.raises(ValueError, match="pin at least one"):
        Roots([])
    with pytest.raises(ValueError, match="not an Ed25519 public key"):
        Roots(["not-a-key"])


def vouch(token: str | None) -> tuple[dict[str, Any], float]:
    """What the client does for the store: re-verify the cached set against the pins."""
    try:
        key_set = Roots(V["pins"]).verify(token, now=None)
    except KeySetError as error:
        raise LeaseError("CACHE_TAMPERED", error.code) from None
    return key_set.jwks, float(key_set.expires_at)


def cache_verdict(tmp_path: Path, record: dict[str, Any], machine: str) -> str:
    path = tmp_path / "lease.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    try:
        LeaseStore(path, machine_id=machine).check(V["fingerprint"], V["now"], vouch)
    except LeaseError as error:
        if error.code == "CACHE_TAMPERED":
            assert not path.exists(), "a cache that fails its integrity check is discarded"
        return error.code
    return "VALID"


@pytest.mark.parametrize("name", CACHE)
def test_each_cache_vector_holds_or_is_refused_as_documented(name: str, tmp_path: Path) -> None:
    verdict = cache_verdict(tmp_path, CACHE[name]["record"], V["cache_machine_id"])
    assert verdict == CACHE[name]["expect"]


def test_a_cache_copied_to_another_machine_is_discarded(tmp_path: Path) -> None:
    assert cache_verdict(tmp_path, CACHE["valid"]["record"], "machine-b") == "CACHE_TAMPERED"


def test_last_seen_zero_or_missing_does_not_pass(tmp_path: Path) -> None:
    good = CACHE["valid"]["record"]
    for edit in ({"local_high_water": 0}, {"signed_high_water": 0}, {"local_high_water": None}):
        assert cache_verdict(tmp_path, {**good, **edit}, V["cache_machine_id"]) == "CACHE_TAMPERED"
    trimmed = {k: v for k, v in good.items() if k != "local_high_water"}
    assert cache_verdict(tmp_path, trimmed, V["cache_machine_id"]) == "CACHE_TAMPERED"


def stored(tmp_path: Path) -> LeaseStore:
    store = LeaseStore(tmp_path / "lease.json", machine_id="m-1")
    lease = verify_lease(LEASES["valid"]["lease"], V["jwks"], fingerprint=V["fingerprint"], now=NOW)
    store.save(lease, VALID_SET, 2, signed_time=NOW)
    return store


def test_the_store_notices_a_clock_set_back(tmp_path: Path) -> None:
    store = stored(tmp_path)
    assert store.check(V["fingerprint"], NOW + 3600, vouch).license_id == V["payload"]["license_id"]
    with pytest.raises(LeaseError) as rolled:
        store.check(V["fingerprint"], NOW - 86400 / 2, vouch)
    assert rolled.value.code == "CLOCK_ROLLED_BACK"
    # The mark of the check at NOW + 3600 holds: just before it is a rollback too.
    with pytest.raises(LeaseError) as again:
        store.check(V["fingerprint"], NOW + 3600 - 301, vouch)
    assert again.value.code == "CLOCK_ROLLED_BACK"
    assert store.accepted_version() == 2
    store.clear()
    with pytest.raises(LeaseError) as gone:
        store.check(V["fingerprint"], NOW, vouch)
    assert gone.value.code == "NO_LEASE"


def test_an_edit_to_any_field_discards_the_cache(tmp_path: Path) -> None:
    store = stored(tmp_path)
    record = json.loads(store.path.read_text())
    for field, value in (
        ("local_high_water", 1),
        ("signed_high_water", 1),
        ("key_set_version", 0),
        ("lease", LEASES["tampered"]["lease"]),
        ("key_set", KEY_SETS["rotated_root_pinned"]["key_sets"][0]),
        ("mac", "0" * 64),
    ):
        store.path.write_text(json.dumps({**record, field: value}))
        with pytest.raises(LeaseError) as tampered:
            store.check(V["fingerprint"], NOW, vouch)
        assert tampered.value.code == "CACHE_TAMPERED", field
        assert not store.path.exists()
        assert store.accepted_version() == 0


def test_the_version_floor_only_grows(tmp_path: Path) -> None:
    store = stored(tmp_path)
    lease: Lease = store.check(V["fingerprint"], NOW, vouch)
    store.save(lease, VALID_SET, 1, signed_time=NOW)
    assert store.accepted_version() == 2


def test_a_typo_in_a_key_is_caught_before_any_call() -> None:
    payload = "0123456789ABCDEFGHJKMNPQ"
    key = payload + check_symbol(payload)
    assert is_well_formed(key)
    assert is_well_formed("-".join(key[i : i + 5] for i in range(0, 25, 5)).lower())
    assert not is_well_formed(key[:3] + ("1" if key[3] != "1" else "2") + key[4:])
    assert not is_well_formed(key[:5] + key[6] + key[5] + key[7:]) or key[5] == key[6]
