"""A catalog per seller: products, one-time prices (SKUs) and tiers through the seller API,
with their price history; the migration that turns today's `catalog` rows into products
and prices without losing one; the seed file, idempotent and leaving the seller's other
rows alone; and the sync to Stripe through the official library against the Stripe
stand-in (devtools), with its states: local, awaiting_connect, pending, synced, failed."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import nats
import pytest

from tessera.billing.app import MIGRATIONS
from tessera.billing.catalog import queries as catalog
from tessera.billing.catalog.service import seed_catalog
from tessera.devstack.seller_keys import publish_seller_keys
from tessera.devstack.stripe_standin.testing import API_KEY, StandInServer
from tessera.shared.api_keys.format import Kind
from tessera.shared.db.migrate import apply_migrations
from tessera.shared.sellers import HOME_LIVE, HOME_SELLER_ID, Tenant

pytestmark = pytest.mark.integration

THIS = "billing_0007_products_tiers"
CATALOG = Path(__file__).resolve().parents[3] / "deploy" / "catalog.json"
SELLER_A = UUID("00000000-0000-4000-8000-0000000000a1")
SELLER_B = UUID("00000000-0000-4000-8000-0000000000b2")
A_LIVE, A_TEST, B_LIVE = (
    Tenant(SELLER_A, "live"),
    Tenant(SELLER_A, "test"),
    Tenant(SELLER_B, "live"),
)
TENANTS = (A_LIVE, A_TEST, B_LIVE, HOME_LIVE)

PRO = {
    "code": "pro", "product": "tool", "name": "Pro", "trial_days": 14,
    "prices": {"month": {"amount": 900, "currency": "usd"},
               "year": {"amount": 9000, "currency": "usd"}},
    "grants": {"features": ["export", "alerts"], "quotas": {"api_calls": {"limit": 500},
               "minutes": {"limit": None}}, "rate_per_minute": 60, "seats": 3},
}  # fmt: skip
KINDS: tuple[Kind, ...] = ("secret", "publishable")
LIFETIME = {
    "sku": "tool-lifetime", "product": "tool", "name": "Tool, for life", "unit_amount": 4900,
    "currency": "usd", "policy": "tool-lifetime",
}  # fmt: skip


@asynccontextmanager
async def keys_for(billing: Any) -> AsyncIterator[dict[tuple[Tenant, str], dict[str, str]]]:
    """Headers with a secret and a publishable key per tenant, published on APIKEYS as
    auth would, once billing's own key book holds them."""
    nc = await nats.connect(billing.nats_url)
    context = billing.app.state.context
    try:
        texts = await publish_seller_keys(
            nc.jetstream(), billing.namespace, context.key_book, context.sellers,
            [(tenant, kind) for tenant in TENANTS for kind in KINDS],
        )  # fmt: skip
        yield {k: {"authorization": f"Bearer {t}"} for k, t in texts.items()}
    finally:
        await nc.close()


async def catalog_rows(billing: Any) -> list[str]:
    rows = await billing.fetch(
        "SELECT x::text FROM (SELECT p::text AS x FROM products p UNION ALL"
        " SELECT c::text FROM catalog c UNION ALL SELECT t::text FROM tiers t UNION ALL"
        " SELECT pr::text FROM prices pr UNION ALL SELECT s::text FROM stripe_sync s) u ORDER BY 1"
    )
    return [r[0] for r in rows]


def problem(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    return body


# ---------------------------------------------------------------- the migration


async def test_the_migration_turns_every_catalog_row_into_a_product_and_a_price(
    database_url: str, tmp_path: Path
) -> None:
    before = tmp_path / "before"
    before.mkdir()
    for path in MIGRATIONS.glob("*.sql"):
        if path.stem < THIS:
            shutil.copy(path, before / path.name)
    await asyncio.to_thread(apply_migrations, database_url, before)
    conn = await asyncpg.connect(database_url)
    try:
        for tenant in (HOME_LIVE, B_LIVE):
            for sku, product, amount, active in (
                ("tool-a", "tool", 900, True),
                ("tool-b", "tool", 1900, False),
                ("other", "other", 100, False),
            ):
                await conn.execute(
                    "INSERT INTO catalog (seller_id, mode, sku, name, unit_amount, currency,"
                    " product, policy, active, stripe_price_id)"
                    " VALUES ($1, $2, $3, $3 || ' name', $4, 'usd', $5, 'p', $6, $7)",
                    tenant.seller_id, tenant.mode, sku, amount, product, active,
                    "price_by_hand" if sku == "tool-a" and tenant == B_LIVE else None,
                )  # fmt: skip
        catalog_before = await conn.fetch("SELECT * FROM catalog ORDER BY seller_id, sku")

        applied = await asyncio.to_thread(apply_migrations, database_url, MIGRATIONS)
        assert applied[0] == THIS  # and the later ones, which leave these rows alone

        assert await conn.fetch("SELECT * FROM catalog ORDER BY seller_id, sku") == catalog_before
        products = await conn.fetch(
            "SELECT seller_id, code, name, active FROM products ORDER BY seller_id, code"
        )
        assert [tuple(r) for r in products] == [
            (HOME_SELLER_ID, "other", "other name", False),
            (HOME_SELLER_ID, "tool", "tool-a name", True),
            (SELLER_B, "other", "other name", False),
            (SELLER_B, "tool", "tool-a name", True),
        ]
        prices = await conn.fetch(
            "SELECT seller_id, sku, product, unit_amount, active, current, stripe_price_id"
            " FROM prices ORDER BY seller_id, sku"
        )
        assert [tuple(r) for r in prices] == [
            (HOME_SELLER_ID, "other", "other", 100, False, True, None),
            (HOME_SELLER_ID, "tool-a", "tool", 900, True, True, None),
            (HOME_SELLER_ID, "tool-b", "tool", 1900, False, True, None),
            (SELLER_B, "other", "other", 100, False, True, None),
            (SELLER_B, "tool-a", "tool", 900, True, True, "price_by_hand"),
            (SELLER_B, "tool-b", "tool", 1900, False, True, None),
        ]
        states = await conn.fetch(
            "SELECT object_type, state, count(*) FROM stripe_sync GROUP BY 1, 2 ORDER BY 1, 2"
        )
        assert [tuple(r) for r in states] == [
            ("price", "local", 5), ("price", "synced", 1), ("product", "local", 4)
        ]  # fmt: skip
        # The new code reads the old rows, and the product key holds.
        item = await catalog.find(conn, B_LIVE, "tool-a")
        assert item is not None and item.stripe_price_id == "price_by_hand"
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute("UPDATE catalog SET product = 'nothing' WHERE sku = 'tool-a'")
    finally:
        await conn.close()


# ---------------------------------------------------------------- the seller API


async def test_a_seller_manages_products_skus_and_tiers_and_sees_only_its_own(
    billing: Any,
) -> None:
    http = billing.client
    async with keys_for(billing) as keys:
        a, a_test, b = keys[(A_LIVE, "secret")], keys[(A_TEST, "secret")], keys[(B_LIVE, "secret")]
        made = await http.post("/v1/products", json={"code": "tool", "name": "Tool"}, headers=a)
        assert made.status_code == 201, made.text
        assert made.json()["sync"]["state"] == "local"  # no Stripe key: offline
        sku = await http.post("/v1/one-time-prices", json=LIFETIME, headers=a)
        assert sku.status_code == 201, sku.text
        tier = await http.post("/v1/tiers", json=PRO, headers=a)
        assert tier.status_code == 201, tier.text
        assert tier.json()["grants"] == PRO["grants"]
        assert sorted((p["interval"], p["unit_amount"]) for p in tier.json()["prices"]) == [
            ("month", 900), ("year", 9000)
        ]  # fmt: skip

        # The same codes are free for another seller and for the other mode.
        for other in (a_test, b):
            again = await http.post(
                "/v1/products", json={"code": "tool", "name": "T"}, headers=other
            )
            assert again.status_code == 201, again.text
        # …and taken for this one.
        assert problem(await http.post("/v1/products", json={"code": "tool", "name": "T"},
                                       headers=a), 409)["type"].endswith("duplicate-code")  # fmt: skip
        problem(await http.post("/v1/one-time-prices", json=LIFETIME, headers=a), 409)
        problem(await http.post("/v1/tiers", json=PRO, headers=a), 409)

        # Another tenant's objects are unknown: 404, nothing changed.
        before = await catalog_rows(billing)
        for headers in (a_test, b):
            problem(await http.get("/v1/tiers/pro", headers=headers), 404)
            problem(await http.get("/v1/one-time-prices/tool-lifetime", headers=headers), 404)
            problem(await http.patch("/v1/tiers/pro", json={"name": "X"}, headers=headers), 404)
            problem(await http.post("/v1/tiers/pro/archive", headers=headers), 404)
        assert (await http.get("/v1/tiers", headers=b)).json() == []
        assert await catalog_rows(billing) == before

        # Bad input: 422, and a write that fails writes nothing.
        for body in (
            {**PRO, "code": "x-1", "prices": {}},
            {**PRO, "code": "x-2", "grants": {"quotas": {"api_calls": {"limit": -1}}}},
            {**PRO, "code": "Bad Code"},
            {**PRO, "code": "x-3", "prices": {"month": {"amount": 10**9, "currency": "usd"}}},
            {**PRO, "code": "x-4", "grants": {"features": ["a", "a"]}},
            {**PRO, "code": "x-5", "extra": 1},
        ):
            problem(await http.post("/v1/tiers", json=body, headers=a), 422)
        problem(await http.post("/v1/tiers", json={**PRO, "code": "x-6", "product": "none"},
                                headers=a), 404)  # fmt: skip
        problem(await http.get("/v1/tiers/not a code!", headers=a), 422)
        assert await catalog_rows(billing) == before

        # Two creates of one code at once: one is made, the other is a 409, never a 500.
        racing = await asyncio.gather(*(
            http.post("/v1/one-time-prices", json={**LIFETIME, "sku": "raced"}, headers=a)
            for _ in range(4)
        ))  # fmt: skip
        assert sorted(r.status_code for r in racing) == [201, 409, 409, 409]

        # Keys: a publishable key may not manage, no key is 401.
        problem(await http.get("/v1/tiers", headers=keys[(A_LIVE, "publishable")]), 403)
        problem(await http.get("/v1/tiers"), 401)


async def test_a_new_amount_is_a_new_price_and_the_old_one_is_kept(billing: Any) -> None:
    http = billing.client
    async with keys_for(billing) as keys:
        a = keys[(A_LIVE, "secret")]
        await http.post("/v1/products", json={"code": "tool", "name": "Tool"}, headers=a)
        await http.post("/v1/tiers", json=PRO, headers=a)
        await http.post("/v1/one-time-prices", json=LIFETIME, headers=a)

        # The monthly price changes, the yearly one goes: the old ones are superseded.
        changed = await http.patch(
            "/v1/tiers/pro",
            json={"prices": {"month": {"amount": 1200, "currency": "usd"}}, "trial_days": 7},
            headers=a,
        )
        assert changed.status_code == 200, changed.text
        history = [(p["interval"], p["unit_amount"], p["current"], p["active"])
                   for p in changed.json()["prices"]]  # fmt: skip
        assert sorted(history) == [
            ("month", 900, False, False), ("month", 1200, True, True), ("year", 9000, False, False)
        ]  # fmt: skip
        # The same prices again change nothing.
        same = await http.patch(
            "/v1/tiers/pro", json={"prices": {"month": {"amount": 1200, "currency": "usd"}}},
            headers=a,
        )  # fmt: skip
        assert same.json()["prices"] == changed.json()["prices"]

        sku = await http.patch("/v1/one-time-prices/tool-lifetime", json={"unit_amount": 5900},
                               headers=a)  # fmt: skip
        assert sku.status_code == 200, sku.text
        assert [(p["unit_amount"], p["current"]) for p in sku.json()["prices"]] == [
            (5900, True), (4900, False)
        ]  # fmt: skip
        assert sku.json()["unit_amount"] == 5900

        # Archiving the product archives what it sells; nothing of it can be made active.
        archived = await http.post("/v1/products/tool/archive", headers=a)
        assert archived.json()["active"] is False
        tier = (await http.get("/v1/tiers/pro", headers=a)).json()
        assert tier["active"] is False and not any(p["active"] for p in tier["prices"])
        assert (await http.get("/v1/one-time-prices/tool-lifetime", headers=a)).json()[
            "active"
        ] is False
        refused = await http.patch("/v1/tiers/pro", json={"active": True}, headers=a)
        assert problem(refused, 409)["type"].endswith("product-archived")


async def test_a_pricing_page_reads_the_sellers_active_tiers_with_a_publishable_key(
    billing: Any,
) -> None:
    http = billing.client
    async with keys_for(billing) as keys:
        a = keys[(A_LIVE, "secret")]
        await http.post("/v1/products", json={"code": "tool", "name": "Tool"}, headers=a)
        await http.post("/v1/tiers", json=PRO, headers=a)
        await http.post("/v1/tiers", json={**PRO, "code": "old"}, headers=a)
        await http.post("/v1/tiers/old/archive", headers=a)

        page = await http.get("/v1/pricing/tiers", headers=keys[(A_LIVE, "publishable")])
        assert page.status_code == 200, page.text
        assert page.json() == [{
            "code": "pro", "product": "tool", "name": "Pro", "description": "", "trial_days": 14,
            "prices": PRO["prices"], "grants": PRO["grants"],
        }]  # fmt: skip
        for other in (A_TEST, B_LIVE):
            assert (
                await http.get("/v1/pricing/tiers", headers=keys[(other, "publishable")])
            ).json() == []
        # The home seller's seed: the platform plan, $15 a month.
        home = await http.get("/v1/pricing/tiers", headers=keys[(HOME_LIVE, "publishable")])
        assert [(t["code"], t["prices"]) for t in home.json()] == [
            ("platform", {"month": {"amount": 1500, "currency": "usd"}, "year": None})
        ]
        problem(await http.get("/v1/pricing/tiers"), 401)


# ---------------------------------------------------------------- the seed


async def test_seeding_again_changes_nothing_and_leaves_the_sellers_own_rows(billing: Any) -> None:
    http = billing.client
    async with keys_for(billing) as keys:
        home = keys[(HOME_LIVE, "secret")]
        made = await http.post("/v1/tiers", json={**PRO, "product": "chartgpt"}, headers=home)
        assert made.status_code == 201, made.text
        await http.patch("/v1/products/chartgpt", json={"name": "Renamed"}, headers=home)
        before = await catalog_rows(billing)

        await seed_catalog(billing.pool, HOME_LIVE, CATALOG)  # the file's rows, as at start
        after = await catalog_rows(billing)
        assert (await http.get("/v1/tiers/pro", headers=home)).json() == made.json()
        assert (await http.get("/v1/products/chartgpt", headers=home)).json()["name"] == "ChartGPT"

        # Again, and by two replicas starting at once: nothing moves.
        await asyncio.gather(*(seed_catalog(billing.pool, HOME_LIVE, CATALOG) for _ in range(3)))
        assert await catalog_rows(billing) == after
        assert before != after  # the file's product name came back, nothing else moved
        item = (await http.get("/v1/one-time-prices/chartgpt-lifetime", headers=home)).json()
        assert (item["unit_amount"], len(item["prices"])) == (14900, 1)


# ---------------------------------------------------------------- the sync to Stripe


async def synced(billing: Any, *, timeout: float = 15.0, waiting: str = "pending") -> None:
    """Until nothing is pending (a failed row is settled too); `waiting="local"`: nor
    local (the worker queues those when it starts)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while await billing.value(
        "SELECT count(*) FROM stripe_sync WHERE state IN ('pending', $1)", waiting
    ):
        assert asyncio.get_running_loop().time() < deadline, await billing.fetch(
            "SELECT * FROM stripe_sync WHERE state = 'pending'"
        )
        await asyncio.sleep(0.05)


async def test_the_home_sellers_catalog_is_synced_to_stripe_and_kept_in_step(
    database_url: str, infra_settings: Any, billing_starter: Any, standin: StandInServer
) -> None:
    billing = await billing_starter(
        database_url, infra_settings, stripe_secret_key=API_KEY, stripe_api_base=standin.url,
        stripe_sync_retry_seconds=0.2,
    )  # fmt: skip
    stripe = standin.client()
    try:
        await synced(billing)
        products = {
            p.metadata["tessera_product"]: p for p in (await stripe.v1.products.list_async()).data
        }
        assert {c: (p.name, p.active) for c, p in products.items()} == {
            "chartgpt": ("ChartGPT", True), "platform": ("Tessera platform", True)
        }  # fmt: skip
        prices = (await stripe.v1.prices.list_async()).data
        platform = next(p for p in prices if p.metadata.to_dict().get("tessera_tier") == "platform")
        assert platform.recurring is not None
        assert (platform.unit_amount, platform.currency, platform.recurring.interval) == (
            1500,
            "usd",
            "month",
        )
        assert platform.product == products["platform"].id
        lifetime = next(
            p for p in prices if p.metadata.to_dict().get("tessera_sku") == "chartgpt-lifetime"
        )
        assert lifetime.recurring is None and lifetime.unit_amount == 14900
        # Checkout now sells the SKU at its Stripe price.
        item = await billing.fetch(
            "SELECT stripe_price_id FROM catalog WHERE sku = 'chartgpt-lifetime'"
        )
        assert item[0][0] == lifetime.id

        async with keys_for(billing) as keys:
            home, other = keys[(HOME_LIVE, "secret")], keys[(B_LIVE, "secret")]
            # A new amount: a new Stripe price, the old one archived, both kept.
            await billing.client.patch(
                "/v1/tiers/platform", json={"prices": {"month": {"amount": 1900, "currency": "usd"}}},
                headers=home,
            )  # fmt: skip
            await billing.client.patch(
                "/v1/products/platform", json={"description": ""}, headers=home
            )
            await synced(billing)
            tier = (await billing.client.get("/v1/tiers/platform", headers=home)).json()
            [new, old] = tier["prices"]
            assert (new["unit_amount"], old["unit_amount"], old["stripe_price_id"]) == (
                1900,
                1500,
                platform.id,
            )
            assert {new["sync"]["state"], old["sync"]["state"]} == {"synced"}
            assert (await stripe.v1.prices.retrieve_async(old["stripe_price_id"])).active is False
            fresh = await stripe.v1.prices.retrieve_async(new["stripe_price_id"])
            assert (fresh.active, fresh.unit_amount) == (True, 1900)
            assert len((await stripe.v1.prices.list_async()).data) == 3  # nothing twice

            # A worker that died after Stripe answered, before recording it: the call is
            # made again with the same idempotency key, and Stripe answers the same price.
            await billing.fetch(
                "UPDATE prices SET stripe_price_id = NULL WHERE stripe_price_id = $1", fresh.id
            )
            await billing.fetch(
                "UPDATE stripe_sync SET state = 'pending', synced_version = NULL"
                " WHERE object_key = $1",
                new["id"],
            )
            await synced(billing)
            again = (await billing.client.get("/v1/tiers/platform", headers=home)).json()
            assert again["prices"][0]["stripe_price_id"] == fresh.id
            assert len((await stripe.v1.prices.list_async()).data) == 3

            # Another seller's catalog waits for Connect; nothing of it reaches the platform.
            await billing.client.post(
                "/v1/products", json={"code": "tool", "name": "T"}, headers=other
            )
            await billing.client.post("/v1/tiers", json=PRO, headers=other)
            await synced(billing)
            theirs = (await billing.client.get("/v1/tiers/pro", headers=other)).json()
            assert {p["sync"]["state"] for p in theirs["prices"]} == {"awaiting_connect"}
            assert len((await stripe.v1.products.list_async()).data) == 2

            # Stripe refuses: failed, with the error, retried with backoff until it works.
            refusing = dataclasses.replace(standin.standin.settings, api_key="sk_test_another")
            accepting, standin.standin.settings = standin.standin.settings, refusing
            await billing.client.patch(
                "/v1/products/chartgpt", json={"name": "ChartGPT 2"}, headers=home
            )
            for _ in range(300):
                state = (await billing.client.get("/v1/products/chartgpt", headers=home)).json()[
                    "sync"
                ]
                if state["attempts"] >= 2:
                    break
                await asyncio.sleep(0.05)
            assert state["state"] == "failed" and "Invalid API Key" in state["last_error"]
            assert state["next_attempt_at"] is not None
            standin.standin.settings = accepting
            for _ in range(300):
                state = (await billing.client.get("/v1/products/chartgpt", headers=home)).json()[
                    "sync"
                ]
                if state["state"] == "synced":
                    break
                await asyncio.sleep(0.05)
            assert (state["state"], state["attempts"], state["last_error"]) == ("synced", 0, None)
            assert (
                await stripe.v1.products.retrieve_async(products["chartgpt"].id)
            ).name == "ChartGPT 2"
    finally:
        await billing.stop()


async def test_what_was_written_without_a_key_is_synced_once_a_key_is_configured(
    database_url: str, infra_settings: Any, billing_starter: Any, standin: StandInServer
) -> None:
    offline = await billing_starter(database_url, infra_settings)
    try:
        async with keys_for(offline) as keys:
            made = await offline.client.post(
                "/v1/products", json={"code": "tool", "name": "T"}, headers=keys[(B_LIVE, "secret")]
            )
            assert made.json()["sync"]["state"] == "local"
        states = await offline.fetch("SELECT DISTINCT state FROM stripe_sync")
        assert [r[0] for r in states] == ["local"]
    finally:
        await offline.stop()

    billing = await billing_starter(
        database_url, infra_settings, stripe_secret_key=API_KEY, stripe_api_base=standin.url
    )
    try:
        await synced(billing, waiting="local")
        rows = await billing.fetch(
            "SELECT seller_id, state, count(*) FROM stripe_sync GROUP BY 1, 2 ORDER BY 1, 2"
        )
        assert [tuple(r) for r in rows] == [
            (HOME_SELLER_ID, "synced", 4), (SELLER_B, "awaiting_connect", 1)
        ]  # fmt: skip
        names = sorted(p.name for p in (await standin.client().v1.products.list_async()).data)
        assert names == ["ChartGPT", "Tessera platform"]
    finally:
        await billing.stop()
