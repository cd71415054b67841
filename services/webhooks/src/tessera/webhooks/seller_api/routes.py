"""The seller API's webhook endpoints, with a secret key (`Authorization: Bearer sk_…`).
The tenant is the key's seller and mode; another tenant's endpoint is a 404, as one that
does not exist. A publishable key gets 403, no key 401."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from tessera.shared.api_keys import SecretSellerDep, SellerCredential
from tessera.shared.sellers import Tenant
from tessera.webhooks.context import WebhooksDep
from tessera.webhooks.deliveries.schemas import TestSent
from tessera.webhooks.endpoints import service
from tessera.webhooks.endpoints.schemas import (
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointUpdate,
    RotatedSecret,
    RotateRequest,
)

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["seller"])


async def seller_key(webhooks: WebhooksDep, seller: SecretSellerDep) -> SellerCredential:
    """The key's credential, once counted against its budget (per key id)."""
    webhooks.synced_limiter.enforce((webhooks.per_seller_key, str(seller.key_id)))
    return seller


SellerKey = Annotated[SellerCredential, Depends(seller_key)]


def tenant(seller: SellerCredential) -> Tenant:
    return Tenant(seller.seller_id, seller.mode)


@router.post("", status_code=201, summary="Register an endpoint (its secret is shown once)")
async def create(body: EndpointCreate, webhooks: WebhooksDep, seller: SellerKey) -> EndpointCreated:
    return await service.create(
        webhooks.pool, tenant(seller), body, webhooks.public_targets_only, webhooks.sealer
    )


@router.get("", summary="The tenant's endpoints")
async def list_endpoints(webhooks: WebhooksDep, seller: SellerKey) -> list[EndpointOut]:
    return await service.list_of(webhooks.pool, tenant(seller))


@router.get("/{endpoint_id}", summary="One endpoint")
async def read(endpoint_id: UUID, webhooks: WebhooksDep, seller: SellerKey) -> EndpointOut:
    return await service.one(webhooks.pool, tenant(seller), endpoint_id)


@router.patch("/{endpoint_id}", summary="Change an endpoint: URL, event types, description, on/off")
async def update(
    endpoint_id: UUID, body: EndpointUpdate, webhooks: WebhooksDep, seller: SellerKey
) -> EndpointOut:
    return await service.update(
        webhooks.pool, tenant(seller), endpoint_id, body, webhooks.public_targets_only
    )


@router.delete("/{endpoint_id}", status_code=204, summary="Delete an endpoint and its log")
async def delete(endpoint_id: UUID, webhooks: WebhooksDep, seller: SellerKey) -> Response:
    await service.delete(webhooks.pool, tenant(seller), endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", summary="A new signing secret, with an overlap")
async def rotate_secret(
    endpoint_id: UUID, webhooks: WebhooksDep, seller: SellerKey, body: RotateRequest | None = None
) -> RotatedSecret:
    overlap = (body or RotateRequest()).overlap_seconds
    return await service.rotate_secret(
        webhooks.pool, tenant(seller), endpoint_id, overlap,
        webhooks.settings.max_rotation_overlap_seconds, webhooks.sealer,
    )  # fmt: skip


@router.post("/{endpoint_id}/test", status_code=202, summary="Send a `webhook.test` event")
async def send_test(endpoint_id: UUID, webhooks: WebhooksDep, seller: SellerKey) -> TestSent:
    event_id = await service.send_test(webhooks.pool, tenant(seller), endpoint_id)
    return TestSent(event_id=event_id)
