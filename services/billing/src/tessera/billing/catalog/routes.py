"""The catalog's routes: `GET /v1/catalog` (the home seller's SKUs, public), the seller API
that manages a seller's products, one-time prices and tiers (secret key), and a seller's
active tiers for its pricing page (publishable key).

The tenant is always the key's seller and mode: another seller's product, SKU or tier is
a 404, as one that does not exist. Path parameters are named apart from the body fields
that name the same things (`product_code` in the path, `code` in a body): a create's body
names the new object, a path an existing one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from tessera.billing.catalog import queries, service
from tessera.billing.catalog.schemas import (
    EXISTING_CODE,
    OneTimePriceIn,
    OneTimePriceOut,
    OneTimePricePatch,
    ProductIn,
    ProductOut,
    ProductPatch,
    PublicCatalogItem,
    PublicTier,
    TierIn,
    TierOut,
    TierPatch,
)
from tessera.billing.context import PUBLIC_TENANT, BillingDep
from tessera.shared.api_keys import SecretSellerDep, SellerCredential, SellerDep
from tessera.shared.api_keys.sessions import require_owner
from tessera.shared.http.context import client_ip
from tessera.shared.sellers import Tenant

router = APIRouter(prefix="/v1", tags=["catalog"])
seller_router = APIRouter(prefix="/v1", tags=["seller"])

CodePath = Annotated[str, Path(pattern=EXISTING_CODE)]


@router.get("/catalog", summary="Every SKU: name, price, product and license policy")
async def catalog(
    billing: BillingDep, request: Request, response: Response
) -> list[PublicCatalogItem]:
    await billing.limiter.enforce("300/minute", "catalog", client_ip(request))
    response.headers["cache-control"] = "public, max-age=300"
    async with billing.pool.acquire() as conn:
        items = await queries.list_all(conn, PUBLIC_TENANT)
    return [PublicCatalogItem.of(item) for item in items]


async def secret_tenant(billing: BillingDep, seller: SecretSellerDep) -> Tenant:
    """The secret key's tenant, once counted against the key's budget."""
    return _counted(billing, seller)


async def any_key_tenant(billing: BillingDep, seller: SellerDep) -> Tenant:
    """The tenant of a publishable (or secret) key, once counted against its budget."""
    return _counted(billing, seller)


async def owner_tenant(billing: BillingDep, seller: SecretSellerDep) -> Tenant:
    """The tenant of a secret key or of an owner's dashboard session: for what decides
    where the seller's money goes (a developer's session is refused, docs/sellers.md)."""
    require_owner(seller)
    return _counted(billing, seller)


def _counted(billing: BillingDep, seller: SellerCredential) -> Tenant:
    billing.synced_limiter.enforce((billing.per_seller_key, str(seller.key_id)))
    return Tenant(seller.seller_id, seller.mode)


SecretTenant = Annotated[Tenant, Depends(secret_tenant)]
OwnerTenant = Annotated[Tenant, Depends(owner_tenant)]
KeyTenant = Annotated[Tenant, Depends(any_key_tenant)]


# ---------------------------------------------------------------- products


@seller_router.get("/products", summary="The seller's products, with their Stripe sync state")
async def list_products(billing: BillingDep, tenant: SecretTenant) -> list[ProductOut]:
    return await service.list_products(billing.pool, tenant)


@seller_router.post("/products", status_code=201, summary="Create a product")
async def create_product(body: ProductIn, billing: BillingDep, tenant: SecretTenant) -> ProductOut:
    return await service.create_product(billing.pool, billing.accounts, tenant, body)


@seller_router.get("/products/{product_code}", summary="One product")
async def get_product(
    product_code: CodePath, billing: BillingDep, tenant: SecretTenant
) -> ProductOut:
    return await service.get_product(billing.pool, tenant, product_code)


@seller_router.patch(
    "/products/{product_code}", summary="Change a product's name, description or state"
)
async def update_product(
    product_code: CodePath, body: ProductPatch, billing: BillingDep, tenant: SecretTenant
) -> ProductOut:
    return await service.update_product(billing.pool, billing.accounts, tenant, product_code, body)


@seller_router.post(
    "/products/{product_code}/archive",
    summary="Archive a product, with its one-time prices and tiers",
)
async def archive_product(
    product_code: CodePath, billing: BillingDep, tenant: SecretTenant
) -> ProductOut:
    return await service.update_product(
        billing.pool, billing.accounts, tenant, product_code, ProductPatch(active=False)
    )


# ---------------------------------------------------------------- one-time prices


@seller_router.get("/one-time-prices", summary="The seller's SKUs, with their price history")
async def list_one_time_prices(billing: BillingDep, tenant: SecretTenant) -> list[OneTimePriceOut]:
    return await service.list_one_time_prices(billing.pool, tenant)


@seller_router.post("/one-time-prices", status_code=201, summary="Create a SKU (a one-time price)")
async def create_one_time_price(
    body: OneTimePriceIn, billing: BillingDep, tenant: SecretTenant
) -> OneTimePriceOut:
    return await service.create_one_time_price(billing.pool, billing.accounts, tenant, body)


@seller_router.get("/one-time-prices/{sku_code}", summary="One SKU, with its price history")
async def get_one_time_price(
    sku_code: CodePath, billing: BillingDep, tenant: SecretTenant
) -> OneTimePriceOut:
    return await service.get_one_time_price(billing.pool, tenant, sku_code)


@seller_router.patch(
    "/one-time-prices/{sku_code}", summary="Change a SKU (a new amount is a new Stripe price)"
)
async def update_one_time_price(
    sku_code: CodePath, body: OneTimePricePatch, billing: BillingDep, tenant: SecretTenant
) -> OneTimePriceOut:
    return await service.update_one_time_price(
        billing.pool, billing.accounts, tenant, sku_code, body
    )


@seller_router.post("/one-time-prices/{sku_code}/archive", summary="Stop selling a SKU")
async def archive_one_time_price(
    sku_code: CodePath, billing: BillingDep, tenant: SecretTenant
) -> OneTimePriceOut:
    return await service.update_one_time_price(
        billing.pool, billing.accounts, tenant, sku_code, OneTimePricePatch(active=False)
    )


# ---------------------------------------------------------------- tiers


@seller_router.get("/tiers", summary="The seller's tiers, with their price history")
async def list_tiers(billing: BillingDep, tenant: SecretTenant) -> list[TierOut]:
    return await service.list_tiers(billing.pool, tenant)


@seller_router.post("/tiers", status_code=201, summary="Create a recurring tier")
async def create_tier(body: TierIn, billing: BillingDep, tenant: SecretTenant) -> TierOut:
    return await service.create_tier(billing.pool, billing.accounts, tenant, body)


@seller_router.get("/tiers/{tier_code}", summary="One tier, with its price history")
async def get_tier(tier_code: CodePath, billing: BillingDep, tenant: SecretTenant) -> TierOut:
    return await service.get_tier(billing.pool, tenant, tier_code)


@seller_router.patch(
    "/tiers/{tier_code}", summary="Change a tier (a new amount is a new Stripe price)"
)
async def update_tier(
    tier_code: CodePath, body: TierPatch, billing: BillingDep, tenant: SecretTenant
) -> TierOut:
    return await service.update_tier(billing.pool, billing.accounts, tenant, tier_code, body)


@seller_router.post("/tiers/{tier_code}/archive", summary="Stop selling a tier")
async def archive_tier(tier_code: CodePath, billing: BillingDep, tenant: SecretTenant) -> TierOut:
    return await service.update_tier(
        billing.pool, billing.accounts, tenant, tier_code, TierPatch(active=False)
    )


@seller_router.get(
    "/pricing/tiers", summary="The seller's active tiers, for a pricing page (publishable key)"
)
async def pricing_tiers(billing: BillingDep, tenant: KeyTenant) -> list[PublicTier]:
    return await service.public_tiers(billing.pool, tenant)
