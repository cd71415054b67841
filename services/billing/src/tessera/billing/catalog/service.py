"""Catalog verbs: products, one-time prices (SKUs) and tiers, for the seller API and the
seed file alike. Each verb is one transaction: the change, the price history it makes and
the Stripe sync rows it queues (stripe_sync) commit together or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg

from tessera.billing.catalog import queries
from tessera.billing.catalog import sync_queries as sync
from tessera.billing.catalog.schemas import (
    INTERVALS,
    CatalogFile,
    CatalogItem,
    Money,
    OneTimePriceIn,
    OneTimePriceOut,
    OneTimePricePatch,
    OneTimePriceSeed,
    Price,
    PriceOut,
    Product,
    ProductIn,
    ProductOut,
    ProductPatch,
    PublicTier,
    SeedProduct,
    SyncState,
    Tier,
    TierIn,
    TierOut,
    TierPatch,
    TierPrices,
    TierSeed,
)
from tessera.billing.stripe.accounts import OFFLINE, Accounts
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.sellers import Tenant

# What an object that never had a sync row reads as (none should: every write queues one).
NO_SYNC = SyncState(
    state="local", version=0, synced_version=None, attempts=0, last_error=None,
    next_attempt_at=None, synced_at=None,
)  # fmt: skip


class UnknownSku(NotFound):
    slug = "unknown-sku"
    title = "Unknown product"


class UnknownProduct(NotFound):
    slug = "unknown-product"
    title = "Unknown product"


class UnknownTier(NotFound):
    slug = "unknown-tier"
    title = "Unknown tier"


class DuplicateCode(Problem):
    status = 409
    slug = "duplicate-code"
    title = "The code is taken"


class ProductArchived(Problem):
    status = 409
    slug = "product-archived"
    title = "The product is archived"


# ---------------------------------------------------------------- reading


async def get_buyable(conn: asyncpg.Connection, tenant: Tenant, sku: str) -> CatalogItem:
    """The tenant's active catalog item for `sku`; raises `UnknownSku`."""
    item = await queries.find(conn, tenant, sku)
    if item is None or not item.active:
        raise UnknownSku(f"There is no product {sku!r} for sale.")
    return item


def _price_out(price: Price, states: dict[str, SyncState]) -> PriceOut:
    return PriceOut(
        **price.model_dump(exclude={"product", "sku", "tier"}),
        sync=states.get(price.id, NO_SYNC),
    )


async def _prices_out(
    conn: asyncpg.Connection, tenant: Tenant, prices: list[Price]
) -> dict[str, list[PriceOut]]:
    """Each SKU's or tier's prices, newest first, with their sync state."""
    states = await sync.states(conn, tenant, "price", [p.id for p in prices])
    by: dict[str, list[PriceOut]] = {}
    for price in prices:
        owner = price.sku or price.tier
        assert owner is not None
        by.setdefault(owner, []).append(_price_out(price, states))
    return by


async def products_out(
    conn: asyncpg.Connection, tenant: Tenant, products: list[Product]
) -> list[ProductOut]:
    states = await sync.states(conn, tenant, "product", [p.code for p in products])
    return [ProductOut(**p.model_dump(), sync=states.get(p.code, NO_SYNC)) for p in products]


async def one_time_prices_out(
    conn: asyncpg.Connection, tenant: Tenant, items: list[CatalogItem]
) -> list[OneTimePriceOut]:
    prices = await _prices_out(
        conn, tenant, await queries.history(conn, tenant, skus=[i.sku for i in items])
    )
    return [OneTimePriceOut(**i.model_dump(), prices=prices.get(i.sku, [])) for i in items]


async def tiers_out(conn: asyncpg.Connection, tenant: Tenant, tiers: list[Tier]) -> list[TierOut]:
    prices = await _prices_out(
        conn, tenant, await queries.history(conn, tenant, tiers=[t.code for t in tiers])
    )
    return [TierOut(**t.model_dump(), prices=prices.get(t.code, [])) for t in tiers]


async def list_products(pool: asyncpg.Pool, tenant: Tenant) -> list[ProductOut]:
    async with pool.acquire() as conn:
        return await products_out(conn, tenant, await queries.list_products(conn, tenant))


async def get_product(pool: asyncpg.Pool, tenant: Tenant, code: str) -> ProductOut:
    async with pool.acquire() as conn:
        return (await products_out(conn, tenant, [await _product(conn, tenant, code)]))[0]


async def list_one_time_prices(pool: asyncpg.Pool, tenant: Tenant) -> list[OneTimePriceOut]:
    async with pool.acquire() as conn:
        return await one_time_prices_out(conn, tenant, await queries.list_all(conn, tenant))


async def get_one_time_price(pool: asyncpg.Pool, tenant: Tenant, sku: str) -> OneTimePriceOut:
    async with pool.acquire() as conn:
        return (await one_time_prices_out(conn, tenant, [await _sku(conn, tenant, sku)]))[0]


async def list_tiers(pool: asyncpg.Pool, tenant: Tenant) -> list[TierOut]:
    async with pool.acquire() as conn:
        return await tiers_out(conn, tenant, await queries.list_tiers(conn, tenant))


async def get_tier(pool: asyncpg.Pool, tenant: Tenant, code: str) -> TierOut:
    async with pool.acquire() as conn:
        return (await tiers_out(conn, tenant, [await _tier(conn, tenant, code)]))[0]


async def public_tiers(pool: asyncpg.Pool, tenant: Tenant) -> list[PublicTier]:
    """The active tiers with their current prices, as a pricing page shows them."""
    async with pool.acquire() as conn:
        tiers = await queries.list_tiers(conn, tenant, active_only=True)
        prices = await queries.history(conn, tenant, tiers=[t.code for t in tiers])
    current: dict[str, dict[str, Money]] = {}
    for price in prices:
        if price.current and price.active and price.tier and price.interval:
            current.setdefault(price.tier, {})[price.interval] = Money(
                amount=price.unit_amount, currency=price.currency
            )
    return [
        PublicTier(**t.model_dump(exclude={"active"}), prices=TierPrices(**current[t.code]))
        for t in tiers
        if current.get(t.code)
    ]


async def _product(
    conn: asyncpg.Connection, tenant: Tenant, code: str, *, for_update: bool = False
) -> Product:
    product = await queries.find_product(conn, tenant, code, for_update=for_update)
    if product is None:
        raise UnknownProduct(f"There is no product {code!r}.")
    return product


async def _sku(
    conn: asyncpg.Connection, tenant: Tenant, sku: str, *, for_update: bool = False
) -> CatalogItem:
    item = await queries.find(conn, tenant, sku, for_update=for_update)
    if item is None:
        raise UnknownSku(f"There is no one-time price {sku!r}.")
    return item


async def _tier(
    conn: asyncpg.Connection, tenant: Tenant, code: str, *, for_update: bool = False
) -> Tier:
    tier = await queries.find_tier(conn, tenant, code, for_update=for_update)
    if tier is None:
        raise UnknownTier(f"There is no tier {code!r}.")
    return tier


# ---------------------------------------------------------------- writing: the steps


async def _sellable_under(
    conn: asyncpg.Connection, tenant: Tenant, code: str, active: bool
) -> None:
    """The product exists (404) and, for something to be sold, is not archived (409)."""
    product = await _product(conn, tenant, code, for_update=True)
    if active and not product.active:
        raise ProductArchived(f"Product {code!r} is archived: nothing of it can be sold.")


async def _write_product(
    conn: asyncpg.Connection, accounts: Accounts, tenant: Tenant, old: Product, new: Product
) -> None:
    if new == old:
        return
    await queries.update_product(conn, tenant, new)
    await sync.changed(
        conn, tenant, "product", new.code, await accounts.initial_state(conn, tenant)
    )
    if not new.active and old.active:
        # An archived product sells nothing: its SKUs and tiers are archived with it (and
        # stay so when it comes back, until each is reactivated).
        for sku in await queries.set_active_of_product(conn, tenant, new.code, False):
            await _set_prices_active(conn, accounts, tenant, sku=sku, active=False)
        for tier in await queries.tiers_of_product(conn, tenant, new.code):
            if tier.active:
                await queries.update_tier(conn, tenant, tier.model_copy(update={"active": False}))
                await _set_prices_active(conn, accounts, tenant, tier=tier.code, active=False)


async def _set_prices_active(
    conn: asyncpg.Connection,
    accounts: Accounts,
    tenant: Tenant,
    *,
    active: bool,
    sku: str | None = None,
    tier: str | None = None,
) -> None:
    for price in await queries.current_prices(conn, tenant, sku=sku, tier=tier):
        if price.active != active:
            await queries.set_price_state(conn, tenant, price.id, active=active, current=True)
            await sync.changed(
                conn, tenant, "price", price.id, await accounts.initial_state(conn, tenant)
            )


async def _supersede(
    conn: asyncpg.Connection, accounts: Accounts, tenant: Tenant, price: Price
) -> None:
    """The price is no longer sold (a new amount replaced it): archived in Stripe, kept
    here for the subscriptions and orders that name it."""
    await queries.set_price_state(conn, tenant, price.id, active=False, current=False)
    await sync.changed(conn, tenant, "price", price.id, await accounts.initial_state(conn, tenant))


async def _new_price(
    conn: asyncpg.Connection,
    accounts: Accounts,
    tenant: Tenant,
    *,
    product: str,
    money: Money,
    active: bool,
    sku: str | None = None,
    tier: str | None = None,
    interval: str | None = None,
    stripe_price_id: str | None = None,
) -> None:
    price_id = await queries.insert_price(
        conn, tenant, product=product, sku=sku, tier=tier,
        interval=interval,  # type: ignore[arg-type]
        unit_amount=money.amount, currency=money.currency, active=active,
        stripe_price_id=stripe_price_id,
    )  # fmt: skip
    state = await accounts.initial_state(conn, tenant)
    await sync.changed(conn, tenant, "price", str(price_id), state)
    if stripe_price_id is not None:
        # A price made in Stripe by hand: in step already, only its `active` to follow.
        await sync.mark_synced(conn, tenant, "price", str(price_id), "synced")


async def _write_sku(
    conn: asyncpg.Connection,
    accounts: Accounts,
    tenant: Tenant,
    new: CatalogItem,
    given_price_id: str | None = None,
) -> None:
    """Write the SKU and keep its one current price in step: a new amount, currency (or a
    Stripe price id given by the seed) is a new price, the old one superseded; an `active`
    change follows onto the price."""
    money = Money(amount=new.unit_amount, currency=new.currency)
    current = await queries.current_prices(conn, tenant, sku=new.sku)
    price = current[0] if current else None
    if price is None or (
        (price.unit_amount, price.currency) != (money.amount, money.currency)
        or (given_price_id is not None and given_price_id != price.stripe_price_id)
    ):
        # The catalog row first: the price's key references it.
        await queries.upsert(
            conn, tenant, new.model_copy(update={"stripe_price_id": given_price_id})
        )
        if price is not None:
            await _supersede(conn, accounts, tenant, price)
        await _new_price(
            conn, accounts, tenant, product=new.product, money=money, active=new.active,
            sku=new.sku, stripe_price_id=given_price_id,
        )  # fmt: skip
        return
    # Checkout keeps using the current price's Stripe id (the worker set it).
    await queries.upsert(
        conn, tenant, new.model_copy(update={"stripe_price_id": price.stripe_price_id})
    )
    await _set_prices_active(conn, accounts, tenant, sku=new.sku, active=new.active)


async def _write_tier_prices(
    conn: asyncpg.Connection, accounts: Accounts, tenant: Tenant, tier: Tier, prices: TierPrices
) -> None:
    """Per interval: a new amount is a new price (the old one superseded), an interval
    left out is superseded, and the tier's `active` follows onto its current prices."""
    current = {p.interval: p for p in await queries.current_prices(conn, tenant, tier=tier.code)}
    for interval in INTERVALS:
        want, price = prices.of(interval), current.get(interval)
        if price is not None and (
            want is None or (price.unit_amount, price.currency) != (want.amount, want.currency)
        ):
            await _supersede(conn, accounts, tenant, price)
            price = None
        if want is not None and price is None:
            await _new_price(
                conn, accounts, tenant, product=tier.product, money=want, active=tier.active,
                tier=tier.code, interval=interval,
            )  # fmt: skip
    await _set_prices_active(conn, accounts, tenant, tier=tier.code, active=tier.active)


def _tier_prices(history: list[Price]) -> TierPrices | None:
    current = {
        p.interval: Money(amount=p.unit_amount, currency=p.currency)
        for p in history
        if p.current and p.interval
    }
    return TierPrices(**current) if current else None


# ---------------------------------------------------------------- writing: the verbs


async def create_product(
    pool: asyncpg.Pool, accounts: Accounts, tenant: Tenant, body: ProductIn
) -> ProductOut:
    product = Product(**body.model_dump(), stripe_product_id=None)
    async with pool.acquire() as conn, conn.transaction():
        if not await queries.insert_product(conn, tenant, product):
            raise DuplicateCode(f"There is a product {body.code!r} already.")
        await sync.changed(
            conn, tenant, "product", body.code, await accounts.initial_state(conn, tenant)
        )
        return (await products_out(conn, tenant, [product]))[0]


async def update_product(
    pool: asyncpg.Pool, accounts: Accounts, tenant: Tenant, code: str, patch: ProductPatch
) -> ProductOut:
    async with pool.acquire() as conn, conn.transaction():
        old = await _product(conn, tenant, code, for_update=True)
        new = old.model_copy(update=patch.model_dump(exclude_none=True))
        await _write_product(conn, accounts, tenant, old, new)
        return (await products_out(conn, tenant, [new]))[0]


async def create_one_time_price(
    pool: asyncpg.Pool, accounts: Accounts, tenant: Tenant, body: OneTimePriceIn
) -> OneTimePriceOut:
    item = CatalogItem(**body.model_dump())
    async with pool.acquire() as conn, conn.transaction():
        await _sellable_under(conn, tenant, body.product, body.active)
        if not await queries.insert(conn, tenant, item):
            raise DuplicateCode(f"There is a one-time price {body.sku!r} already.")
        await _write_sku(conn, accounts, tenant, item)
        return (await one_time_prices_out(conn, tenant, [await _sku(conn, tenant, body.sku)]))[0]


async def update_one_time_price(
    pool: asyncpg.Pool, accounts: Accounts, tenant: Tenant, sku: str, patch: OneTimePricePatch
) -> OneTimePriceOut:
    async with pool.acquire() as conn, conn.transaction():
        old = await _sku(conn, tenant, sku, for_update=True)
        new = old.model_copy(update=patch.model_dump(exclude_none=True))
        if new != old:
            await _sellable_under(conn, tenant, new.product, new.active and not old.active)
            await _write_sku(conn, accounts, tenant, new)
        return (await one_time_prices_out(conn, tenant, [await _sku(conn, tenant, sku)]))[0]


async def create_tier(
    pool: asyncpg.Pool, accounts: Accounts, tenant: Tenant, body: TierIn
) -> TierOut:
    tier = Tier(**body.model_dump(exclude={"prices"}))
    async with pool.acquire() as conn, conn.transaction():
        await _sellable_under(conn, tenant, body.product, body.active)
        if not await queries.insert_tier(conn, tenant, tier):
            raise DuplicateCode(f"There is a tier {body.code!r} already.")
        await _write_tier_prices(conn, accounts, tenant, tier, body.prices)
        return (await tiers_out(conn, tenant, [tier]))[0]


async def update_tier(
    pool: asyncpg.Pool, accounts: Accounts, tenant: Tenant, code: str, patch: TierPatch
) -> TierOut:
    async with pool.acquire() as conn, conn.transaction():
        old = await _tier(conn, tenant, code, for_update=True)
        new = old.model_copy(update=patch.model_dump(exclude_none=True, exclude={"prices"}))
        if patch.grants is not None:
            new = new.model_copy(update={"grants": patch.grants})
        await _change_tier(conn, accounts, tenant, old, new, patch.prices)
        return (await tiers_out(conn, tenant, [new]))[0]


async def _change_tier(
    conn: asyncpg.Connection,
    accounts: Accounts,
    tenant: Tenant,
    old: Tier,
    new: Tier,
    prices: TierPrices | None,
) -> None:
    if new.active and not old.active:
        await _sellable_under(conn, tenant, new.product, True)
    if new != old:
        await queries.update_tier(conn, tenant, new)
    if prices is None:
        prices = _tier_prices(await queries.history(conn, tenant, tiers=[new.code]))
    if prices is not None:
        await _write_tier_prices(conn, accounts, tenant, new, prices)


# ---------------------------------------------------------------- the seed file


def read_catalog_file(path: Path) -> list[SeedProduct]:
    return CatalogFile.model_validate(json.loads(path.read_text(encoding="utf-8"))).products


async def seed_catalog(
    pool: asyncpg.Pool, tenant: Tenant, path: Path, accounts: Accounts = OFFLINE
) -> int:
    """Bring the tenant's catalog in step with the seed file, for the rows the file names
    (the file is their source of truth; every other row, such as one made through the
    seller API, is left alone). Idempotent: a row already as the file says is not written,
    so seeding again queues nothing for Stripe. The number of products in the file."""
    products = read_catalog_file(path)
    async with pool.acquire() as conn, conn.transaction():
        # Replicas starting together seed one after the other: the second finds the rows
        # the first made (and writes nothing) instead of racing it to insert them.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('billing.catalog_seed'))")
        for product in products:
            await _seed_product(conn, accounts, tenant, product)
    return len(products)


async def _seed_product(
    conn: asyncpg.Connection, accounts: Accounts, tenant: Tenant, seed: SeedProduct
) -> None:
    wanted = Product(
        code=seed.code, name=seed.name, description=seed.description, active=seed.active,
        stripe_product_id=None,
    )  # fmt: skip
    old = await queries.find_product(conn, tenant, seed.code, for_update=True)
    if old is None:
        await queries.insert_product(conn, tenant, wanted)
        await sync.changed(
            conn, tenant, "product", seed.code, await accounts.initial_state(conn, tenant)
        )
    else:
        new = wanted.model_copy(update={"stripe_product_id": old.stripe_product_id})
        await _write_product(conn, accounts, tenant, old, new)
    for item in seed.one_time_prices:
        await _seed_sku(conn, accounts, tenant, seed.code, item)
    for tier in seed.tiers:
        await _seed_tier(conn, accounts, tenant, seed.code, tier)


async def _seed_sku(
    conn: asyncpg.Connection,
    accounts: Accounts,
    tenant: Tenant,
    product: str,
    seed: OneTimePriceSeed,
) -> None:
    new = CatalogItem(**seed.model_dump(), product=product)
    old = await queries.find(conn, tenant, seed.sku, for_update=True)
    given = seed.stripe_price_id
    if old is not None:
        unchanged = new.model_copy(update={"stripe_price_id": old.stripe_price_id}) == old
        if unchanged and (given is None or given == old.stripe_price_id):
            return
    await _write_sku(conn, accounts, tenant, new, given)


async def _seed_tier(
    conn: asyncpg.Connection, accounts: Accounts, tenant: Tenant, product: str, seed: TierSeed
) -> None:
    new = Tier(**seed.model_dump(exclude={"prices"}), product=product)
    old = await queries.find_tier(conn, tenant, seed.code, for_update=True)
    if old is None:
        await queries.insert_tier(conn, tenant, new)
        await _write_tier_prices(conn, accounts, tenant, new, seed.prices)
        return
    if old.product != product:
        raise DuplicateCode(f"Tier {seed.code!r} belongs to product {old.product!r}.")
    await _change_tier(conn, accounts, tenant, old, new, seed.prices)
