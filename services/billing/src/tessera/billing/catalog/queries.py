"""SQL of the catalog's tables: `products`, `catalog` (one-time prices: SKUs), `tiers` and
`prices` (every Stripe price, one-time or recurring, current or superseded)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg

from tessera.billing.catalog.schemas import CatalogItem, Grants, Interval, Price, Product, Tier
from tessera.shared.sellers import Tenant

COLUMNS = (
    "sku, name, description, unit_amount, currency, stripe_price_id, product, policy,"
    " seats_per_unit, max_quantity, active, allow_promotion_codes"
)
PRODUCT_COLUMNS = "code, name, description, active, stripe_product_id"
TIER_COLUMNS = "code, product, name, description, trial_days, grants, active"
PRICE_FIELDS = (
    "product", "sku", "tier", '"interval"', "unit_amount", "currency", "active", "current",
    "stripe_price_id", "created_at", "superseded_at",
)  # fmt: skip


def price_columns(alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join([f"{prefix}id::text AS id", *(f"{prefix}{f}" for f in PRICE_FIELDS)])


PRICE_COLUMNS = price_columns()

# ---------------------------------------------------------------- one-time prices (SKUs)


async def upsert(conn: asyncpg.Connection, tenant: Tenant, item: CatalogItem) -> None:
    """Write the SKU row as given (its `prices` row is the service's business)."""
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
        *_values(item),
        tenant.seller_id,
        tenant.mode,
    )


async def insert(conn: asyncpg.Connection, tenant: Tenant, item: CatalogItem) -> bool:
    """False when the tenant already has this SKU (a create racing another gets this, not
    a unique violation)."""
    status = await conn.execute(
        f"""
        INSERT INTO catalog ({COLUMNS}, seller_id, mode)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        ON CONFLICT DO NOTHING
        """,  # noqa: S608 - COLUMNS is a constant
        *_values(item),
        tenant.seller_id,
        tenant.mode,
    )
    return bool(status.endswith(" 1"))


def _values(item: CatalogItem) -> tuple[object, ...]:
    """The item's values in `COLUMNS` order."""
    return (
        item.sku, item.name, item.description, item.unit_amount, item.currency,
        item.stripe_price_id, item.product, item.policy, item.seats_per_unit,
        item.max_quantity, item.active, item.allow_promotion_codes,
    )  # fmt: skip


async def find(
    conn: asyncpg.Connection, tenant: Tenant, sku: str, *, for_update: bool = False
) -> CatalogItem | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM catalog WHERE seller_id = $1 AND mode = $2 AND sku = $3{lock}",  # noqa: S608
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


async def set_active_of_product(
    conn: asyncpg.Connection, tenant: Tenant, product: str, active: bool
) -> list[str]:
    """Set `active` on every SKU of `product`; the SKUs that changed."""
    rows = await conn.fetch(
        """
        UPDATE catalog SET active = $4, updated_at = clock_timestamp()
        WHERE seller_id = $1 AND mode = $2 AND product = $3 AND active <> $4
        RETURNING sku
        """,
        tenant.seller_id,
        tenant.mode,
        product,
        active,
    )
    return [r["sku"] for r in rows]


async def set_stripe_price(
    conn: asyncpg.Connection, tenant: Tenant, sku: str, price_id: str, stripe_price_id: str
) -> None:
    """Checkout sells the SKU at this Stripe price, if `price_id` is still its current
    price (a new amount may have superseded it while Stripe was being called)."""
    await conn.execute(
        """
        UPDATE catalog SET stripe_price_id = $5
        WHERE seller_id = $1 AND mode = $2 AND sku = $3
          AND EXISTS (SELECT 1 FROM prices WHERE seller_id = $1 AND mode = $2
                      AND id = $4::uuid AND current)
        """,
        tenant.seller_id,
        tenant.mode,
        sku,
        price_id,
        stripe_price_id,
    )


# ---------------------------------------------------------------- products


async def insert_product(conn: asyncpg.Connection, tenant: Tenant, product: Product) -> bool:
    """False when the tenant already has a product with this code."""
    status = await conn.execute(
        """
        INSERT INTO products (seller_id, mode, code, name, description, active)
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
        """,
        tenant.seller_id,
        tenant.mode,
        product.code,
        product.name,
        product.description,
        product.active,
    )
    return bool(status.endswith(" 1"))


async def update_product(conn: asyncpg.Connection, tenant: Tenant, product: Product) -> None:
    await conn.execute(
        """
        UPDATE products SET name = $4, description = $5, active = $6,
                            updated_at = clock_timestamp()
        WHERE seller_id = $1 AND mode = $2 AND code = $3
        """,
        tenant.seller_id,
        tenant.mode,
        product.code,
        product.name,
        product.description,
        product.active,
    )


async def find_product(
    conn: asyncpg.Connection, tenant: Tenant, code: str, *, for_update: bool = False
) -> Product | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {PRODUCT_COLUMNS} FROM products"  # noqa: S608 - constants
        f" WHERE seller_id = $1 AND mode = $2 AND code = $3{lock}",
        tenant.seller_id,
        tenant.mode,
        code,
    )
    return Product(**dict(row)) if row else None


async def list_products(conn: asyncpg.Connection, tenant: Tenant) -> list[Product]:
    rows = await conn.fetch(
        f"SELECT {PRODUCT_COLUMNS} FROM products"  # noqa: S608 - constants
        " WHERE seller_id = $1 AND mode = $2 ORDER BY code",
        tenant.seller_id,
        tenant.mode,
    )
    return [Product(**dict(r)) for r in rows]


async def set_stripe_product(
    conn: asyncpg.Connection, tenant: Tenant, code: str, stripe_product_id: str
) -> None:
    await conn.execute(
        "UPDATE products SET stripe_product_id = $4"
        " WHERE seller_id = $1 AND mode = $2 AND code = $3",
        tenant.seller_id,
        tenant.mode,
        code,
        stripe_product_id,
    )


# ---------------------------------------------------------------- tiers


def _tier(row: asyncpg.Record) -> Tier:
    values: dict[str, Any] = dict(row)
    values["grants"] = Grants.model_validate_json(values["grants"])
    return Tier(**values)


async def insert_tier(conn: asyncpg.Connection, tenant: Tenant, tier: Tier) -> bool:
    """False when the tenant already has a tier with this code."""
    status = await conn.execute(
        """
        INSERT INTO tiers (seller_id, mode, code, product, name, description, trial_days,
                           grants, active)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9) ON CONFLICT DO NOTHING
        """,
        tenant.seller_id,
        tenant.mode,
        tier.code,
        tier.product,
        tier.name,
        tier.description,
        tier.trial_days,
        tier.grants.model_dump_json(),
        tier.active,
    )
    return bool(status.endswith(" 1"))


async def update_tier(conn: asyncpg.Connection, tenant: Tenant, tier: Tier) -> None:
    await conn.execute(
        """
        UPDATE tiers SET name = $4, description = $5, trial_days = $6, grants = $7::jsonb,
                         active = $8, updated_at = clock_timestamp()
        WHERE seller_id = $1 AND mode = $2 AND code = $3
        """,
        tenant.seller_id,
        tenant.mode,
        tier.code,
        tier.name,
        tier.description,
        tier.trial_days,
        tier.grants.model_dump_json(),
        tier.active,
    )


async def find_tier(
    conn: asyncpg.Connection, tenant: Tenant, code: str, *, for_update: bool = False
) -> Tier | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {TIER_COLUMNS} FROM tiers"  # noqa: S608 - constants
        f" WHERE seller_id = $1 AND mode = $2 AND code = $3{lock}",
        tenant.seller_id,
        tenant.mode,
        code,
    )
    return _tier(row) if row else None


async def list_tiers(
    conn: asyncpg.Connection, tenant: Tenant, *, active_only: bool = False
) -> list[Tier]:
    rows = await conn.fetch(
        f"SELECT {TIER_COLUMNS} FROM tiers"  # noqa: S608 - constants
        " WHERE seller_id = $1 AND mode = $2 AND (active OR NOT $3) ORDER BY code",
        tenant.seller_id,
        tenant.mode,
        active_only,
    )
    return [_tier(r) for r in rows]


async def tiers_of_product(conn: asyncpg.Connection, tenant: Tenant, product: str) -> list[Tier]:
    rows = await conn.fetch(
        f"SELECT {TIER_COLUMNS} FROM tiers"  # noqa: S608 - constants
        " WHERE seller_id = $1 AND mode = $2 AND product = $3 ORDER BY code FOR UPDATE",
        tenant.seller_id,
        tenant.mode,
        product,
    )
    return [_tier(r) for r in rows]


# ---------------------------------------------------------------- prices


async def insert_price(
    conn: asyncpg.Connection,
    tenant: Tenant,
    *,
    product: str,
    sku: str | None = None,
    tier: str | None = None,
    interval: Interval | None = None,
    unit_amount: int,
    currency: str,
    active: bool,
    stripe_price_id: str | None = None,
) -> UUID:
    price_id = uuid4()
    await conn.execute(
        """
        INSERT INTO prices (id, seller_id, mode, product, sku, tier, "interval", unit_amount,
                            currency, active, stripe_price_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        """,
        price_id,
        tenant.seller_id,
        tenant.mode,
        product,
        sku,
        tier,
        interval,
        unit_amount,
        currency,
        active,
        stripe_price_id,
    )
    return price_id


async def current_prices(
    conn: asyncpg.Connection, tenant: Tenant, *, sku: str | None = None, tier: str | None = None
) -> list[Price]:
    """The current price of a SKU, or of a tier per interval (locked: the caller changes
    them)."""
    rows = await conn.fetch(
        f"SELECT {PRICE_COLUMNS} FROM prices"  # noqa: S608 - constants
        " WHERE seller_id = $1 AND mode = $2 AND current"
        ' AND (sku = $3 OR tier = $4) ORDER BY "interval" FOR UPDATE',
        tenant.seller_id,
        tenant.mode,
        sku,
        tier,
    )
    return [Price(**dict(r)) for r in rows]


async def history(
    conn: asyncpg.Connection,
    tenant: Tenant,
    *,
    skus: list[str] | None = None,
    tiers: list[str] | None = None,
) -> list[Price]:
    """Every price of these SKUs or tiers, newest first."""
    rows = await conn.fetch(
        f"SELECT {PRICE_COLUMNS} FROM prices"  # noqa: S608 - constants
        " WHERE seller_id = $1 AND mode = $2 AND (sku = ANY($3) OR tier = ANY($4))"
        ' ORDER BY current DESC, created_at DESC, "interval"',
        tenant.seller_id,
        tenant.mode,
        skus or [],
        tiers or [],
    )
    return [Price(**dict(r)) for r in rows]


async def find_price(conn: asyncpg.Connection, tenant: Tenant, price_id: str) -> Price | None:
    row = await conn.fetchrow(
        f"SELECT {PRICE_COLUMNS} FROM prices"  # noqa: S608 - constants
        " WHERE seller_id = $1 AND mode = $2 AND id = $3::uuid",
        tenant.seller_id,
        tenant.mode,
        price_id,
    )
    return Price(**dict(row)) if row else None


async def by_stripe_price(
    conn: asyncpg.Connection, tenant: Tenant, stripe_price_id: str
) -> Price | None:
    """The tenant's price Stripe knows by this id (a subscription names the price it pays)."""
    row = await conn.fetchrow(
        f"SELECT {PRICE_COLUMNS} FROM prices"  # noqa: S608 - constants
        " WHERE seller_id = $1 AND mode = $2 AND stripe_price_id = $3",
        tenant.seller_id,
        tenant.mode,
        stripe_price_id,
    )
    return Price(**dict(row)) if row else None


async def current_tier_price(
    conn: asyncpg.Connection, tenant: Tenant, tier: str, interval: Interval
) -> Price | None:
    """The tier's current price for the interval (read only: what checkout sells)."""
    row = await conn.fetchrow(
        f"SELECT {PRICE_COLUMNS} FROM prices"  # noqa: S608 - constants
        ' WHERE seller_id = $1 AND mode = $2 AND current AND tier = $3 AND "interval" = $4',
        tenant.seller_id,
        tenant.mode,
        tier,
        interval,
    )
    return Price(**dict(row)) if row else None


async def set_price_state(
    conn: asyncpg.Connection, tenant: Tenant, price_id: str, *, active: bool, current: bool
) -> None:
    await conn.execute(
        """
        UPDATE prices SET active = $4, current = $5,
            superseded_at = CASE WHEN $5 THEN NULL ELSE coalesce(superseded_at, clock_timestamp()) END
        WHERE seller_id = $1 AND mode = $2 AND id = $3::uuid
        """,
        tenant.seller_id,
        tenant.mode,
        price_id,
        active,
        current,
    )


async def set_stripe_price_id(
    conn: asyncpg.Connection, tenant: Tenant, price_id: str, stripe_price_id: str
) -> None:
    await conn.execute(
        "UPDATE prices SET stripe_price_id = $4"
        " WHERE seller_id = $1 AND mode = $2 AND id = $3::uuid",
        tenant.seller_id,
        tenant.mode,
        price_id,
        stripe_price_id,
    )


# ---------------------------------------------------------------- for the Stripe sync


async def product_for_sync(
    conn: asyncpg.Connection, tenant: Tenant, code: str
) -> tuple[int, Product] | None:
    """The product and its sync version, read together (one snapshot: a change and its
    version bump commit together, so the version names exactly this content)."""
    row = await conn.fetchrow(
        """
        SELECT s.version, p.code, p.name, p.description, p.active, p.stripe_product_id
        FROM stripe_sync s
        JOIN products p ON p.seller_id = s.seller_id AND p.mode = s.mode AND p.code = s.object_key
        WHERE s.seller_id = $1 AND s.mode = $2 AND s.object_type = 'product'
          AND s.object_key = $3
        """,
        tenant.seller_id,
        tenant.mode,
        code,
    )
    if row is None:
        return None
    values = dict(row)
    return values.pop("version"), Product(**values)


async def price_for_sync(
    conn: asyncpg.Connection, tenant: Tenant, price_id: str
) -> tuple[int, Price, str | None, str] | None:
    """The price, its sync version, its product's Stripe id and a nickname (its SKU's or
    tier's name), read together."""
    row = await conn.fetchrow(
        f"""
        SELECT s.version, p.stripe_product_id AS stripe_product,
               coalesce(c.name, t.name || ' (' || pr."interval" || 'ly)') AS nickname,
               {price_columns("pr")}
        FROM stripe_sync s
        JOIN prices pr ON pr.seller_id = s.seller_id AND pr.mode = s.mode
                      AND pr.id = s.object_key::uuid
        JOIN products p ON p.seller_id = pr.seller_id AND p.mode = pr.mode
                       AND p.code = pr.product
        LEFT JOIN catalog c ON c.seller_id = pr.seller_id AND c.mode = pr.mode AND c.sku = pr.sku
        LEFT JOIN tiers t ON t.seller_id = pr.seller_id AND t.mode = pr.mode AND t.code = pr.tier
        WHERE s.seller_id = $1 AND s.mode = $2 AND s.object_type = 'price'
          AND s.object_key = $3
        """,  # noqa: S608 - constants
        tenant.seller_id,
        tenant.mode,
        price_id,
    )
    if row is None:
        return None
    values = dict(row)
    version, stripe_product, nickname = (
        values.pop("version"),
        values.pop("stripe_product"),
        values.pop("nickname"),
    )
    return version, Price(**values), stripe_product, nickname


async def forget_stripe_ids(conn: asyncpg.Connection, tenant: Tenant) -> None:
    """The tenant's Stripe ids name objects of an account it no longer uses (its seller
    connected another one): the sync makes them anew there."""
    for table, column in (
        ("products", "stripe_product_id"),
        ("prices", "stripe_price_id"),
        ("catalog", "stripe_price_id"),
    ):
        await conn.execute(
            f"UPDATE {table} SET {column} = NULL"  # noqa: S608 - names from the tuple above
            f" WHERE seller_id = $1 AND mode = $2 AND {column} IS NOT NULL",
            tenant.seller_id,
            tenant.mode,
        )
