"""Catalog verbs."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg

from tessera.billing.catalog import queries
from tessera.billing.catalog.schemas import CatalogFile, CatalogItem
from tessera.shared.http.problems import NotFound
from tessera.shared.sellers import Tenant


class UnknownSku(NotFound):
    slug = "unknown-sku"
    title = "Unknown product"


def read_catalog_file(path: Path) -> list[CatalogItem]:
    return CatalogFile.model_validate(json.loads(path.read_text(encoding="utf-8"))).products


async def seed_catalog(pool: asyncpg.Pool, tenant: Tenant, path: Path) -> int:
    """Upsert every product of the seed file into the tenant's catalog (the file is the
    source of truth)."""
    items = read_catalog_file(path)
    async with pool.acquire() as conn, conn.transaction():
        for item in items:
            await queries.upsert(conn, tenant, item)
    return len(items)


async def get_buyable(conn: asyncpg.Connection, tenant: Tenant, sku: str) -> CatalogItem:
    """The tenant's active catalog item for `sku`; raises `UnknownSku`."""
    item = await queries.find(conn, tenant, sku)
    if item is None or not item.active:
        raise UnknownSku(f"There is no product {sku!r} for sale.")
    return item
