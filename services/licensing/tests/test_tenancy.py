"""Sellers and modes in licensing's data: the migration gives today's rows to the home
seller, live, without losing one; two sellers (and the two modes of one) with the same
product, policy, email, account or even order id each keep their own rows; and billing's
events for one seller never touch another's, however often and in whatever order they
arrive."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from licensing_factories import (  # type: ignore[import-not-found]
    Harness,
    a_refund,
    an_order_paid,
)

from tessera.licensing.app import MIGRATIONS
from tessera.licensing.licenses import queries as licenses
from tessera.licensing.licenses import service as license_service
from tessera.shared.db.migrate import apply_migrations
from tessera.shared.sellers import HOME_LIVE, HOME_SELLER_ID, Tenant

pytestmark = pytest.mark.integration

THIS = "licensing_0006_tenancy"
SELLER_B = UUID("00000000-0000-4000-8000-0000000000b2")
A_LIVE, A_TEST, B_LIVE = HOME_LIVE, Tenant(HOME_SELLER_ID, "test"), Tenant(SELLER_B, "live")
SELLER_OWNED = (
    "customers", "products", "policies", "orders", "order_disputes", "licenses",
    "activations", "audit_log",
)  # fmt: skip


def migrations_before_this(tmp_path: Path) -> Path:
    folder = tmp_path / "before"
    folder.mkdir()
    for path in MIGRATIONS.glob("*.sql"):
        if path.stem != THIS:
            shutil.copy(path, folder / path.name)
    return folder


async def populate_old_schema(conn: asyncpg.Connection) -> None:
    """A row (or more) in every seller-owned table, in the schema before sellers."""
    account, order, license_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        "INSERT INTO customers (account_id, email) VALUES ($1, 'old@example.com')", account
    )
    await conn.execute("INSERT INTO products (code, name) VALUES ('tool', 'Tool')")
    await conn.execute(
        "INSERT INTO policies (code, product_code, max_machines, lease_seconds, grace_seconds)"
        " VALUES ('tool-year', 'tool', 1, 3600, 60)"
    )
    await conn.execute(
        "INSERT INTO orders (order_id, account_id, paid_at) VALUES ($1, $2, now())", order, account
    )
    await conn.execute(
        "INSERT INTO order_disputes (order_id, dispute_id, opened_at) VALUES ($1, 'dp_old', now())",
        order,
    )
    for seat in (1, 2):
        await conn.execute(
            """
            INSERT INTO licenses (id, key_hash, key_sealed, key_hint, account_id, email,
                                  product_code, policy_code, order_id, seat, source, status)
            VALUES ($1, $2, '\\x00', 'ABCD', $3, 'old@example.com', 'chartgpt',
                    'chartgpt-lifetime', $4, $5, 'purchase', 'active')
            """,
            license_id if seat == 1 else uuid.uuid4(),
            hashlib.sha256(f"key{seat}".encode()).digest(),
            account,
            order,
            seat,
        )
    await conn.execute(
        "INSERT INTO activations (id, license_id, fingerprint_hash) VALUES ($1, $2, 'fp')",
        uuid.uuid4(),
        license_id,
    )
    await conn.execute(
        "INSERT INTO audit_log (actor_role, action, license_id) VALUES ('admin', 'x', $1)",
        license_id,
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
        assert applied == [THIS]

        for table in SELLER_OWNED:
            owners = await conn.fetch(
                f"SELECT seller_id, mode, count(*) AS n FROM {table} GROUP BY 1, 2"  # noqa: S608
            )
            assert [(r["seller_id"], r["mode"], r["n"]) for r in owners] == [
                (HOME_SELLER_ID, "live", before[table])
            ], table
        # Nothing else moved: the order still has its two licenses and its dispute.
        assert await conn.fetchval("SELECT count(*) FROM licenses WHERE seat IN (1, 2)") == 2
        # An INSERT that forgets the tenant fails loudly (no default was left behind).
        for table in SELLER_OWNED:
            defaults = await conn.fetchval(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = $1"
                " AND column_name IN ('seller_id', 'mode') AND is_nullable = 'NO'"
                " AND column_default IS NULL",
                table,
            )
            assert defaults == 2, table
        with pytest.raises(asyncpg.NotNullViolationError):
            await conn.execute(
                "INSERT INTO customers (account_id, email) VALUES ($1, 'new@example.com')",
                uuid.uuid4(),
            )
        with pytest.raises(asyncpg.NotNullViolationError):
            await conn.execute("INSERT INTO products (code, name) VALUES ('other', 'Other')")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO products (code, name, seller_id, mode) VALUES ('x', 'X', $1, 'prod')",
                SELLER_B,
            )
    finally:
        await conn.close()


async def add_catalog(h: Harness, tenant: Tenant, max_machines: int = 3) -> None:
    """The same product and policy codes as the home seller's ChartGPT, for `tenant`."""
    await h.fetch(
        "INSERT INTO products (code, name, entitlements, seller_id, mode)"
        " VALUES ('chartgpt', 'Another ChartGPT', ARRAY['other.core'], $1, $2)"
        " ON CONFLICT DO NOTHING",
        tenant.seller_id,
        tenant.mode,
    )
    await h.fetch(
        "INSERT INTO policies (code, product_code, max_machines, lease_seconds, grace_seconds,"
        " seller_id, mode) VALUES ('chartgpt-lifetime', 'chartgpt', $3, 60, 0, $1, $2)"
        " ON CONFLICT DO NOTHING",
        tenant.seller_id,
        tenant.mode,
        max_machines,
    )


async def settled(h: Harness, count: int) -> None:
    async def done() -> bool:
        n = await h.fetchval("SELECT count(*) FROM inbox WHERE consumer = 'licensing.orders'")
        return bool(n >= count)

    await h.until(done)


async def test_two_sellers_and_two_modes_with_the_same_codes_email_and_ids_keep_their_own_rows(
    harness: Harness,
) -> None:
    """The same order id, account id, email, product and policy for A live, A test and B
    live: three licenses, each under its tenant and its own catalog, each found only with
    its own tenant."""
    await add_catalog(harness, A_TEST, max_machines=1)
    await add_catalog(harness, B_LIVE, max_machines=5)
    common = an_order_paid(email="same@example.com")
    events = [
        common.model_copy(
            update={"seller_id": t.seller_id, "mode": t.mode, "event_id": uuid.uuid4()}
        )
        for t in (A_LIVE, A_TEST, B_LIVE)
    ]
    for event in events:
        await harness.publish(event)
    await settled(harness, 3)

    pool = harness.app.state.context.pool
    sealer = harness.app.state.context.sealer
    seen: dict[Tenant, Any] = {}
    async with pool.acquire() as conn:
        for tenant in (A_LIVE, A_TEST, B_LIVE):
            mine = await licenses.licenses_of_account(conn, tenant, common.account_id)
            [out] = await license_service.with_activations(conn, tenant, sealer, mine)
            found = await licenses.search(
                conn, tenant, key_hash=None, email="same@example.com", account_id=None, limit=10
            )
            assert [r["id"] for r in found] == [out.id]
            seen[tenant] = out
        # A seller that sold nothing sees nothing, whatever it asks for.
        nobody = Tenant(uuid.uuid4(), "live")
        assert await licenses.licenses_of_account(conn, nobody, common.account_id) == []
        assert await licenses.lock_license(conn, B_LIVE, seen[A_LIVE].id) is None
    assert len({o.id for o in seen.values()}) == 3
    # Each license came out of its own tenant's catalog.
    assert [seen[t].max_machines for t in (A_LIVE, A_TEST, B_LIVE)] == [3, 1, 5]
    assert seen[B_LIVE].entitlements == ["other.core"]
    owners = await harness.fetch("SELECT seller_id, mode FROM licenses ORDER BY mode, seller_id")
    assert sorted((r["seller_id"], r["mode"]) for r in owners) == sorted(
        (t.seller_id, t.mode) for t in (A_LIVE, A_TEST, B_LIVE)
    )
    # What licensing published names the tenant of each license.
    issued = await harness.fetch(
        "SELECT payload->>'seller_id' AS s, payload->>'mode' AS m FROM outbox"
        " WHERE subject = 'licensing.license.issued.v1'"
    )
    assert sorted((UUID(r["s"]), r["m"]) for r in issued) == sorted(
        (t.seller_id, t.mode) for t in (A_LIVE, A_TEST, B_LIVE)
    )


async def test_a_sellers_events_twice_and_out_of_order_never_change_another_sellers_rows(
    harness: Harness,
) -> None:
    """Seller A (home, live) owns a paid order. Seller B's refund for an order with the very
    same order and account ids arrives before B's purchase, and everything B sends arrives
    twice: B ends with its own license, revoked; A's license, order facts and customer stay
    exactly as they were."""
    await add_catalog(harness, B_LIVE)
    paid_a = an_order_paid(email="a@example.com")
    await harness.publish(paid_a)
    await harness.issued(paid_a.order_id)
    before = await harness.fetch(
        "SELECT l.id, l.status, l.status_reason, l.updated_at, o.refunded_at, o.updated_at AS o_up"
        " FROM licenses l JOIN orders o ON o.order_id = l.order_id AND o.seller_id = l.seller_id"
        " WHERE l.seller_id = $1",
        HOME_SELLER_ID,
    )

    b = {"seller_id": SELLER_B, "mode": "live"}
    paid_b = an_order_paid(
        order_id=paid_a.order_id, account_id=paid_a.account_id, email="b@example.com", **b
    )
    refund_b = a_refund(paid_b).model_copy(update=b)
    for event, msg_id in ((refund_b, "r1"), (refund_b, "r2"), (paid_b, "p1"), (paid_b, "p2")):
        await harness.publish(event, msg_id=msg_id)
    await settled(harness, 3)  # A's paid, B's refund, B's paid (each once)

    async def revoked_b() -> Any:
        return await harness.fetch(
            "SELECT status, status_reason, email FROM licenses WHERE seller_id = $1",
            SELLER_B,
        )

    assert [tuple(r) for r in await harness.until(revoked_b)] == [
        ("revoked", "refunded", "b@example.com")
    ]
    after = await harness.fetch(
        "SELECT l.id, l.status, l.status_reason, l.updated_at, o.refunded_at, o.updated_at AS o_up"
        " FROM licenses l JOIN orders o ON o.order_id = l.order_id AND o.seller_id = l.seller_id"
        " WHERE l.seller_id = $1",
        HOME_SELLER_ID,
    )
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
    assert before[0]["status"] == "active" and before[0]["refunded_at"] is None
    customers = await harness.fetch("SELECT seller_id, email FROM customers ORDER BY email")
    assert [tuple(r) for r in customers] == [
        (HOME_SELLER_ID, "a@example.com"),
        (SELLER_B, "b@example.com"),
    ]
    # B's refund became one revocation, published as B's.
    revoked = await harness.fetch(
        "SELECT payload->>'seller_id' AS s FROM outbox WHERE subject = 'licensing.license.revoked.v1'"
    )
    assert [UUID(r["s"]) for r in revoked] == [SELLER_B]


async def test_a_license_key_finds_its_license_in_any_tenant_and_acts_in_that_tenant(
    harness: Harness,
) -> None:
    """The desktop API has only the key: B's key activates B's license, under B's policy,
    and the activation and its event are B's."""
    await add_catalog(harness, B_LIVE, max_machines=1)
    paid_b = an_order_paid(seller_id=SELLER_B, mode="live")
    await harness.publish(paid_b)
    [key] = await harness.issued(paid_b.order_id)
    first = await harness.http.post(
        "/v1/licenses/activate", json={"key": key, "fingerprint": "machine-one-0001"}
    )
    assert first.json()["code"] == "VALID"
    # B's policy allows one machine (the home seller's same-named policy allows three).
    second = await harness.http.post(
        "/v1/licenses/activate", json={"key": key, "fingerprint": "machine-two-0002"}
    )
    assert second.json()["code"] == "TOO_MANY_ACTIVATIONS"
    valid = await harness.http.post(
        "/v1/licenses/validate", json={"key": key, "fingerprint": "machine-one-0001"}
    )
    assert valid.json()["valid"] is True
    assert valid.json()["entitlements"] == ["other.core"]
    assert [tuple(r) for r in await harness.fetch("SELECT seller_id, mode FROM activations")] == [
        (SELLER_B, "live")
    ]
    activated = await harness.fetch(
        "SELECT payload->>'seller_id' AS s FROM outbox"
        " WHERE subject = 'licensing.activation.created.v1'"
    )
    assert [UUID(r["s"]) for r in activated] == [SELLER_B]
    # The home seller's customer routes never see B's license, even with B's account id.
    mine = await harness.http.get("/v1/me/licenses", headers=harness.mint.bearer(paid_b.account_id))
    assert mine.status_code == 200 and mine.json() == []
