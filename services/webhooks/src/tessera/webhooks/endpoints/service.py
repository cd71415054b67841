"""Endpoints: create, read, change, delete, rotate the signing secret, send a test event.

Every call is for one tenant (the API key's seller and mode); another tenant's endpoint is
a 404, as one that does not exist.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from tessera.shared.events.envelope import new_event_id
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.keys import Sealer
from tessera.shared.sellers import Tenant
from tessera.webhooks.catalogue.schemas import TestData, WebhookTest
from tessera.webhooks.catalogue.service import public_id
from tessera.webhooks.deliveries import service as deliveries
from tessera.webhooks.endpoints import queries
from tessera.webhooks.endpoints.schemas import (
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointUpdate,
    RotatedSecret,
)
from tessera.webhooks.targets import TargetRefused, check_url


class BadUrl(Problem):
    status = 422
    slug = "endpoint-url-refused"
    title = "That URL cannot receive webhooks"


class OverlapTooLong(Problem):
    status = 422
    slug = "overlap-too-long"
    title = "The rotation overlap is too long"


def new_secret() -> str:
    """`whsec_` + 24 random bytes, base64: the form Standard Webhooks libraries read."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def allowed_url(url: str, production: bool) -> str:
    try:
        check_url(url, production=production)
    except TargetRefused as refused:
        raise BadUrl(str(refused)) from None
    return url


def unknown() -> NotFound:
    return NotFound("No such webhook endpoint.")


async def create(
    pool: asyncpg.Pool, tenant: Tenant, body: EndpointCreate, production: bool, sealer: Sealer
) -> EndpointCreated:
    url = allowed_url(body.url, production)
    secret = new_secret()
    async with pool.acquire() as conn:
        row = await queries.insert(
            conn, tenant, UUID(str(new_event_id())), url, body.event_types, body.description,
            body.enabled, sealer.seal(secret.encode()),
        )  # fmt: skip
    return EndpointCreated(**dict(row), secret=secret)


async def list_of(pool: asyncpg.Pool, tenant: Tenant) -> list[EndpointOut]:
    async with pool.acquire() as conn:
        return [EndpointOut(**dict(row)) for row in await queries.list_of(conn, tenant)]


async def one(pool: asyncpg.Pool, tenant: Tenant, endpoint_id: UUID) -> EndpointOut:
    async with pool.acquire() as conn:
        row = await queries.one(conn, tenant, endpoint_id)
    if row is None:
        raise unknown()
    return EndpointOut(**dict(row))


async def require(conn: asyncpg.Connection, tenant: Tenant, endpoint_id: UUID) -> None:
    """404 unless the tenant has that endpoint."""
    if await queries.one(conn, tenant, endpoint_id) is None:
        raise unknown()


async def update(
    pool: asyncpg.Pool, tenant: Tenant, endpoint_id: UUID, body: EndpointUpdate, production: bool
) -> EndpointOut:
    given = body.model_fields_set
    if "url" in given and body.url is not None:
        allowed_url(body.url, production)
    async with pool.acquire() as conn, conn.transaction():
        current = await queries.lock(conn, tenant, endpoint_id)
        if current is None:
            raise unknown()
        enabled = current["enabled"] if body.enabled is None else body.enabled
        reason = current["disabled_reason"]
        if body.enabled is not None:
            reason = None if body.enabled else "seller"
        row = await queries.save(
            conn,
            endpoint_id,
            body.url or current["url"],
            body.event_types if "event_types" in given else current["event_types"],
            current["description"] if body.description is None else body.description,
            enabled,
            reason,
        )
        if enabled and not current["enabled"]:
            await deliveries.wake_workers(conn)
    return EndpointOut(**dict(row))


async def delete(pool: asyncpg.Pool, tenant: Tenant, endpoint_id: UUID) -> None:
    async with pool.acquire() as conn:
        if not await queries.delete(conn, tenant, endpoint_id):
            raise unknown()


async def rotate_secret(
    pool: asyncpg.Pool,
    tenant: Tenant,
    endpoint_id: UUID,
    overlap_seconds: int,
    max_overlap: int,
    sealer: Sealer,
) -> RotatedSecret:
    """A new secret signs from now on; the old one also signs (both signatures are sent)
    until the overlap ends, so receivers can switch without a gap."""
    if overlap_seconds > max_overlap:
        raise OverlapTooLong(f"At most {max_overlap} seconds.")
    secret = new_secret()
    until = datetime.now(UTC) + timedelta(seconds=overlap_seconds) if overlap_seconds else None
    async with pool.acquire() as conn, conn.transaction():
        if await queries.lock(conn, tenant, endpoint_id) is None:
            raise unknown()
        expires = await queries.rotate(conn, endpoint_id, sealer.seal(secret.encode()), until)
    return RotatedSecret(secret=secret, previous_secret_expires_at=expires)


async def send_test(pool: asyncpg.Pool, tenant: Tenant, endpoint_id: UUID) -> str:
    """Queue a `webhook.test` event for the endpoint (enabled or not: it is only sent while
    it is enabled)."""
    event = WebhookTest(
        id=public_id(new_event_id()),
        timestamp=datetime.now(UTC),
        data=TestData(endpoint=endpoint_id, message="A test event from Tessera."),
    )
    async with pool.acquire() as conn, conn.transaction():
        if await queries.lock(conn, tenant, endpoint_id) is None:
            raise unknown()
        await deliveries.queue_test(conn, tenant, endpoint_id, event)
    return event.id
