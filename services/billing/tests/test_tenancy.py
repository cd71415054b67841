"""Sellers and modes in billing's data: the migration gives today's rows to the home seller,
live, without losing one; two sellers (and the two modes of one) with the same email and
SKU each keep their own rows; and one seller's Stripe deliveries and events, however often
and in whatever order they arrive, never touch another seller's rows."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import nats
import pytest

from tessera.billing.accounts import queries as accounts
from tessera.billing.accounts.service import find_or_create_account
from tessera.billing.admin import queries as reports
from tessera.billing.app import MIGRATIONS
from tessera.billing.catalog import queries as catalog
from tessera.billing.catalog.service import seed_catalog
from tessera.billing.orders import queries as orders
from tessera.billing.orders import service as order_service
from tessera.shared.db.migrate import apply_migrations
from tessera.shared.events.billing import PurchaseCompleted
from tessera.shared.events.topology import BILLING
from tessera.shared.sellers import HOME_LIVE, HOME_SELLER_ID, Tenant

pytestmark = pytest.mark.integration

THIS = "billing_0006_tenancy"
CATALOG = Path(__file__).resolve().parents[3] / "deploy" / "catalog.json"
SKU = "chartgpt-lifetime"
SELLER_B = UUID("00000000-0000-4000-8000-0000000000b2")
A_LIVE, A_TEST, B_LIVE = HOME_LIVE, Tenant(HOME_SELLER_ID, "test"), Tenant(SELLER_B, "live")
SELLER_OWNED = (
    "accounts", "catalog", "orders", "order_adjustments", "disputes",
    "test_checkout_sessions", "audit_log", "stripe_events",
)  # fmt: skip


def migrations_before_this(tmp_path: Path) -> Path:
    folder = tmp_path / "before"
    folder.mkdir()
    for path in MIGRATIONS.glob("*.sql"):
        if path.stem < THIS:
            shutil.copy(path, folder / path.name)
    return folder


async def populate_old_schema(conn: asyncpg.Connection) -> None:
    """Rows in every seller-owned table, in the schema before sellers."""
    account, order = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        "INSERT INTO accounts (id, email, source) VALUES ($1, 'old@example.com', 'purchase')",
        account,
    )
    await conn.execute(
        "INSERT INTO catalog (sku, name, unit_amount, currency, product, policy)"
        " VALUES ($1, 'ChartGPT', 14900, 'usd', 'chartgpt', 'chartgpt-lifetime')",
        SKU,
    )
    await conn.execute(
        """
        INSERT INTO orders (id, account_id, email, sku, quantity, amount_total, currency,
                            product, policy, seats, source, status, checkout_session_id,
                            payment_intent_id, charge_id, paid_at, provisioned_at)
        VALUES ($1, $2, 'old@example.com', $3, 1, 14900, 'usd', 'chartgpt',
                'chartgpt-lifetime', 1, 'purchase', 'paid', 'cs_old', 'pi_old', 'ch_old',
                now(), now())
        """,
        order,
        account,
        SKU,
    )
    await conn.execute(
        "INSERT INTO order_adjustments (id, order_id, kind, stripe_event_id, amount)"
        " VALUES ($1, $2, 'refund', 'evt_old_refund', 100)",
        uuid.uuid4(),
        order,
    )
    await conn.execute(
        "INSERT INTO disputes (id, order_id, status) VALUES ('dp_old', $1, 'open')", order
    )
    await conn.execute(
        """
        INSERT INTO test_checkout_sessions (id, sku, quantity, amount_total, currency,
                                            payment_intent_id, charge_id, customer_id)
        VALUES ('cs_test_old', $1, 1, 14900, 'usd', 'pi_t', 'ch_t', 'cus_t')
        """,
        SKU,
    )
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject) VALUES ('operator:cli', 'x', $1)",
        str(account),
    )
    for n in (1, 2):
        await conn.execute(
            "INSERT INTO stripe_events (id, type, payload, status)"
            " VALUES ($1, 'charge.refunded', '{}'::jsonb, 'processed')",
            f"evt_old_{n}",
        )


async def test_the_migration_gives_every_existing_row_to_the_home_seller_live(
    database_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(apply_migrations, database_url, migrations_before_this(tmp_path))
    conn = await asyncpg.connect(database_url)
    try:
        await populate_old_schema(conn)
        before = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in SELLER_OWNED}  # noqa: S608
        assert all(before.values()), before

        applied = await asyncio.to_thread(apply_migrations, database_url, MIGRATIONS)
        # this one, and those written after it
        assert applied[0] == THIS and all(name > THIS for name in applied[1:])

        for table in SELLER_OWNED:
            owners = await conn.fetch(
                f"SELECT seller_id, mode, count(*) AS n FROM {table} GROUP BY 1, 2"  # noqa: S608
            )
            assert [(r["seller_id"], r["mode"], r["n"]) for r in owners] == [
                (HOME_SELLER_ID, "live", before[table])
            ], table
            defaults = await conn.fetchval(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = $1"
                " AND column_name IN ('seller_id', 'mode') AND is_nullable = 'NO'"
                " AND column_default IS NULL",
                table,
            )
            assert defaults == 2, table
        # The old rows still read through the new code, as the home seller's.
        [order] = await orders.search(conn, HOME_LIVE, "old@example.com", 10, 0)
        assert (order.payment_intent_id, order.tenant) == ("pi_old", HOME_LIVE)
        assert await orders.search(conn, A_TEST, None, 10, 0) == []
        # An INSERT that forgets the tenant fails loudly (no default was left behind).
        with pytest.raises(asyncpg.NotNullViolationError):
            await conn.execute(
                "INSERT INTO accounts (id, email, source) VALUES ($1, 'new@example.com', 'admin')",
                uuid.uuid4(),
            )
        with pytest.raises(asyncpg.NotNullViolationError):
            await conn.execute(
                "INSERT INTO stripe_events (id, type, payload, status)"
                " VALUES ('evt_new', 'x', '{}'::jsonb, 'received')"
            )
    finally:
        await conn.close()


async def test_two_sellers_and_two_modes_with_the_same_email_and_sku_keep_their_own_rows(
    billing: Any,
) -> None:
    pool = billing.pool
    await seed_catalog(pool, A_TEST, CATALOG)
    await seed_catalog(pool, B_LIVE, CATALOG)
    async with pool.acquire() as conn:
        b_item = await catalog.find(conn, B_LIVE, SKU)
        assert b_item is not None
        await catalog.upsert(conn, B_LIVE, b_item.model_copy(update={"unit_amount": 500}))
        prices = {t: (await catalog.find(conn, t, SKU)) for t in (A_LIVE, A_TEST, B_LIVE)}
        assert {t: i.unit_amount for t, i in prices.items() if i} == {
            A_LIVE: 14900, A_TEST: 14900, B_LIVE: 500
        }  # fmt: skip
        granted: dict[Tenant, tuple[UUID, UUID]] = {}
        for tenant in (A_LIVE, A_TEST, B_LIVE):
            async with conn.transaction():
                item = prices[tenant]
                assert item is not None
                granted[tenant] = await order_service.grant(
                    conn, tenant, "Same@Example.com", item, 1
                )
                again = await find_or_create_account(conn, tenant, "same@example.com", "admin")
                assert (again.id, again.created) == (granted[tenant][0], False)
        assert len({account for account, _ in granted.values()}) == 3

        for tenant, (account_id, order_id) in granted.items():
            found = await accounts.search(conn, tenant, "same@", 50, 0)
            assert [(r["id"], r["orders"]) for r in found] == [(account_id, 1)]
            assert [o.id for o in await orders.search(conn, tenant, None, 50, 0)] == [order_id]
            assert [o.id for o in await orders.list_for_account(conn, tenant, account_id)] == [
                order_id
            ]
            assert [r["id"] for r in await reports.all_orders(conn, tenant)] == [order_id]
            for other in {A_LIVE, A_TEST, B_LIVE} - {tenant}:
                assert await accounts.get(conn, other, account_id) is None
                assert await orders.get(conn, other, order_id) is None
                assert await orders.list_for_account(conn, other, account_id) == []
    # Each account's and order's events name its tenant.
    rows = await billing.fetch(
        "SELECT subject, payload->>'seller_id' AS s, payload->>'mode' AS m FROM outbox"
        " WHERE subject IN ('billing.account.created.v1', 'billing.order.paid.v1')"
    )
    expected = sorted((t.seller_id, t.mode) for t in (A_LIVE, A_TEST, B_LIVE))
    for subject in ("billing.account.created.v1", "billing.order.paid.v1"):
        assert sorted((UUID(r["s"]), r["m"]) for r in rows if r["subject"] == subject) == expected


async def publish_again(billing: Any, event: dict[str, Any]) -> None:
    """Billing's own event once more, past JetStream's de-duplication (a new message id)."""
    nc = await nats.connect(billing.nats_url)
    try:
        js = nc.jetstream()
        await js.publish(
            billing.namespace.subject(PurchaseCompleted.subject),
            json.dumps(event).encode(),
            stream=billing.namespace.stream(BILLING),
            headers={"Nats-Msg-Id": f"again-{uuid.uuid4()}"},
        )
    finally:
        await nc.close()


async def test_another_sellers_stripe_events_twice_and_out_of_order_stay_in_that_seller(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    """Seller A (home, live) bought with a payment intent. Seller B's Stripe account (the
    ingress given B's tenant, as Connect will) then sends a refund for a payment with the
    same ids before its purchase, and every delivery twice; the provisioner gets B's
    purchase twice. B ends with its own account, paid-then-refunded order and events; A's
    rows are exactly as they were."""
    purchase_a, ids = stripe_events.purchase("same@example.com")
    assert await billing.outcome(purchase_a) == "processed"

    async def a_paid() -> Any:
        return await billing.published("billing.order.paid.v1")

    [paid_a] = await eventually(a_paid, timeout=15)
    a_before = await billing.fetch("SELECT * FROM orders WHERE seller_id = $1", HOME_SELLER_ID)
    a_accounts = await billing.fetch("SELECT * FROM accounts WHERE seller_id = $1", HOME_SELLER_ID)

    await seed_catalog(billing.pool, B_LIVE, CATALOG)
    billing.app.state.context.stripe_tenant = B_LIVE
    refund_b = stripe_events.refund(ids, stripe_events.price)
    purchase_b = {**purchase_a, "id": f"evt_b_{uuid.uuid4().hex}"}
    assert await billing.outcome(refund_b) == "held"
    assert (await billing.deliver(refund_b)).json()["status"] == "duplicate"
    assert await billing.outcome(purchase_b) == "processed"
    assert (await billing.deliver(purchase_b)).json()["status"] == "duplicate"
    assert await billing.settled(refund_b["id"]) == "processed"

    async def b_refunded() -> Any:
        return await billing.published("billing.order.refunded.v1")

    [refunded_b] = await eventually(b_refunded, timeout=15)
    [completed_b] = [
        e
        for e in await billing.published("billing.purchase.completed.v1")
        if e["seller_id"] == str(SELLER_B)
    ]
    await publish_again(billing, completed_b)

    async def applied_twice() -> bool:
        n = await billing.value("SELECT count(*) FROM inbox WHERE consumer = 'billing.provisioner'")
        return bool(n == 2)  # A's purchase and B's, each once

    await eventually(applied_twice, timeout=15)
    await asyncio.sleep(0.5)  # a second effect of the repeat would land by now
    paid = await billing.published("billing.order.paid.v1")
    assert sorted(e["seller_id"] for e in paid) == sorted([str(HOME_SELLER_ID), str(SELLER_B)])
    [paid_b] = [e for e in paid if e["seller_id"] == str(SELLER_B)]
    assert paid_b["account_id"] != paid_a["account_id"]
    assert (refunded_b["seller_id"], refunded_b["account_id"]) == (
        str(SELLER_B),
        paid_b["account_id"],
    )
    b_rows = await billing.fetch(
        "SELECT status, payment_intent_id, amount_refunded FROM orders WHERE seller_id = $1",
        SELLER_B,
    )
    assert [tuple(r) for r in b_rows] == [("refunded", ids["payment_intent"], stripe_events.price)]
    b_events = await billing.fetch(
        "SELECT id FROM stripe_events WHERE seller_id = $1 ORDER BY id", SELLER_B
    )
    assert sorted(r["id"] for r in b_events) == sorted([refund_b["id"], purchase_b["id"]])
    # Seller A: the same order, the same account, nothing refunded, no new account.
    a_after = await billing.fetch("SELECT * FROM orders WHERE seller_id = $1", HOME_SELLER_ID)
    assert [dict(r) for r in a_after] == [dict(r) for r in a_before]
    assert a_after[0]["status"] == "paid" and a_after[0]["amount_refunded"] == 0
    assert [dict(r) for r in await billing.fetch(
        "SELECT * FROM accounts WHERE seller_id = $1", HOME_SELLER_ID
    )] == [dict(r) for r in a_accounts]  # fmt: skip
