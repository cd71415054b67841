"""SQL of the `catalog` table."""

from __future__ import annotations

import asyncpg

from tessera.billing.catalog.schemas import CatalogItem

COLUMNS = (
    "sku, name, description, unit_amount, currency, stripe_price_id, product, policy,"
    " seats_per_unit, max_quantity, active, allow_promotion_codes"
)


async def upsert(conn: asyncpg.Connection, item: CatalogItem) -> None:
    await conn.execute(
        f"""
        INSERT INTO catalog ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT (sku) DO UPDATE SET
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
    )


async def find(conn: asyncpg.Connection, sku: str) -> CatalogItem | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM catalog WHERE sku = $1", sku)  # noqa: S608
    return CatalogItem(**dict(row)) if row else None


async def list_active(conn: asyncpg.Connection) -> list[CatalogItem]:
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM catalog WHERE active ORDER BY sku")  # noqa: S608
    return [CatalogItem(**dict(r)) for r in rows]


async def list_all(conn: asyncpg.Connection) -> list[CatalogItem]:
    """Every SKU ever sold, active or not (an old order still needs its product's name)."""
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM catalog ORDER BY sku")  # noqa: S608
    return [CatalogItem(**dict(r)) for r in rows]
