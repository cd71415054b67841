"""Offline verification of a lease (see docs/licensing-client.md, "The lease")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tessera.licensing_client.jose import JoseError, keys_by_kid, verify_jws

ISSUER = "tessera-licensing"
# How far the machine's clock may be ahead of or behind the server's without complaint.
SKEW_SECONDS = 300


class LeaseError(Exception):
    """Why a lease cannot be trusted; `code` is stable (MALFORMED, UNKNOWN_KEY,
    BAD_SIGNATURE, WRONG_ISSUER, ISSUED_IN_FUTURE, EXPIRED, FINGERPRINT_MISMATCH,
    NOT_ACTIVE; from the cache: NO_LEASE, CACHE_TAMPERED, CLOCK_ROLLED_BACK)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


@dataclass(frozen=True)
class Lease:
    token: str
    kid: str
    license_id: str
    account_id: str
    product: str
    entitlements: tuple[str, ...]
    fingerprint: str
    status: str
    issued_at: int
    renew_at: int
    expires_at: int
    license_expires_at: int | None

    def needs_renewal(self, now: float) -> bool:
        """Past `renew_at`: still valid, but the app should call home (and may warn)."""
        return now >= self.renew_at


def _lease(token: str, kid: str, c: dict[str, Any]) -> Lease:
    try:
        return Lease(
            token=token,
            kid=kid,
            license_id=str(c["license_id"]),
            account_id=str(c["account_id"]),
            product=str(c["product"]),
            entitlements=tuple(str(e) for e in c["entitlements"]),
            fingerprint=str(c["fingerprint"]),
            status=str(c["status"]),
            issued_at=int(c["iat"]),
            renew_at=int(c["renew_at"]),
            expires_at=int(c["exp"]),
            license_expires_at=None
            if c.get("license_expires_at") is None
            else int(c["license_expires_at"]),
        )
    except (KeyError, TypeError, ValueError):
        raise LeaseError("MALFORMED", "missing or mistyped claim") from None


def verify_lease(
    token: str, jwks: dict[str, Any], *, fingerprint: str, now: float, skew: int = SKEW_SECONDS
) -> Lease:
    """The lease, if its signature verifies against `jwks` and it holds for this machine at
    `now`; `LeaseError` otherwise."""
    try:
        header, claims = verify_jws(token, keys_by_kid(jwks))
    except JoseError as error:
        code = {"unknown kid": "UNKNOWN_KEY", "bad signature": "BAD_SIGNATURE"}.get(
            str(error), "MALFORMED"
        )
        raise LeaseError(code, str(error)) from None
    if claims.get("iss") != ISSUER:
        raise LeaseError("WRONG_ISSUER")
    lease = _lease(token, str(header["kid"]), claims)
    if lease.issued_at > now + skew:
        raise LeaseError("ISSUED_IN_FUTURE", "the lease is dated after this machine's clock")
    if now >= lease.expires_at:
        raise LeaseError("EXPIRED")
    if lease.fingerprint != fingerprint:
        raise LeaseError("FINGERPRINT_MISMATCH")
    if lease.status != "active":
        raise LeaseError("NOT_ACTIVE")
    return lease
