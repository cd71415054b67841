"""Usage metering (docs/usage.md) against the real app, Postgres, Redis and NATS: records
count within the limit exactly, under concurrency, on two replicas, across a period's
boundary and with Redis emptied mid-run; a key counts once; the rate answers 429; every
counter reconciles with its record rows."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from licensing_factories import Harness  # type: ignore[import-not-found]

from tessera.devstack.seller_keys import publish_seller_keys
from tessera.shared.events.auth import SellerChanged, SellerSettings
from tessera.shared.events.billing import (
    AccountCreated,
    SubscriptionChanged,
    SubscriptionGrants,
    SubscriptionStarted,
)
from tessera.shared.events.topology import SELLERS
from tessera.shared.sellers import Tenant

pytestmark = pytest.mark.integration

SELLER = UUID("00000000-0000-4000-8000-0000000005e1")
TENANT = Tenant(SELLER, "live")
SLUG = "usage-seller"
UPGRADE = "https://seller.example/upgrade"
NOW = datetime.now(UTC).replace(microsecond=0)


class Seller:
    """The test seller's keys and directory record (with an upgrade URL), as auth would
    publish them."""

    def __init__(self, harness: Harness, secret: str, publishable: str) -> None:
        self.h = harness
        self.secret = {"authorization": f"Bearer {secret}"}
        self.publishable = {"authorization": f"Bearer {publishable}"}

    def token(self, account: UUID) -> dict[str, str]:
        return {"authorization": f"Bearer {self.h.mint.token(account, sel=SLUG, mod='live')}"}

    async def customer(self) -> UUID:
        """A customer billing announced (no tier yet)."""
        account = uuid.uuid4()
        await self.h.publish(
            AccountCreated(seller_id=SELLER, mode="live", account_id=account, email="c@example.com")
        )
        await self.h.until(
            lambda: self.h.fetchval("SELECT 1 FROM customers WHERE account_id = $1", account)
        )
        return account

    async def subscriber(
        self, limit: int | None, rate: int | None = None, feature: str = "api_calls"
    ) -> UUID:
        """A customer with an active monthly subscription whose tier meters `feature`."""
        account = uuid.uuid4()
        await self.h.publish(subscription(account, limit, rate, feature))
        await self.h.until(
            lambda: self.h.fetchval("SELECT 1 FROM entitlements WHERE account_id = $1", account)
        )
        return account

    async def record(
        self, account: UUID, key: str | None = None, amount: int = 1, http: Any = None,
        feature: str = "api_calls",
    ) -> httpx.Response:  # fmt: skip
        body = {"customer": str(account), "feature": feature, "amount": amount,
                "idempotency_key": key or uuid.uuid4().hex}  # fmt: skip
        client: httpx.AsyncClient = http or self.h.http
        return await client.post("/v1/usage", json=body, headers=self.secret)


def subscription(
    account: UUID, limit: int | None, rate: int | None = None, feature: str = "api_calls",
    sequence: int = 1, kind: Any = SubscriptionStarted,
) -> Any:  # fmt: skip
    grants = SubscriptionGrants(quotas={feature: {"limit": limit}}, rate_per_minute=rate)
    return kind(
        seller_id=SELLER, mode="live", subscription_id=f"sub_{account.hex[:12]}",
        sequence=sequence, account_id=account, product="tool", tier=f"t{limit}",
        grants=grants, interval="month", status="active",
        current_period_start=NOW - timedelta(days=1),
        current_period_end=NOW + timedelta(days=29), started_at=NOW - timedelta(days=1),
    )  # fmt: skip


async def seller_for(h: Harness) -> Seller:
    context = h.app.state.context
    keys = await publish_seller_keys(
        h.js, h.ns, context.key_book, context.sellers,
        [(TENANT, "secret"), (TENANT, "publishable")],
    )  # fmt: skip
    record = SellerChanged(
        seller_id=SELLER, mode="live", slug=SLUG, name="Usage seller", signup_policy="open",
        status="active", version=1000, plan_status="active",
        settings=SellerSettings(upgrade_url=UPGRADE),
    )  # fmt: skip
    await h.js.publish(
        h.ns.subject(record.publish_subject()), record.to_json(), stream=h.ns.stream(SELLERS)
    )

    async def held() -> bool:
        entry = context.sellers.by_id(SELLER)
        return entry is not None and entry.version == 1000

    await h.until(held)
    return Seller(h, keys[(TENANT, "secret")], keys[(TENANT, "publishable")])


@pytest.fixture
async def seller(harness: Harness) -> Seller:
    return await seller_for(harness)


async def reconcile(h: Harness) -> list[tuple[Any, ...]]:
    """Every counter beside the sum of its unreverted records: equal, or the pair listed."""
    rows = await h.fetch(
        "SELECT c.account_id, c.feature, c.period_start, c.used,"
        " coalesce((SELECT sum(amount) FROM usage_records r WHERE r.seller_id = c.seller_id"
        "  AND r.mode = c.mode AND r.account_id = c.account_id AND r.feature = c.feature"
        "  AND r.period_start = c.period_start AND r.reverted_at IS NULL), 0) AS recorded"
        " FROM usage_counters c"
    )
    return [tuple(r) for r in rows if r["used"] != r["recorded"]]


async def used(h: Harness, account: UUID) -> int:
    return int(await h.fetchval("SELECT sum(used) FROM usage_counters WHERE account_id = $1",
                                account) or 0)  # fmt: skip


async def test_records_count_up_to_the_limit_then_403_with_the_upgrade_url(
    harness: Harness, seller: Seller
) -> None:
    account = await seller.subscriber(limit=3)
    answers = [await seller.record(account) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [(a.json()["used"], a.json()["remaining"]) for a in answers] == [(1, 2), (2, 1), (3, 0)]
    last = answers[-1]
    assert last.json()["limit"] == 3
    assert last.json()["period_end"].startswith((NOW + timedelta(days=29)).date().isoformat())
    assert last.headers["RateLimit-Policy"].startswith('"api_calls";q=3;w=')
    assert last.headers["RateLimit"].startswith('"api_calls";r=0;t=')

    refused = await seller.record(account)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"].endswith(":usage-limit-exceeded")
    assert (problem["code"], problem["upgrade_url"]) == ("usage-limit-exceeded", UPGRADE)
    assert (problem["used"], problem["limit"], problem["remaining"]) == (3, 3, 0)
    assert refused.headers["RateLimit"].startswith('"api_calls";r=0;t=')
    assert await used(harness, account) == 3
    assert (
        await harness.fetchval("SELECT count(*) FROM usage_records WHERE account_id = $1", account)
        == 3
    )

    # An amount bigger than what is left is refused whole.
    other = await seller.subscriber(limit=5)
    assert (await seller.record(other, amount=4)).status_code == 200
    assert (await seller.record(other, amount=2)).status_code == 403
    assert (await seller.record(other, amount=6)).status_code == 403
    assert (await seller.record(other, amount=1)).json()["used"] == 5


async def test_check_counts_nothing_and_reads_show_every_feature(
    harness: Harness, seller: Seller
) -> None:
    account = await seller.subscriber(limit=2, rate=100)
    body = {"customer": str(account), "feature": "api_calls", "amount": 2}
    check = await harness.http.post("/v1/usage/check", json=body, headers=seller.secret)
    assert check.status_code == 200
    assert (check.json()["allowed"], check.json()["used"]) == (True, 0)
    assert '"rate_per_minute";q=100;w=60' in check.headers["RateLimit-Policy"]
    await seller.record(account)
    check = await harness.http.post("/v1/usage/check", json=body, headers=seller.secret)
    assert (check.json()["allowed"], check.json()["used"], check.json()["remaining"]) == (
        False, 1, 1,
    )  # fmt: skip
    read = await harness.http.get(f"/v1/customers/{account}/usage", headers=seller.secret)
    assert read.status_code == 200
    [feature] = read.json()["features"]
    assert (feature["feature"], feature["used"], feature["limit"], feature["source"]) == (
        "api_calls", 1, 2, "subscription",
    )  # fmt: skip
    assert read.headers["RateLimit"].startswith('"api_calls";r=1;t=')
    assert await used(harness, account) == 1


async def test_200_concurrent_records_at_a_limit_of_50_accept_exactly_50(
    harness: Harness, seller: Seller
) -> None:
    account = await seller.subscriber(limit=50)
    answers = await asyncio.gather(*(seller.record(account) for _ in range(200)))
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: 50, 403: 150}
    assert sorted(a.json()["used"] for a in answers if a.status_code == 200) == list(range(1, 51))
    assert await used(harness, account) == 50
    assert await reconcile(harness) == []


async def test_two_replicas_on_one_database_never_pass_the_limit(start_licensing: Any) -> None:
    async with start_licensing() as one, start_licensing() as two:
        seller = await seller_for(one)
        await seller_for(two)
        account = await seller.subscriber(limit=40)
        answers = await asyncio.gather(
            *(seller.record(account, http=(one if n % 2 else two).http) for n in range(160))
        )
        assert Counter(a.status_code for a in answers) == {200: 40, 403: 120}
        assert await used(one, account) == 40
        assert await reconcile(one) == []


async def test_one_idempotency_key_counts_once_and_replays_its_answer(
    harness: Harness, seller: Seller
) -> None:
    account = await seller.subscriber(limit=10)
    await seller.record(account)
    answers = await asyncio.gather(*(seller.record(account, key="job-1") for _ in range(20)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["record_id"] for a in answers}) == 1
    assert {a.json()["used"] for a in answers} == {2}
    assert sorted(a.json()["replayed"] for a in answers) == [False] + [True] * 19
    assert await used(harness, account) == 2

    # Later, with the limit reached, the same key still replays its first answer.
    for _ in range(8):
        await seller.record(account)
    again = await seller.record(account, key="job-1")
    assert (again.status_code, again.json()["used"], again.json()["replayed"]) == (200, 2, True)
    # The key with another amount, customer or feature is a conflict, nothing counted.
    assert (await seller.record(account, key="job-1", amount=2)).status_code == 409
    other = await seller.subscriber(limit=10)
    reused = await seller.record(other, key="job-1")
    assert reused.status_code == 409
    assert reused.json()["type"].endswith(":idempotency-key-reused")
    assert (await used(harness, account), await used(harness, other)) == (10, 0)


async def test_the_period_resets_exactly_at_the_boundary_under_concurrent_load(
    harness: Harness, seller: Seller
) -> None:
    """A seller-assigned tier counts per UTC calendar month: half the calls land in the
    last microsecond of one month, half in the first of the next; each month holds its
    own limit exactly."""
    account = await seller.customer()
    plan = {"tier": "free", "grants": {"quotas": {"api_calls": {"limit": 30}}}}
    put = await harness.http.put(
        f"/v1/customers/{account}/usage-plan", json=plan, headers=seller.secret
    )
    assert put.status_code == 200, put.text
    boundary = datetime(2027, 2, 1, tzinfo=UTC)
    calls = iter([boundary - timedelta(microseconds=1)] * 50 + [boundary] * 50)
    harness.app.state.context.usage_clock = lambda: next(calls)
    answers = await asyncio.gather(*(seller.record(account) for _ in range(100)))
    accepted = Counter(a.json()["period_start"] for a in answers if a.status_code == 200)
    assert accepted == {"2027-01-01T00:00:00Z": 30, "2027-02-01T00:00:00Z": 30}
    ends = {a.json()["period_end"] for a in answers if a.status_code == 200}
    assert ends == {"2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z"}
    rows = await harness.fetch(
        "SELECT period_start, used FROM usage_counters WHERE account_id = $1 ORDER BY 1", account
    )
    assert [r["used"] for r in rows] == [30, 30]
    assert await reconcile(harness) == []


async def test_records_stay_exact_with_redis_emptied_mid_run(
    harness: Harness, seller: Seller, redis: Any, namespace: str
) -> None:
    """Redis holds no count: emptying every key of the service mid-run (the rate's windows
    included) leaves the limit exact and every counter equal to its records."""
    account = await seller.subscriber(limit=60, rate=10_000)

    async def empty_redis() -> None:
        await asyncio.sleep(0.05)
        async for key in redis.scan_iter(match=f"tessera:{namespace}:*", count=500):
            await redis.delete(key)

    burst = [seller.record(account) for _ in range(150)]
    answers, _ = await asyncio.gather(asyncio.gather(*burst), empty_redis())
    assert Counter(a.status_code for a in answers) == {200: 60, 403: 90}
    assert await used(harness, account) == 60
    assert await reconcile(harness) == []


async def test_revert_takes_an_amount_back_once(harness: Harness, seller: Seller) -> None:
    account = await seller.subscriber(limit=5)
    first = (await seller.record(account, key="a", amount=3)).json()
    await seller.record(account, key="b", amount=2)
    assert (await seller.record(account)).status_code == 403
    path = f"/v1/usage/{first['record_id']}/revert"
    reverts = await asyncio.gather(
        *(harness.http.post(path, headers=seller.secret) for _ in range(5)),
        *(harness.http.post("/v1/usage/revert", json={"idempotency_key": "a"},
                            headers=seller.secret) for _ in range(5)),
    )  # fmt: skip
    assert {r.status_code for r in reverts} == {200}
    assert {(r.json()["used"], r.json()["reverted_at"]) for r in reverts} == {
        (2, reverts[0].json()["reverted_at"])
    }
    assert await used(harness, account) == 2
    assert (await seller.record(account, amount=3)).status_code == 200
    # A retry of the reverted record replays it, marked reverted; it is not counted again.
    replay = await seller.record(account, key="a", amount=3)
    assert (replay.json()["replayed"], replay.json()["reverted"]) == (True, True)
    assert await used(harness, account) == 5
    assert await reconcile(harness) == []
    # Only the seller reverts; an unknown record is a 404.
    mine = await harness.http.post(path, headers=seller.token(account))
    assert mine.status_code == 403
    missing = await harness.http.post(f"/v1/usage/{uuid.uuid4()}/revert", headers=seller.secret)
    assert missing.status_code == 404


async def test_retries_racing_a_revert_of_their_key_never_deadlock(
    harness: Harness, seller: Seller
) -> None:
    """A client that retries on a timeout while its failure handler reverts: the revert and
    the retries take the counter's and the record's locks in one order, so every answer is
    a 200 (a deadlock would be a 500 after Postgres's timeout)."""
    account = await seller.subscriber(limit=None)
    codes: set[int] = set()
    for n in range(30):
        key = f"race-{n}"
        assert (await seller.record(account, key=key)).status_code == 200
        answers = await asyncio.gather(
            harness.http.post("/v1/usage/revert", json={"idempotency_key": key},
                              headers=seller.secret),
            *(seller.record(account, key=key) for _ in range(3)),
        )  # fmt: skip
        codes |= {a.status_code for a in answers}
    assert codes == {200}
    assert await used(harness, account) == 0
    assert await reconcile(harness) == []


async def test_a_customer_token_cannot_take_a_key_the_seller_will_use(
    harness: Harness, seller: Seller
) -> None:
    """Keys are scoped to who sends them: a customer's token recording `job-42` neither
    blocks the seller's `job-42` for another customer nor is what the seller's revert of
    `job-42` takes back."""
    customer, other = await seller.subscriber(limit=100), await seller.subscriber(limit=100)
    taken = await harness.http.post(
        "/v1/usage", json={"feature": "api_calls", "idempotency_key": "job-42"},
        headers=seller.token(customer),
    )  # fmt: skip
    assert taken.status_code == 200, taken.text
    real = await seller.record(other, key="job-42")
    assert (real.status_code, real.json()["replayed"]) == (200, False)
    reverted = await harness.http.post(
        "/v1/usage/revert", json={"idempotency_key": "job-42"}, headers=seller.secret
    )
    assert reverted.json()["customer"] == str(other)
    assert (await used(harness, customer), await used(harness, other)) == (1, 0)
    # The customer's own retry still replays its own record.
    again = await harness.http.post(
        "/v1/usage", json={"feature": "api_calls", "idempotency_key": "job-42"},
        headers=seller.token(customer),
    )  # fmt: skip
    assert (again.status_code, again.json()["replayed"]) == (200, True)
    assert await used(harness, customer) == 1


async def test_over_the_rate_is_429_with_retry_after_and_nothing_counted(
    harness: Harness, seller: Seller
) -> None:
    account = await seller.subscriber(limit=100, rate=3)
    answers = [await seller.record(account) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert int(refused.headers["Retry-After"]) >= 1
    assert '"rate_per_minute";r=0;t=' in refused.headers["RateLimit"]
    assert '"api_calls";r=97;t=' in refused.headers["RateLimit"]
    assert await used(harness, account) == 3


async def test_a_customer_token_records_and_reads_only_its_own_usage(
    harness: Harness, seller: Seller
) -> None:
    account, stranger = await seller.subscriber(limit=5), await seller.subscriber(limit=5)
    token = seller.token(account)
    own = await harness.http.post(
        "/v1/usage", json={"feature": "api_calls", "idempotency_key": "k1"}, headers=token
    )
    assert (own.status_code, own.json()["customer"]) == (200, str(account))
    theirs = await harness.http.post(
        "/v1/usage",
        json={"customer": str(stranger), "feature": "api_calls", "idempotency_key": "k2"},
        headers=token,
    )
    assert theirs.status_code == 403
    assert (
        await harness.http.get(f"/v1/customers/{stranger}/usage", headers=token)
    ).status_code == 403
    read = await harness.http.get(f"/v1/customers/{account}/usage", headers=token)
    assert read.json()["features"][0]["used"] == 1
    assert (await used(harness, account), await used(harness, stranger)) == (1, 0)


async def test_a_plan_change_applies_the_new_limit_to_the_usage_already_counted(
    harness: Harness, seller: Seller
) -> None:
    account = await seller.subscriber(limit=10)
    for _ in range(6):
        await seller.record(account)
    await harness.publish(subscription(account, 5, sequence=2, kind=SubscriptionChanged))

    async def changed() -> bool:
        return bool(await harness.fetchval(
            "SELECT sequence = 2 FROM entitlements WHERE account_id = $1", account
        ))  # fmt: skip

    await harness.until(changed)
    refused = await seller.record(account)
    assert refused.status_code == 403
    assert (refused.json()["used"], refused.json()["limit"]) == (6, 5)
    await harness.publish(subscription(account, None, sequence=3, kind=SubscriptionChanged))
    await harness.until(lambda: harness.fetchval(
        "SELECT sequence = 3 FROM entitlements WHERE account_id = $1", account))  # fmt: skip
    unlimited = await seller.record(account)
    assert (unlimited.status_code, unlimited.json()["used"]) == (200, 7)
    assert unlimited.json()["limit"] is None and unlimited.json()["remaining"] is None
    assert "RateLimit" not in unlimited.headers  # no limit, no rate: nothing to advertise


async def test_a_late_older_plan_and_a_repeated_one_change_no_limit(
    harness: Harness, seller: Seller
) -> None:
    """Billing's events out of order and twice: the newest sequence's limit meters."""
    account = uuid.uuid4()
    newer = subscription(account, 2, sequence=2, kind=SubscriptionChanged)
    for event, msg_id in ((newer, "a"), (subscription(account, 10), "b"), (newer, "c")):
        await harness.publish(event, msg_id=f"{event.event_id}-{msg_id}")
    await harness.until(lambda: harness.fetchval(
        "SELECT count(*) = 2 FROM inbox WHERE consumer = 'licensing.entitlements'"))  # fmt: skip
    answers = [await seller.record(account) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 403]
    assert answers[-1].json()["limit"] == 2


BAD_BODIES: list[tuple[str, dict[str, Any], int, str]] = [
    ("amount-zero", {"amount": 0}, 422, "validation-failed"),
    ("amount-huge", {"amount": 10**12}, 422, "validation-failed"),
    ("feature-quote", {"feature": 'a"b'}, 422, "validation-failed"),
    ("key-missing", {"idempotency_key": None}, 422, "validation-failed"),
    ("no-customer", {"customer": None}, 422, "customer-required"),
    ("unmetered", {"feature": "exports"}, 403, "feature-not-entitled"),
]


@pytest.mark.parametrize(("change", "status", "slug"), [b[1:] for b in BAD_BODIES],
                         ids=[b[0] for b in BAD_BODIES])  # fmt: skip
async def test_bad_records_are_refused_with_nothing_written(
    harness: Harness, seller: Seller, change: dict[str, Any], status: int, slug: str
) -> None:
    account = await seller.subscriber(limit=5)
    body = {"customer": str(account), "feature": "api_calls", "idempotency_key": "k"}
    body = {k: v for k, v in {**body, **change}.items() if v is not None}
    answer = await harness.http.post("/v1/usage", json=body, headers=seller.secret)
    assert (answer.status_code, answer.json()["type"].rsplit(":", 1)[1]) == (status, slug)
    if slug == "feature-not-entitled":
        assert answer.json()["upgrade_url"] == UPGRADE
    assert await harness.fetchval("SELECT count(*) FROM usage_records") == 0
    assert await harness.fetchval("SELECT count(*) FROM usage_counters") == 0


async def test_keys_and_customers_that_cannot_record(harness: Harness, seller: Seller) -> None:
    account = await seller.subscriber(limit=5)
    body = {"customer": str(account), "feature": "api_calls", "idempotency_key": "k"}
    post: Callable[..., Any] = harness.http.post
    assert (await post("/v1/usage", json=body)).status_code == 401
    assert (await post("/v1/usage", json=body, headers=seller.publishable)).status_code == 403
    unknown = {**body, "customer": str(uuid.uuid4())}
    assert (await post("/v1/usage", json=unknown, headers=seller.secret)).status_code == 404
    bare = await seller.customer()  # known, but no tier meters anything
    no_tier = await post("/v1/usage", json={**body, "customer": str(bare)}, headers=seller.secret)
    assert no_tier.status_code == 403
    assert await used(harness, account) == 0


async def test_assigning_a_tier_needs_a_known_customer_and_valid_grants(
    harness: Harness, seller: Seller
) -> None:
    plan: dict[str, Any] = {"tier": "free", "grants": {"quotas": {"api_calls": {"limit": 5}}}}
    missing = await harness.http.put(
        f"/v1/customers/{uuid.uuid4()}/usage-plan", json=plan, headers=seller.secret
    )
    assert missing.status_code == 404
    account = await seller.customer()
    path = f"/v1/customers/{account}/usage-plan"
    negative = {"tier": "free", "grants": {"quotas": {"api_calls": {"limit": -1}}}}
    assert (await harness.http.put(path, json=negative, headers=seller.secret)).status_code == 422
    assert (await harness.http.put(path, json=plan, headers=seller.secret)).status_code == 200
    answer = await seller.record(account)
    assert (answer.json()["source"], answer.json()["tier"], answer.json()["limit"]) == (
        "assigned", "free", 5,
    )  # fmt: skip
    # A subscription granting the feature takes precedence over the assigned tier.
    await harness.publish(subscription(account, 500))
    await harness.until(lambda: harness.fetchval(
        "SELECT 1 FROM entitlements WHERE account_id = $1", account))  # fmt: skip
    paid = await seller.record(account)
    assert (paid.json()["source"], paid.json()["limit"]) == ("subscription", 500)
    assert (await harness.http.delete(path, headers=seller.secret)).status_code == 204
    assert (await harness.http.delete(path, headers=seller.secret)).status_code == 404


async def threshold_events(h: Harness, account: UUID) -> list[tuple[int, int, str]]:
    """(threshold, used, period start) of the customer's events in the outbox."""
    rows = await h.fetch(
        "SELECT payload FROM outbox WHERE subject = 'licensing.usage.threshold_reached.v1'"
        " AND payload->>'account_id' = $1",
        str(account),
    )
    payloads = [json.loads(r["payload"]) for r in rows]
    return sorted((p["threshold"], p["used"], p["period_start"][:10]) for p in payloads)


async def test_each_threshold_is_announced_once_per_period_by_the_record_reaching_it(
    harness: Harness, seller: Seller
) -> None:
    account = await seller.customer()
    plan = {"tier": "free", "grants": {"quotas": {"api_calls": {"limit": 10}}}}
    await harness.http.put(f"/v1/customers/{account}/usage-plan", json=plan, headers=seller.secret)
    january = datetime(2027, 1, 20, tzinfo=UTC)
    harness.app.state.context.usage_clock = lambda: january
    answers = await asyncio.gather(*(seller.record(account, key=f"k{n}") for n in range(30)))
    assert Counter(a.status_code for a in answers) == {200: 10, 403: 20}
    assert await threshold_events(harness, account) == [(80, 8, "2027-01-01"),
                                                        (100, 10, "2027-01-01")]  # fmt: skip
    # Down below both and up again: nothing more this period.
    for accepted in [a for a in answers if a.status_code == 200][:3]:
        path = f"/v1/usage/{accepted.json()['record_id']}/revert"
        assert (await harness.http.post(path, headers=seller.secret)).status_code == 200
    for _ in range(3):
        assert (await seller.record(account)).status_code == 200
    assert len(await threshold_events(harness, account)) == 2
    # A new period announces them again.
    harness.app.state.context.usage_clock = lambda: datetime(2027, 2, 3, tzinfo=UTC)
    for _ in range(8):
        await seller.record(account)
    assert (80, 8, "2027-02-01") in await threshold_events(harness, account)
    assert len(await threshold_events(harness, account)) == 3
    # The relay publishes them.
    published = await harness.until(lambda: harness.fetchval(
        "SELECT count(*) = 3 FROM outbox WHERE subject = 'licensing.usage.threshold_reached.v1'"
        " AND published_at IS NOT NULL"))  # fmt: skip
    assert published


async def test_a_seller_chooses_its_thresholds(harness: Harness, seller: Seller) -> None:
    record = SellerChanged(
        seller_id=SELLER, mode="live", slug=SLUG, name="Usage seller", signup_policy="open",
        status="active", version=1001, plan_status="active",
        settings=SellerSettings(upgrade_url=UPGRADE, usage_thresholds=[25, 50]),
    )  # fmt: skip
    h = harness
    await h.js.publish(
        h.ns.subject(record.publish_subject()), record.to_json(), stream=h.ns.stream(SELLERS)
    )
    book = h.app.state.context.sellers

    async def held() -> bool:
        return bool(book.by_id(SELLER).version == 1001)

    await h.until(held)
    account = await seller.subscriber(limit=4)
    for _ in range(4):
        await seller.record(account)
    assert [t for t, _, _ in await threshold_events(h, account)] == [25, 50]


async def test_a_record_answered_in_front_of_the_stack_is_the_routes_answer(
    harness: Harness, seller: Seller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret key's record is answered by the fast path (usage/fast_path.py); a
    customer's token goes down the full stack. Both answers carry the same members and the
    same headers."""
    from tessera.licensing.usage.fast_path import RecordFastPath

    answered: list[bool] = []
    original = RecordFastPath.answer

    async def spy(self: RecordFastPath, scope: Any, body: bytes) -> Any:
        answer = await original(self, scope, body)
        answered.append(answer is not None)
        return answer

    monkeypatch.setattr(RecordFastPath, "answer", spy)
    fast_customer = await seller.subscriber(limit=5, rate=100)
    stack_customer = await seller.subscriber(limit=5, rate=100)
    fast = await seller.record(fast_customer, key="front-1")
    body = {"feature": "api_calls", "idempotency_key": "stack-1"}
    stack = await harness.http.post("/v1/usage", json=body, headers=seller.token(stack_customer))
    assert answered == [True, False], "the secret key's record answered in front, not the token's"
    assert (fast.status_code, stack.status_code) == (200, 200)
    assert fast.json().keys() == stack.json().keys()
    assert {k: v for k, v in fast.json().items() if k not in ("customer", "record_id")} == {
        k: v for k, v in stack.json().items() if k not in ("customer", "record_id")
    }
    assert set(fast.headers) == set(stack.headers)

    def without_resets(field: str) -> str:
        return re.sub(r";t=\d+", "", field)  # seconds to the reset: the two ran apart

    assert without_resets(fast.headers["RateLimit"]) == without_resets(stack.headers["RateLimit"])
    assert fast.headers["RateLimit-Policy"] == stack.headers["RateLimit-Policy"]
    assert fast.headers["content-type"] == stack.headers["content-type"] == "application/json"
    replay = await seller.record(fast_customer, key="front-1")
    assert (replay.json()["replayed"], replay.json()["record_id"]) == (
        True, fast.json()["record_id"],
    )  # fmt: skip


async def test_a_refusal_handed_to_the_stack_counts_against_the_rate_once(
    harness: Harness, seller: Seller
) -> None:
    """Over the limit, the fast path hands the record to the full stack, which renders the
    403: the tier's rate counts that record once, not once per layer."""
    account = await seller.subscriber(limit=1, rate=3)
    answers = [(await seller.record(account)).status_code for _ in range(4)]
    # 1 counted, 2 refused over the limit (each one hit of the rate), the 4th over the rate.
    assert answers == [200, 403, 403, 429]
    assert await used(harness, account) == 1
