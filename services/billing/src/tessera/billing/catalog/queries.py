"""SQL of the `catalog` table."""

from __future__ import annotations

import asyncpg

from tessera.billing.catalog.schemas import CatalogItem
from tessera.shared.sellers import Tenant

COLUMNS = (
    "sku, name, description, unit_amount, currency, stripe_price_id, product, policy,"
    " seats_per_unit, max_quantity, active, allow_promotion_codes"
)


async def upsert(conn: asyncpg.Connection, tenant: Tenant, item: CatalogItem) -> None:
    await conn.execute(
        f"""
        INSERT INTO catalog ({COLUMNS}, seller_id, mode)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        ON CONFLICT (seller_id, mode, sku) DO UPDATE SET
            name = EXCLUDED.name, description = EXCLUDED.description,
            unit_amount = EXCLUDED.unit_amount, currency = EXCLUDED.currency,
            stripe_price_id = EXCLUDED.stripe_price_id, product = EXCLUDED.product,
            policy = EXCLUDED.policy, seats_per_unit = EXCLUDED.seats_per_unit,
            max_quantity = EXCLUDED.max_quantity, active = EXCLUDED.active,
            allow_promotion_codes = EXCLUDED.allow_promotion_codes,
            updated_at = clock_timestamp()
        """,  # noqa: S608 - COLUMNS is a constant
        item.sku,
        item.name,
        item.description,
        item.unit_amount,
        item.currency,
        item.stripe_price_id,
        item.product,
        item.policy,
        item.seats_per_unit,
        item.max_quantity,
        item.active,
        item.allow_promotion_codes,
        tenant.seller_id,
        tenant.mode,
    )


async def find(conn: asyncpg.Connection, tenant: Tenant, sku: str) -> CatalogItem | None:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM catalog WHERE seller_id = $1 AND mode = $2 AND sku = $3",  # noqa: S608
        tenant.seller_id,
        tenant.mode,
        sku,
    )
    return CatalogItem(**dict(row)) if row else None


async def list_all(conn: asyncpg.Connection, tenant: Tenant) -> list[CatalogItem]:
    """Every SKU the tenant ever sold, active or not (an old order still needs its
    product's name)."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM catalog WHERE seller_id = $1 AND mode = $2 ORDER BY sku",  # noqa: S608
        tenant.seller_id,
        tenant.mode,
    )
    return [CatalogItem(**dict(r)) for r in rows]
