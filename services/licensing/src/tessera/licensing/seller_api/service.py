"""Seller API verbs: the admin verbs (`admin.service`), given the key's tenant and the key
as the actor, plus what a seller needs that the operator does not (idempotent grants, a
customer's licenses)."""

from __future__ import annotations

import hashlib
from uuid import UUID

import asyncpg

from tessera.licensing.admin import service as admin
from tessera.licensing.admin.schemas import GrantRequest
from tessera.licensing.licenses import queries as license_queries
from tessera.licensing.licenses import service as licenses
from tessera.licensing.licenses.schemas import LicenseOut
from tessera.licensing.seller_api import queries
from tessera.licensing.seller_api.schemas import SellerGrantRequest
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.keys import Sealer
from tessera.shared.sellers import Tenant

NO_CUSTOMER = "No such customer."


class IdempotencyKeyReused(Problem):
    status = 422
    slug = "idempotency-key-reused"
    title = "The Idempotency-Key was used for a different request"


async def _email_of(conn: asyncpg.Connection, tenant: Tenant, customer_id: UUID) -> str:
    email = await queries.customer_email(conn, tenant, customer_id)
    if email is None:
        raise NotFound(NO_CUSTOMER)
    return email


async def grant(
    pool: asyncpg.Pool,
    tenant: Tenant,
    sealer: Sealer,
    actor: admin.Actor,
    req: SellerGrantRequest,
    idempotency_key: str | None,
) -> list[LicenseOut]:
    """Grant licenses to one of the tenant's customers. Under an `idempotency_key` a retry
    (even a concurrent one) answers the licenses of the first call and grants nothing."""
    fingerprint = hashlib.sha256(req.model_dump_json().encode()).digest()
    async with pool.acquire() as conn, conn.transaction():
        if idempotency_key is not None and not await queries.claim_grant(
            conn, tenant, idempotency_key, fingerprint
        ):
            earlier = await queries.earlier_grant(conn, tenant, idempotency_key)
            assert earlier is not None  # claimed by a committed transaction
            if bytes(earlier["request_hash"]) != fingerprint:
                raise IdempotencyKeyReused("Use a new Idempotency-Key for a new request.")
            rows = [
                row
                for i in earlier["license_ids"]
                if (row := await license_queries.find_license(conn, tenant, i)) is not None
            ]
            return await licenses.with_activations(conn, tenant, sealer, rows)
        email = await _email_of(conn, tenant, req.customer_id)
        granted = await admin.grant_in(
            conn,
            tenant,
            sealer,
            actor,
            GrantRequest(
                account_id=req.customer_id,
                email=email,
                policy=req.policy,
                seats=req.seats,
                reason=req.reason or "granted with an API key",
            ),
            product=req.product,
        )
        if idempotency_key is not None:
            await queries.record_grant(conn, tenant, idempotency_key, [g.id for g in granted])
        return granted


async def licenses_of(
    pool: asyncpg.Pool, tenant: Tenant, sealer: Sealer, customer_id: UUID
) -> list[LicenseOut]:
    async with pool.acquire() as conn:
        await _email_of(conn, tenant, customer_id)
        rows = await license_queries.licenses_of_account(conn, tenant, customer_id)
        return await licenses.with_activations(conn, tenant, sealer, rows)


async def one(pool: asyncpg.Pool, tenant: Tenant, sealer: Sealer, license_id: UUID) -> LicenseOut:
    async with pool.acquire() as conn:
        row = await license_queries.find_license(conn, tenant, license_id)
        if row is None:
            raise NotFound("No such license.")
        return (await licenses.with_activations(conn, tenant, sealer, [row]))[0]
