"""Admin HTTP (role admin; anyone else gets 404). Every change lands in the audit log. The
admin role is the operator's, so every route acts on the home seller's live data
(`OPERATOR_TENANT`)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from tessera.licensing.admin import service
from tessera.licensing.admin.errors import BadSearch
from tessera.licensing.admin.schemas import (
    AuditEntry,
    ExtendRequest,
    GrantRequest,
    HeldOrder,
    StatusRequest,
)
from tessera.licensing.admin.service import Actor
from tessera.licensing.context import OPERATOR_TENANT, Licensing, LicensingDep
from tessera.licensing.licenses import keyformat, queries
from tessera.licensing.licenses.schemas import LicenseOut
from tessera.licensing.licenses.service import Status
from tessera.licensing.orders import queries as order_queries
from tessera.shared.tokens import AdminDep

router = APIRouter(prefix="/v1/admin", tags=["admin"])
RATE = "300/minute"


async def limited(licensing: LicensingDep, admin: AdminDep) -> Actor:
    await licensing.limiter.enforce(RATE, "admin", str(admin.user_id))
    return Actor.admin(admin)


Admin = Annotated[Actor, Depends(limited)]


@router.get("/licenses", summary="Search licenses by key, email or account")
async def search(
    licensing: LicensingDep,
    _: Admin,
    key: Annotated[str | None, Query(max_length=64)] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    account_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[LicenseOut]:
    if not (key or email or account_id):
        raise BadSearch()
    return await service.search(
        licensing.pool,
        OPERATOR_TENANT,
        licensing.sealer,
        key_hash=keyformat.lookup_hash(key) if key else None,
        email=email,
        account_id=account_id,
        limit=limit,
    )


@router.post("/licenses", status_code=201, summary="Grant a complimentary license")
async def grant(body: GrantRequest, licensing: LicensingDep, admin: Admin) -> list[LicenseOut]:
    return await service.grant(licensing.pool, OPERATOR_TENANT, licensing.sealer, admin, body)


async def _set_status(
    licensing: Licensing, admin: Actor, license_id: UUID, status: Status, reason: str
) -> LicenseOut:
    return await service.set_status(
        licensing.pool,
        OPERATOR_TENANT,
        licensing.cache,
        licensing.sealer,
        admin,
        license_id,
        status,
        reason,
    )


@router.post("/licenses/{license_id}/suspend")
async def suspend(
    license_id: UUID, body: StatusRequest, licensing: LicensingDep, admin: Admin
) -> LicenseOut:
    return await _set_status(licensing, admin, license_id, "suspended", body.reason)


@router.post("/licenses/{license_id}/reinstate")
async def reinstate(
    license_id: UUID, body: StatusRequest, licensing: LicensingDep, admin: Admin
) -> LicenseOut:
    return await _set_status(licensing, admin, license_id, "active", body.reason)


@router.post("/licenses/{license_id}/revoke")
async def revoke(
    license_id: UUID, body: StatusRequest, licensing: LicensingDep, admin: Admin
) -> LicenseOut:
    return await _set_status(licensing, admin, license_id, "revoked", body.reason)


@router.post("/licenses/{license_id}/reset-activations")
async def reset_activations(
    license_id: UUID, body: StatusRequest, licensing: LicensingDep, admin: Admin
) -> LicenseOut:
    return await service.reset_activations(
        licensing.pool,
        OPERATOR_TENANT,
        licensing.cache,
        licensing.sealer,
        admin,
        license_id,
        body.reason,
    )


@router.post("/licenses/{license_id}/extend", summary="Set (or clear) the expiry")
async def extend(
    license_id: UUID, body: ExtendRequest, licensing: LicensingDep, admin: Admin
) -> LicenseOut:
    return await service.extend(
        licensing.pool,
        OPERATOR_TENANT,
        licensing.cache,
        licensing.sealer,
        admin,
        license_id,
        body.expires_at,
        body.reason,
    )


@router.get("/audit", summary="The audit log, newest first")
async def audit(
    licensing: LicensingDep,
    _: Admin,
    license_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditEntry]:
    async with licensing.pool.acquire() as conn:
        rows = await queries.audit_entries(conn, OPERATOR_TENANT, license_id, limit)
    return [AuditEntry(**{**dict(r), "detail": json.loads(r["detail"])}) for r in rows]


@router.get("/held-orders", summary="Paid orders held for an unknown product or policy")
async def held_orders(licensing: LicensingDep, _: Admin) -> list[HeldOrder]:
    async with licensing.pool.acquire() as conn:
        rows = await order_queries.held_orders(conn, OPERATOR_TENANT)
    return [
        HeldOrder(order_id=r["order_id"], reason=r["held_reason"], held_since=r["updated_at"])
        for r in rows
    ]


CSV_COLUMNS = (
    "id", "key_hint", "account_id", "email", "product_code", "policy_code", "order_id",
    "source", "status", "status_reason", "expires_at", "created_at", "activations",
)  # fmt: skip


def csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell a spreadsheet would run as a formula is quoted as text (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/licenses.csv", summary="Every license as CSV (keys by hint only)")
async def export_csv(licensing: LicensingDep, _: Admin) -> StreamingResponse:
    pool = licensing.pool

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        async with pool.acquire() as conn, conn.transaction():
            async for row in await queries.all_licenses(conn, OPERATOR_TENANT):
                writer.writerow([csv_cell(row[c]) for c in CSV_COLUMNS])
                if buffer.tell() > 16 * 1024:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="licenses.csv"'},
    )
