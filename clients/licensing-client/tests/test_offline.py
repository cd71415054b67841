"""Offline verification with the published test vectors, and the lease store's guards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tessera.licensing_client import LeaseError, LeaseStore, verify_lease
from tessera.licensing_client.keyformat import check_symbol, is_well_formed
from tessera.licensing_client.testvectors import vectors

V: dict[str, Any] = vectors()
LEASES = {v["name"]: v for v in V["leases"]}


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


def test_the_store_notices_a_clock_set_back(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path / "lease.json")
    store.save(LEASES["valid"]["lease"], V["jwks"], seen_at=V["now"])
    assert store.check(V["fingerprint"], V["now"] + 3600).license_id == V["payload"]["license_id"]
    with pytest.raises(LeaseError) as rolled:
        store.check(V["fingerprint"], V["now"] - 86400 / 2)
    assert rolled.value.code == "CLOCK_ROLLED_BACK"
    store.clear()
    with pytest.raises(LeaseError):
        store.check(V["fingerprint"], V["now"])


def test_a_typo_in_a_key_is_caught_before_any_call() -> None:
    payload = "0123456789ABCDEFGHJKMNPQ"
    key = payload + check_symbol(payload)
    assert is_well_formed(key)
    assert is_well_formed("-".join(key[i : i + 5] for i in range(0, 25, 5)).lower())
    assert not is_well_formed(key[:3] + ("1" if key[3] != "1" else "2") + key[4:])
    assert not is_well_formed(key[:5] + key[6] + key[5] + key[7:]) or key[5] == key[6]
