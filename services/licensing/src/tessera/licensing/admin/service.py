"""Admin verbs. Each opens its transaction, writes the audit entry in it, and publishes
through the outbox what licensing publishes for the same change made by events. Each acts
on the tenant its caller gives (the operator's admin routes: the home seller's, live)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from tessera.licensing.admin.errors import LicenseRevoked, UnknownPolicy
from tessera.licensing.admin.schemas import GrantRequest
from tessera.licensing.cache import LicenseCache
from tessera.licensing.licenses import queries
from tessera.licensing.licenses import service as licenses
from tessera.licensing.licenses.schemas import LicenseOut
from tessera.shared.http.problems import NotFound
from tessera.shared.keys import Sealer
from tessera.shared.sellers import Tenant
from tessera.shared.tokens import Principal


@dataclass(frozen=True)
class Actor:
    """Who changed a license, as the audit log records it: an operator's admin user, or a
    seller's secret key (its key id; the key's text is never stored)."""

    id: UUID | None
    role: str

    @classmethod
    def admin(cls, principal: Principal) -> Actor:
        return cls(principal.user_id, "admin")


def forgotten(cache: LicenseCache, license: LicenseOut) -> LicenseOut:
    """After the commit: read-your-writes on this replica; the others hear of it from
    Postgres (NOTIFY)."""
    cache.forget(str(license.id))
    return license


async def _locked(conn: asyncpg.Connection, tenant: Tenant, license_id: UUID) -> asyncpg.Record:
    row = await queries.lock_license(conn, tenant, license_id)
    if row is None:
        raise NotFound("No such license.")
    return row


async def _audit(
    conn: asyncpg.Connection,
    tenant: Tenant,
    actor: Actor,
    action: str,
    license_id: UUID | None,
    **detail: Any,
) -> None:
    await licenses.record_audit(
        conn,
        tenant,
        actor_id=actor.id,
        actor_role=actor.role,
        action=action,
        license_id=license_id,
        **detail,
    )


async def _view(
    conn: asyncpg.Connection, tenant: Tenant, sealer: Sealer, license_id: UUID
) -> LicenseOut:
    row = await queries.lock_license(conn, tenant, license_id)
    assert row is not None
    return (await licenses.with_activations(conn, tenant, sealer, [row]))[0]


async def grant(
    pool: asyncpg.Pool, tenant: Tenant, sealer: Sealer, actor: Actor, req: GrantRequest
) -> list[LicenseOut]:
    """Issue complimentary licenses (no order); publishes LicenseIssued per seat."""
    async with pool.acquire() as conn, conn.transaction():
        return await grant_in(conn, tenant, sealer, actor, req)


async def grant_in(
    conn: asyncpg.Connection,
    tenant: Tenant,
    sealer: Sealer,
    actor: Actor,
    req: GrantRequest,
    product: str | None = None,
) -> list[LicenseOut]:
    """`grant` in the caller's transaction. With `product`, the policy must be of it."""
    policy = await queries.find_policy(conn, tenant, req.policy)
    if policy is None or (product is not None and policy["product_code"] != product):
        raise UnknownPolicy(
            f"No policy {req.policy!r}" + (f" of product {product!r}." if product else ".")
        )
    grant = licenses.Grant(
        account_id=req.account_id,
        email=str(req.email),
        product=policy["product_code"],
        policy=req.policy,
        seats=req.seats,
        source="complimentary",
    )
    ids = await licenses.issue(conn, tenant, sealer, grant, policy)
    for license_id in ids:
        await _audit(conn, tenant, actor, "license.granted", license_id, reason=req.reason)
    return [await _view(conn, tenant, sealer, i) for i in ids]


async def set_status(
    pool: asyncpg.Pool,
    tenant: Tenant,
    cache: LicenseCache,
    sealer: Sealer,
    actor: Actor,
    license_id: UUID,
    status: licenses.Status,
    reason: str,
) -> LicenseOut:
    """Suspend, reinstate or revoke by hand. A revoked license stays revoked (grant anew)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _locked(conn, tenant, license_id)
        if row["status"] == "revoked" and status != "revoked":
            raise LicenseRevoked("A revoked license cannot change; grant a new one.")
        changed = await licenses.change_status(conn, row, status, actor.role)
        verb = {"active": "reinstated", "suspended": "suspended", "revoked": "revoked"}[status]
        await _audit(
            conn, tenant, actor, f"license.{verb}", license_id, reason=reason, changed=changed
        )
        out = await _view(conn, tenant, sealer, license_id)
    return forgotten(cache, out)


async def reset_activations(
    pool: asyncpg.Pool,
    tenant: Tenant,
    cache: LicenseCache,
    sealer: Sealer,
    actor: Actor,
    license_id: UUID,
    reason: str,
) -> LicenseOut:
    """Free every seat; publishes MachineDeactivated per machine."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _locked(conn, tenant, license_id)
        removed = await licenses.remove_activation(conn, row, None, "admin")
        await _audit(
            conn, tenant, actor, "activations.reset", license_id, reason=reason, removed=removed
        )
        out = await _view(conn, tenant, sealer, license_id)
    return forgotten(cache, out)


async def extend(
    pool: asyncpg.Pool,
    tenant: Tenant,
    cache: LicenseCache,
    sealer: Sealer,
    actor: Actor,
    license_id: UUID,
    expires_at: datetime | None,
    reason: str,
) -> LicenseOut:
    async with pool.acquire() as conn, conn.transaction():
        row = await _locked(conn, tenant, license_id)
        await queries.set_expiry(conn, tenant, license_id, expires_at)
        await _audit(
            conn,
            tenant,
            actor,
            "license.expiry_changed",
            license_id,
            reason=reason,
            before=row["expires_at"],
            after=expires_at,
        )
        out = await _view(conn, tenant, sealer, license_id)
    return forgotten(cache, out)


async def search(
    pool: asyncpg.Pool,
    tenant: Tenant,
    sealer: Sealer,
    *,
    key_hash: bytes | None,
    email: str | None,
    account_id: UUID | None,
    limit: int,
) -> list[LicenseOut]:
    async with pool.acquire() as conn:
        rows = await queries.search(
            conn, tenant, key_hash=key_hash, email=email, account_id=account_id, limit=limit
        )
        return await licenses.with_activations(conn, tenant, sealer, rows)
