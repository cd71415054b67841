"""Entitlements over HTTP: a customer's, with the seller's secret key; and the signed-in
customer's own (`/v1/me/entitlements`)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from tessera.licensing.context import LicensingDep
from tessera.licensing.entitlements import service
from tessera.licensing.entitlements.schemas import EntitlementOut
from tessera.licensing.me.routes import CustomerDep
from tessera.licensing.seller_api.routes import SellerKey, tenant

router = APIRouter(prefix="/v1", tags=["seller"])
me_router = APIRouter(prefix="/v1/me", tags=["customer"])


@router.get(
    "/customers/{customer_id}/entitlements",
    summary="What a customer's subscriptions entitle them to, per product",
)
async def of_customer(
    customer_id: UUID, licensing: LicensingDep, seller: SellerKey
) -> list[EntitlementOut]:
    return await service.of_customer(licensing.pool, tenant(seller), customer_id, must_exist=True)


@me_router.get("/entitlements", summary="What my subscriptions entitle me to, per product")
async def mine(licensing: LicensingDep, me: CustomerDep) -> list[EntitlementOut]:
    return await service.of_customer(licensing.pool, me.tenant, me.account_id, must_exist=False)
