"""The lease's claims (see docs/licensing-client.md for the format, field by field)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

ISSUER = "tessera-licensing"


def lease_claims(
    *,
    license_id: UUID,
    account_id: UUID,
    product: str,
    entitlements: list[str],
    fingerprint: str,
    status: str,
    now: int,
    lease_seconds: int,
    grace_seconds: int,
    license_expires_at: datetime | None,
    until: int | None = None,
) -> dict[str, Any]:
    """`renew_at`: the app should call home after it; `exp`: it must stop trusting the lease
    (renew_at + grace, never past the license's own expiry, nor past `until`: a floating
    seat's end, so a machine that lost its seat cannot run on)."""
    license_exp = int(license_expires_at.timestamp()) if license_expires_at else None
    exp = now + lease_seconds + grace_seconds
    if license_exp is not None:
        exp = min(exp, license_exp)
    if until is not None:
        exp = min(exp, until)
    return {
        "iss": ISSUER,
        "sub": str(license_id),
        "license_id": str(license_id),
        "account_id": str(account_id),
        "product": product,
        "entitlements": entitlements,
        "fingerprint": fingerprint,
        "status": status,
        "iat": now,
        "renew_at": min(now + lease_seconds, exp),
        "exp": exp,
        "license_expires_at": license_exp,
    }


def decoy_claims(now: int, fingerprint: str) -> dict[str, Any]:
    """Signed and thrown away when there is no lease to give, so an unknown key costs what a
    known one does (timing must not tell them apart)."""
    zero = "00000000-0000-0000-0000-000000000000"
    return lease_claims(
        license_id=UUID(zero),
        account_id=UUID(zero),
        product="decoy",
        entitlements=["decoy.core"],
        fingerprint=fingerprint,
        status="active",
        now=now,
        lease_seconds=1,
        grace_seconds=0,
        license_expires_at=None,
    )
