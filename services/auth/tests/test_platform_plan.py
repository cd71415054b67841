"""The platform plan (docs/sellers.md, "Platform plan"): a seller's live keys work only while
its plan (the home seller's live tier `platform`, paid for by the seller) is in force; test
keys always. Auth learns the plan from billing's subscription events, delivered twice and
in any order. Real Postgres, Redis, NATS."""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from test_api_keys import new_pair  # type: ignore[import-not-found]
from test_sellers import bearer, developer_token, seller_id_of  # type: ignore[import-not-found]

from tessera.auth.app import MIGRATIONS
from tessera.auth.sellers import plan
from tessera.devstack.platform_plan import platform_plan_event, publish_events
from tessera.shared.db.migrate import apply_migrations
from tessera.shared.events.billing import (
    SubscriptionChanged,
    SubscriptionEnded,
    SubscriptionEvent,
    SubscriptionRenewed,
)
from tessera.shared.sellers import HOME_SELLER_ID

pytestmark = pytest.mark.integration


async def plan_of(h: Any, seller_id: UUID) -> tuple[str, int]:
    row = await h.auth.pool.fetchrow(
        "SELECT plan_status, plan_sequence FROM sellers WHERE id = $1", seller_id
    )
    return row["plan_status"], row["plan_sequence"]


async def until_book(h: Any, seller_id: UUID, sequence: int) -> None:
    """Until auth has applied the plan's event `sequence` and its book holds the record."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        _, seen = await plan_of(h, seller_id)
        version = await h.auth.pool.fetchval("SELECT version FROM sellers WHERE id = $1", seller_id)
        entry = h.auth.sellers.by_id(seller_id)
        # The record's version, not its status: two past-due records differ in grace only.
        if seen == sequence and entry is not None and entry.version == version:
            return
        assert asyncio.get_running_loop().time() < deadline, f"event #{sequence} never applied"
        await asyncio.sleep(0.05)


async def test_live_keys_work_only_while_the_plan_is_in_force(harness: Any) -> None:
    async with harness() as h:
        await asyncio.wait_for(h.auth.key_book.wait_ready(), 20)
        token = await developer_token(h, h.new_email(), "plan-keys")
        seller_id = await seller_id_of(h, "plan-keys")
        live = bearer((await new_pair(h, token, "plan-keys", "live", "live"))["secret"]["key"])
        test = bearer((await new_pair(h, token, "plan-keys", "test", "test"))["secret"]["key"])
        infra = h.auth.infra

        async def answers() -> tuple[int, int]:
            got_live = await h.client.get("/v1/customers", headers=live)
            got_test = await h.client.get("/v1/customers", headers=test)
            return got_live.status_code, got_test.status_code

        async def send(event: SubscriptionEvent) -> tuple[int, int]:
            await publish_events(str(infra.nats_url), infra.namespace, [event])
            await until_book(h, seller_id, event.sequence)
            return await answers()

        refused = await h.client.get("/v1/customers", headers=live)
        without = await answers()
        now = datetime.now(UTC)
        paid = await send(platform_plan_event(seller_id, "active", 1))
        in_grace = await send(
            platform_plan_event(
                seller_id, "past_due", 2, SubscriptionChanged,
                past_due_since=now, grace_until=now + timedelta(days=3),
            )
        )  # fmt: skip
        past_grace = await send(
            platform_plan_event(
                seller_id, "past_due", 3, SubscriptionChanged,
                past_due_since=now - timedelta(days=8), grace_until=now - timedelta(days=1),
            )
        )  # fmt: skip
        renewed = await send(platform_plan_event(seller_id, "active", 4, SubscriptionRenewed))
        ended = await send(platform_plan_event(seller_id, "canceled", 5, SubscriptionEnded))
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("platform-plan-inactive")
    assert without == (402, 200)
    assert paid == (200, 200)
    assert in_grace == (200, 200)
    assert past_grace == (402, 200)
    assert renewed == (200, 200)
    assert ended == (402, 200)


def lifecycle(seller_id: UUID) -> list[SubscriptionEvent]:
    """One plan's life: paid, a failed payment, paid again, canceled."""
    now = datetime.now(UTC)
    return [
        platform_plan_event(seller_id, "active", 1),
        platform_plan_event(
            seller_id, "past_due", 2, SubscriptionChanged,
            past_due_since=now, grace_until=now + timedelta(days=3),
        ),
        platform_plan_event(seller_id, "active", 3, SubscriptionRenewed),
        platform_plan_event(seller_id, "canceled", 4, SubscriptionEnded),
    ]  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
async def test_events_twice_and_shuffled_end_in_the_same_state(harness: Any, seed: int) -> None:
    async with harness() as h:
        await developer_token(h, h.new_email(), f"plan-order-{seed}")
        seller_id = await seller_id_of(h, f"plan-order-{seed}")
        old = lifecycle(seller_id)
        # A new subscription, started after the old one ended, wins whatever the order.
        renewed = platform_plan_event(
            seller_id, "active", 1, subscription_id="sub_plan_again",
            started_at=datetime.now(UTC) + timedelta(days=40),
        )  # fmt: skip
        events = old * 2
        random.Random(seed).shuffle(events)
        applied = [await plan.on_subscription(h.auth.pool, e) for e in events]
        after_old = await plan_of(h, seller_id)
        late = [renewed, *old]
        random.Random(seed).shuffle(late)
        for event in late:
            await plan.on_subscription(h.auth.pool, event)
        final = await h.auth.pool.fetchrow(
            "SELECT plan_status, plan_subscription FROM sellers WHERE id = $1", seller_id
        )
    assert after_old == ("ended", 4)
    assert sum(1 for a in applied if a is not None) <= 4
    assert (final["plan_status"], final["plan_subscription"]) == ("active", "sub_plan_again")


async def test_only_the_home_sellers_live_platform_subscriptions_count(harness: Any) -> None:
    async with harness() as h:
        await developer_token(h, h.new_email(), "plan-forged")
        seller_id = await seller_id_of(h, "plan-forged")
        other = uuid4()
        forged = [
            # Another seller's customer subscription naming a seller.
            platform_plan_event(seller_id, seller_id=other),
            # The home seller's test mode.
            platform_plan_event(seller_id, mode="test"),
            # The home seller paying for itself.
            platform_plan_event(HOME_SELLER_ID),
        ]
        applied = [await plan.on_subscription(h.auth.pool, e) for e in forged]
        held = await plan_of(h, seller_id)
    assert applied == [None, None, None]
    assert held == ("none", 0)


def second_plan(seller_id: UUID) -> list[SubscriptionEvent]:
    """A second platform subscription of the same seller (made in Stripe's dashboard, say),
    started a day after the first, then canceled."""
    later = datetime.now(UTC) + timedelta(days=1)
    values: dict[str, Any] = {"subscription_id": "sub_plan_dashboard", "started_at": later}
    return [
        platform_plan_event(seller_id, "active", 1, **values),
        platform_plan_event(seller_id, "canceled", 2, SubscriptionEnded, **values),
    ]


def first_plan(seller_id: UUID, *, ends: bool) -> list[SubscriptionEvent]:
    """The seller's plan bought through Tessera: paid, renewed, and (if `ends`) canceled."""
    events = [
        platform_plan_event(seller_id, "active", 1),
        platform_plan_event(seller_id, "active", 2, SubscriptionRenewed),
    ]
    if ends:
        events.append(platform_plan_event(seller_id, "canceled", 3, SubscriptionEnded))
    return events


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("first_ends", [False, True], ids=["one-ends", "both-end"])
async def test_a_seller_is_on_the_plan_while_any_of_its_subscriptions_is(
    harness: Any, seed: int, first_ends: bool
) -> None:
    """Two platform subscriptions: the later one ending leaves the seller on the plan the
    other still pays for; both ending ends it. Each event twice, in any order; the
    directory record (what every key check reads) says the same."""
    async with harness() as h:
        slug = f"plan-two-{seed}-{'both' if first_ends else 'one'}"
        await developer_token(h, h.new_email(), slug)
        seller_id = await seller_id_of(h, slug)
        events = (first_plan(seller_id, ends=first_ends) + second_plan(seller_id)) * 2
        random.Random(seed).shuffle(events)
        for event in events:
            await plan.on_subscription(h.auth.pool, event)
        row = await h.auth.pool.fetchrow(
            "SELECT plan_status, plan_subscription, version FROM sellers WHERE id = $1",
            seller_id,
        )
        deadline = asyncio.get_running_loop().time() + 20
        while (entry := h.auth.sellers.by_id(seller_id)) is None or entry.version < row["version"]:
            assert asyncio.get_running_loop().time() < deadline, "the record never arrived"
            await asyncio.sleep(0.05)
    if first_ends:
        assert row["plan_status"] == "ended"
        assert entry.plan_status == "ended" and not entry.plan_in_force(time.time())
    else:
        assert (row["plan_status"], row["plan_subscription"]) == (
            "active", f"sub_plan_{seller_id.hex}",
        )  # fmt: skip
        assert entry.plan_status == "active" and entry.plan_in_force(time.time())


async def test_a_past_due_subscription_gives_way_to_one_in_force_and_its_grace_counts(
    harness: Any,
) -> None:
    async with harness() as h:
        await developer_token(h, h.new_email(), "plan-grace")
        seller_id = await seller_id_of(h, "plan-grace")
        now = datetime.now(UTC)
        grace = now + timedelta(days=3)
        late = platform_plan_event(
            seller_id, "past_due", 2, SubscriptionChanged, past_due_since=now, grace_until=grace
        )
        await plan.on_subscription(h.auth.pool, late)
        held_past_due = await h.auth.pool.fetchrow(
            "SELECT plan_status, plan_grace_until FROM sellers WHERE id = $1", seller_id
        )
        [paid, ended] = second_plan(seller_id)
        await plan.on_subscription(h.auth.pool, paid)
        with_paid = await plan_of(h, seller_id)
        await plan.on_subscription(h.auth.pool, ended)
        after_end = await h.auth.pool.fetchrow(
            "SELECT plan_status, plan_grace_until FROM sellers WHERE id = $1", seller_id
        )
    assert (held_past_due["plan_status"], held_past_due["plan_grace_until"]) == ("past_due", grace)
    assert with_paid == ("active", 1)
    assert (after_end["plan_status"], after_end["plan_grace_until"]) == ("past_due", grace)


async def test_a_subscription_to_another_tier_naming_a_seller_is_no_plan(harness: Any) -> None:
    """Metadata naming a seller on a home-seller subscription to any tier but `platform`
    pays for nothing; a platform subscription moved to another tier stops counting."""
    async with harness() as h:
        await developer_token(h, h.new_email(), "plan-other-tier")
        seller_id = await seller_id_of(h, "plan-other-tier")
        version = await h.auth.pool.fetchval("SELECT version FROM sellers WHERE id = $1", seller_id)
        other: dict[str, Any] = {"subscription_id": "sub_plan_pro", "tier": "pro"}
        applied = [
            await plan.on_subscription(h.auth.pool, platform_plan_event(seller_id, **other)),
            await plan.on_subscription(
                h.auth.pool,
                platform_plan_event(seller_id, "active", 2, SubscriptionRenewed, **other),
            ),
        ]
        untouched = await h.auth.pool.fetchrow(
            "SELECT plan_status, version FROM sellers WHERE id = $1", seller_id
        )
        moved = [
            platform_plan_event(seller_id, "active", 1),
            platform_plan_event(seller_id, "active", 2, SubscriptionChanged, tier="pro"),
        ]
        for event in moved[::-1]:  # the move first: the older platform event is stale
            await plan.on_subscription(h.auth.pool, event)
        after_move = await plan_of(h, seller_id)
    assert applied == [None, None]
    assert (untouched["plan_status"], untouched["version"]) == ("none", version)
    assert plan.is_platform_plan(moved[0]) and not plan.is_platform_plan(moved[1])
    assert after_move == ("none", 0)


async def test_concurrent_events_of_a_sellers_subscriptions_see_each_other(harness: Any) -> None:
    """Four subscriptions ending while a fifth starts, all applied at the same moment on
    their own connections (rounds of it): each sees the others' states (the seller's row is
    locked before they are read), so the seller stays on the plan the fifth pays for."""
    async with harness() as h:
        await developer_token(h, h.new_email(), "plan-race")
        seller_id = await seller_id_of(h, "plan-race")
        start = datetime.now(UTC)
        finals = []
        for turn in range(8):
            at = start + timedelta(days=turn)
            ending = [f"sub_race_{turn}_{i}" for i in range(4)]
            for sub in ending:
                await plan.on_subscription(
                    h.auth.pool,
                    platform_plan_event(seller_id, "active", 1, subscription_id=sub, started_at=at),
                )
            new = f"sub_race_{turn}_new"
            racing = [
                platform_plan_event(
                    seller_id, "canceled", 2, SubscriptionEnded, subscription_id=sub, started_at=at
                )
                for sub in ending
            ]
            racing.insert(turn % 5, platform_plan_event(
                seller_id, "active", 1, subscription_id=new, started_at=at - timedelta(hours=1)
            ))  # fmt: skip
            await asyncio.gather(*(plan.on_subscription(h.auth.pool, e) for e in racing))
            finals.append(await h.auth.pool.fetchrow(
                "SELECT plan_status, plan_subscription FROM sellers WHERE id = $1", seller_id
            ))  # fmt: skip
            await plan.on_subscription(
                h.auth.pool,
                platform_plan_event(seller_id, "canceled", 2, SubscriptionEnded,
                                    subscription_id=new, started_at=at - timedelta(hours=1)),
            )  # fmt: skip
    assert [(f["plan_status"], f["plan_subscription"]) for f in finals] == [
        ("active", f"sub_race_{turn}_new") for turn in range(8)
    ]


async def test_the_migration_keeps_one_row_per_subscription_when_two_sellers_held_it(
    database_url: str, tmp_path: Path
) -> None:
    """Before auth_0007 a subscription whose metadata was edited to name another seller left
    both sellers' rows holding it; the migration gives it to the row with its latest event."""
    before = tmp_path / "migrations"
    before.mkdir()
    for path in MIGRATIONS.glob("*.sql"):
        if path.name < "auth_0007":
            shutil.copy(path, before / path.name)
    apply_migrations(database_url, before)
    first, second, third = uuid4(), uuid4(), uuid4()
    conn = await asyncpg.connect(database_url)
    try:
        for seller, slug, sub, sequence in (
            (first, "plan-first", "sub_shared", 3), (second, "plan-second", "sub_shared", 5),
            (third, "plan-third", "sub_own", 2),
        ):  # fmt: skip
            await conn.execute(
                "INSERT INTO sellers (id, slug, name, plan_status, plan_subscription,"
                " plan_sequence) VALUES ($1, $2, $2, 'active', $3, $4)",
                seller, slug, sub, sequence,
            )  # fmt: skip
    finally:
        await conn.close()

    apply_migrations(database_url, MIGRATIONS)

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT subscription_id, seller_id, sequence FROM platform_plan_subscriptions"
            " ORDER BY subscription_id"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [("sub_own", third, 2), ("sub_shared", second, 5)]
