"""License verbs: issue, move between statuses, and read. Each opens no transaction of its own
when given a connection: the caller (order consumer, admin route) owns it, and the outbox
write shares it. A license's tenant is its row's: what changes it publishes carries that
tenant."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import asyncpg

from tessera.licensing.cache import LicenseCache
from tessera.licensing.licenses import keyformat, queries
from tessera.licensing.licenses.schemas import ActivationOut, LicenseOut
from tessera.shared import outbox
from tessera.shared.events.envelope import new_event_id
from tessera.shared.events.licensing import (
    LicenseIssued,
    LicenseReinstated,
    LicenseRevoked,
    LicenseSuspended,
    MachineDeactivated,
)
from tessera.shared.http.problems import NotFound
from tessera.shared.keys import Sealer
from tessera.shared.sellers import Tenant

Status = Literal["active", "suspended", "revoked"]
Source = Literal["purchase", "admin", "complimentary"]


@dataclass(frozen=True)
class Grant:
    account_id: UUID
    email: str
    product: str
    policy: str
    seats: int
    source: Source
    order_id: UUID | None = None


async def issue(
    conn: asyncpg.Connection,
    tenant: Tenant,
    sealer: Sealer,
    grant: Grant,
    policy: asyncpg.Record,
    status: Status = "active",
    reason: str | None = None,
) -> list[UUID]:
    """One license per seat (idempotent per order and seat); publishes LicenseIssued, and the
    status event too when the order's facts say it starts suspended or revoked."""
    issued: list[UUID] = []
    for seat in range(1, grant.seats + 1):
        key = keyformat.generate()
        canonical = keyformat.normalise(key)
        assert canonical is not None
        license_id = new_event_id()
        inserted = await queries.insert_license(
            conn,
            tenant,
            license_id=license_id,
            key_hash=keyformat.key_hash(canonical),
            key_sealed=sealer.seal(canonical.encode()),
            key_hint=canonical[-4:],
            account_id=grant.account_id,
            email=grant.email,
            product=grant.product,
            policy=grant.policy,
            order_id=grant.order_id,
            seat=seat,
            source=grant.source,
            status=status,
            status_reason=reason,
            duration_seconds=policy["duration_seconds"],
        )
        if not inserted:
            continue
        issued.append(license_id)
        common = {
            "license_id": license_id,
            "account_id": grant.account_id,
            "product": grant.product,
            "order_id": grant.order_id,
            "seller_id": tenant.seller_id,
            "mode": tenant.mode,
        }
        await outbox.add(conn, LicenseIssued(**common, policy=grant.policy))
        if status == "suspended":
            await outbox.add(conn, LicenseSuspended(**common, reason=reason or "suspended"))
        elif status == "revoked":
            await outbox.add(conn, LicenseRevoked(**common, reason=reason or "revoked"))
    return issued


async def change_status(
    conn: asyncpg.Connection, row: asyncpg.Record, status: Status, reason: str
) -> bool:
    """Move one locked license to `status` and publish the matching event. False if it was
    already there (nothing published)."""
    if row["status"] == status:
        return False
    await queries.set_status(conn, queries.tenant_of(row), row["id"], status, reason)
    common = {
        "license_id": row["id"],
        "account_id": row["account_id"],
        "product": row["product_code"],
        "order_id": row["order_id"],
        "reason": reason,
        "seller_id": row["seller_id"],
        "mode": row["mode"],
    }
    event: LicenseSuspended | LicenseReinstated | LicenseRevoked
    if status == "suspended":
        event = LicenseSuspended(**common)
    elif status == "revoked":
        event = LicenseRevoked(**common)
    else:
        event = LicenseReinstated(**common)
    await outbox.add(conn, event)
    return True


async def record_audit(
    conn: asyncpg.Connection,
    tenant: Tenant,
    *,
    actor_id: UUID | None,
    actor_role: str,
    action: str,
    license_id: UUID | None,
    **detail: object,
) -> None:
    await queries.audit(
        conn,
        tenant,
        actor_id=actor_id,
        actor_role=actor_role,
        action=action,
        license_id=license_id,
        detail=json.dumps(detail, default=str),
    )


def reveal_key(sealer: Sealer, row: asyncpg.Record) -> str:
    return keyformat.display(sealer.open(bytes(row["key_sealed"])).decode())


async def with_activations(
    conn: asyncpg.Connection, tenant: Tenant, sealer: Sealer, rows: list[asyncpg.Record]
) -> list[LicenseOut]:
    """The tenant's rows as their owner or an admin sees them: the key and the machines it
    runs on."""
    activations = await queries.activations_of(conn, tenant, [r["id"] for r in rows])
    by_license: dict[UUID, list[ActivationOut]] = {}
    for a in activations:
        by_license.setdefault(a["license_id"], []).append(
            ActivationOut(
                id=a["id"],
                machine_name=a["machine_name"],
                platform=a["platform"],
                app_version=a["app_version"],
                created_at=a["created_at"],
                last_heartbeat_at=a["last_heartbeat_at"],
                seat_until=a["seat_until"],
            )
        )
    return [
        LicenseOut(
            id=r["id"],
            key=reveal_key(sealer, r),
            account_id=r["account_id"],
            email=r["email"],
            product=r["product_code"],
            policy=r["policy_code"],
            order_id=r["order_id"],
            source=r["source"],
            status=r["status"],
            status_reason=r["status_reason"],
            expires_at=r["expires_at"],
            created_at=r["created_at"],
            entitlements=list(r["entitlements"] or []),
            max_machines=r["max_machines"],
            activations=by_license.get(r["id"], []),
        )
        for r in rows
    ]


async def remove_activation(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    activation_id: UUID | None,
    by: Literal["customer", "desktop", "admin", "heartbeat"],
) -> int:
    """Free one seat (or, with no id, all of them); publishes MachineDeactivated for each."""
    tenant = queries.tenant_of(row)
    if activation_id is None:
        removed = await queries.delete_activations(conn, tenant, row["id"])
    else:
        one = await queries.delete_activation_of(conn, tenant, row["id"], activation_id)
        removed = [one] if one is not None else []
    for a in removed:
        await outbox.add(
            conn,
            MachineDeactivated(
                activation_id=a["id"],
                license_id=row["id"],
                account_id=row["account_id"],
                fingerprint_hash=a["fingerprint_hash"],
                by=by,
                seller_id=tenant.seller_id,
                mode=tenant.mode,
            ),
        )
    return len(removed)


async def remove_own_activation(
    pool: asyncpg.Pool,
    cache: LicenseCache,
    tenant: Tenant,
    *,
    account_id: UUID,
    user_id: UUID,
    license_id: UUID,
    activation_id: UUID,
) -> None:
    """A customer frees one seat of their own license (audited); someone else's license
    answers exactly like a missing one (`NotFound`)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await queries.lock_license(conn, tenant, license_id)
        if row is None or row["account_id"] != account_id:
            raise NotFound("No such activation.")
        if not await remove_activation(conn, row, activation_id, "customer"):
            raise NotFound("No such activation.")
        await record_audit(
            conn,
            tenant,
            actor_id=user_id,
            actor_role="customer",
            action="activation.removed",
            license_id=license_id,
            activation_id=activation_id,
        )
    cache.forget(str(license_id))  # read-your-writes here; NOTIFY tells the others
