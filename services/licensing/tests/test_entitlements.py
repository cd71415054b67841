"""Billing's subscription events become the customer's entitlement: once per event, the
newest state (billing's per-subscription `sequence`) whatever the order and the repeats;
valid while active or trialing, or past due until its grace ends; not once ended."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from licensing_factories import Harness  # type: ignore[import-not-found]

from tessera.licensing.entitlements.service import PERIOD_LAPSE, is_valid
from tessera.shared.events.billing import (
    SubscriptionChanged,
    SubscriptionEnded,
    SubscriptionEvent,
    SubscriptionGrants,
    SubscriptionRenewed,
    SubscriptionStarted,
)
from tessera.shared.sellers import HOME_LIVE

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
PRO = SubscriptionGrants(features=["export"], quotas={"api_calls": {"limit": 500}})
TEAM = SubscriptionGrants(features=["export", "sso"], seats=5)


def lifecycle(account: uuid.UUID, subscription_id: str = "sub_1A") -> list[SubscriptionEvent]:
    """What billing publishes for one subscription: trial, renewal, upgrade, past due, end."""
    base: dict[str, Any] = {
        "subscription_id": subscription_id, "account_id": account, "product": "tool",
        "tier": "pro", "grants": PRO, "interval": "month", "status": "trialing",
        "current_period_start": NOW, "current_period_end": NOW + timedelta(days=14),
        "started_at": NOW, "seller_id": HOME_LIVE.seller_id, "mode": "live",
    }  # fmt: skip
    month = {"current_period_start": NOW + timedelta(days=14),
             "current_period_end": NOW + timedelta(days=44), "status": "active"}  # fmt: skip
    past_due = {"status": "past_due", "past_due_since": NOW + timedelta(days=44),
                "grace_until": NOW + timedelta(days=51)}  # fmt: skip
    return [
        SubscriptionStarted(sequence=1, **base),
        SubscriptionRenewed(sequence=2, **{**base, **month}),
        SubscriptionChanged(sequence=3, **{**base, **month, "tier": "team", "grants": TEAM}),
        SubscriptionChanged(
            sequence=4, **{**base, **month, **past_due, "tier": "team", "grants": TEAM}
        ),
        SubscriptionEnded(
            sequence=5, **{**base, **month, "status": "canceled", "tier": "team", "grants": TEAM}
        ),
    ]


async def settled(harness: Harness, count: int) -> None:
    async def done() -> bool:
        n = await harness.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer = 'licensing.entitlements'"
        )
        return bool(n >= count)

    await harness.until(done)


async def mine(harness: Harness, account: uuid.UUID) -> list[dict[str, Any]]:
    answer = await harness.http.get("/v1/me/entitlements", headers=harness.mint.bearer(account))
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


@pytest.mark.parametrize("upto", [1, 3, 4, 5])
async def test_shuffled_and_repeated_events_keep_the_newest_state(
    harness: Harness, upto: int
) -> None:
    account = uuid.uuid4()
    events = lifecycle(account)[:upto]
    deliveries = events * 2
    random.Random(upto).shuffle(deliveries)
    for n, event in enumerate(deliveries):
        # The second copy past JetStream's de-duplication: the inbox catches it.
        await harness.publish(event, msg_id=f"{event.event_id}-{n}")
    await settled(harness, len(events))
    [entitlement] = await mine(harness, account)
    newest = events[-1]
    assert (entitlement["status"], entitlement["tier"]) == (newest.status, newest.tier)
    assert entitlement["grants"] == newest.grants.model_dump()
    assert entitlement["ended"] == (upto == 5)
    assert entitlement["valid"] == (upto != 5)  # past due: valid until its grace ends
    rows = await harness.fetch("SELECT sequence FROM entitlements WHERE account_id = $1", account)
    assert [r["sequence"] for r in rows] == [upto]


async def test_a_late_event_of_an_ended_subscription_never_hides_the_new_one(
    harness: Harness,
) -> None:
    account = uuid.uuid4()
    old, new = lifecycle(account, "sub_1Old"), lifecycle(account, "sub_1New")
    for event in [new[0], old[4], old[0], old[2]]:
        await harness.publish(event)
    await settled(harness, 4)
    [entitlement] = await mine(harness, account)
    assert (entitlement["subscription_id"], entitlement["valid"]) == ("sub_1New", True)


def test_past_due_is_valid_only_until_its_grace_ends() -> None:
    row = {"ended": False, "status": "past_due", "grace_until": NOW}
    assert is_valid(row, NOW - timedelta(seconds=1))
    assert not is_valid(row, NOW)
    for status, valid in (("active", True), ("trialing", True), ("unpaid", False),
                          ("incomplete", False)):  # fmt: skip
        assert is_valid({**row, "status": status}, NOW) == valid
    assert not is_valid({**row, "status": "active", "ended": True}, NOW)


def test_an_active_subscription_without_a_renewal_lapses_after_its_period() -> None:
    end = NOW + timedelta(days=30)
    row = {"ended": False, "status": "active", "grace_until": None, "current_period_end": end}
    assert is_valid(row, end + PERIOD_LAPSE - timedelta(seconds=1))
    assert not is_valid(row, end + PERIOD_LAPSE)
    assert not is_valid({**row, "status": "trialing"}, end + PERIOD_LAPSE)
