"""The seller API's delivery log and replays of an endpoint (secret key; the tenant is the
key's seller and mode)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from tessera.webhooks.context import WebhooksDep
from tessera.webhooks.deliveries import service
from tessera.webhooks.deliveries.schemas import AttemptOut, Replayed, ReplayRequest
from tessera.webhooks.endpoints import service as endpoints
from tessera.webhooks.seller_api.routes import SellerKey, tenant

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["seller"])


@router.get("/{endpoint_id}/deliveries", summary="The endpoint's attempts, newest first")
async def deliveries(
    endpoint_id: UUID,
    webhooks: WebhooksDep,
    seller: SellerKey,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, description="An attempt id: older ones.")] = None,
) -> list[AttemptOut]:
    async with webhooks.pool.acquire() as conn:
        await endpoints.require(conn, tenant(seller), endpoint_id)
        return await service.attempts(conn, endpoint_id, limit, before)


@router.post(
    "/{endpoint_id}/replay", status_code=202, summary="Send one event, or all since a time, again"
)
async def replay(
    endpoint_id: UUID, body: ReplayRequest, webhooks: WebhooksDep, seller: SellerKey
) -> Replayed:
    who = tenant(seller)
    async with webhooks.pool.acquire() as conn, conn.transaction():
        await endpoints.require(conn, who, endpoint_id)
        if body.event_id is not None:
            queued = await service.replay_one(conn, who, endpoint_id, body.event_id)
        else:
            assert body.since is not None
            queued = await service.replay_since(conn, endpoint_id, body.since)
    return Replayed(queued=queued)
