"""`GET /v1/catalog`: the products on sale (and those once sold), public.

The portal names products and plans in the customer's words from it, and an integrator can
read the prices from it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from tessera.billing.catalog import queries
from tessera.billing.catalog.schemas import PublicCatalogItem
from tessera.billing.context import PUBLIC_TENANT, BillingDep
from tessera.shared.http.context import client_ip

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/catalog", summary="Every SKU: name, price, product and license policy")
async def catalog(
    billing: BillingDep, request: Request, response: Response
) -> list[PublicCatalogItem]:
    await billing.limiter.enforce("300/minute", "catalog", client_ip(request))
    response.headers["cache-control"] = "public, max-age=300"
    async with billing.pool.acquire() as conn:
        items = await queries.list_all(conn, PUBLIC_TENANT)
    return [PublicCatalogItem.of(item) for item in items]
