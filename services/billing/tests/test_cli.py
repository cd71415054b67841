"""The operator CLI, run as a real process against a real database."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tessera.shared.db.migrate import apply_migrations

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).resolve().parents[1] / "src" / "tessera" / "billing" / "migrations"
CATALOG = Path(__file__).resolve().parents[3] / "deploy" / "catalog.json"


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TESSERA_BILLING_DATABASE_URL": database_url,
        "TESSERA_BILLING_CATALOG_FILE": str(CATALOG),
    }
    return subprocess.run(
        [sys.executable, "-m", "tessera.billing.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_an_operator_seeds_an_account_with_a_grant(database_url: str) -> None:
    await asyncio.to_thread(apply_migrations, database_url, MIGRATIONS)
    assert run(database_url, "catalog", "sync").stdout.strip() == "2 products"
    seeded = run(
        database_url,
        "accounts",
        "seed",
        "Ops@Example.com",
        "--sku",
        "chartgpt-lifetime",
        "--note",
        "beta",
    )
    assert seeded.returncode == 0, seeded.stderr
    assert seeded.stdout.startswith("account ")
    conn = await asyncpg.connect(database_url)
    try:
        subjects = [
            r["subject"] for r in await conn.fetch("SELECT subject FROM outbox ORDER BY created_at")
        ]
        actor = await conn.fetchval("SELECT actor FROM audit_log")
    finally:
        await conn.close()
    assert subjects == ["billing.account.created.v1", "billing.order.paid.v1"]
    assert actor == "operator:cli"


async def test_replaying_an_unknown_event_fails_with_a_clear_message(database_url: str) -> None:
    await asyncio.to_thread(apply_migrations, database_url, MIGRATIONS)
    result = run(database_url, "events", "replay", "evt_missing")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: No webhook event 'evt_missing' was received."


async def test_an_operator_lists_approves_and_rejects_held_orders(database_url: str) -> None:
    await asyncio.to_thread(apply_migrations, database_url, MIGRATIONS)
    assert run(database_url, "catalog", "sync").returncode == 0
    conn = await asyncpg.connect(database_url)
    try:
        ids = []
        for n in (1, 2):
            ids.append(
                await conn.fetchval(
                    """
                    INSERT INTO orders (id, email, sku, quantity, amount_total, currency, product,
                                        policy, seats, source, status, checkout_session_id,
                                        hold_reason, hold_event_id, seller_id, mode)
                    VALUES (gen_random_uuid(), $1, 'chartgpt-lifetime', 1, 1, 'usd', 'chartgpt',
                            'chartgpt-lifetime', 1, 'purchase', 'held', $2,
                            'amount_total 1 is not 14900 (14900 x 1)', $3,
                            '00000000-0000-4000-8000-000000000001', 'live')
                    RETURNING id
                    """,
                    f"held{n}@example.com",
                    f"cs_test_cli_{n}",
                    f"evt_test_cli_{n}",
                )
            )
        listed = run(database_url, "held-orders", "list")
        assert listed.returncode == 0, listed.stderr
        assert (
            "held1@example.com" in listed.stdout and "amount_total 1 is not 14900" in listed.stdout
        )
        no_reason = run(database_url, "held-orders", "approve", str(ids[0]))
        assert no_reason.returncode != 0
        approved = run(database_url, "held-orders", "approve", str(ids[0]), "--reason", "ok")
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.strip() == f"{ids[0]}: paid"
        again = run(database_url, "held-orders", "approve", str(ids[0]), "--reason", "ok")
        assert again.returncode == 1 and "not held" in again.stderr
        rejected = run(database_url, "held-orders", "reject", str(ids[1]), "--reason", "fraud")
        assert rejected.stdout.strip() == f"{ids[1]}: rejected"
        subjects = [r["subject"] for r in await conn.fetch("SELECT subject FROM outbox")]
        audit = [
            (r["action"], r["actor"])
            for r in await conn.fetch("SELECT * FROM audit_log ORDER BY id")
        ]
    finally:
        await conn.close()
    assert subjects == ["billing.purchase.completed.v1"]
    assert audit == [("order.approve", "operator:cli"), ("order.reject", "operator:cli")]
