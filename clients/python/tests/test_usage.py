"""Usage through the client against licensing on a real port: records with idempotency
keys, checks, reads, reverts, refusals as typed exceptions, retries after a lost answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import UUID

import httpx
import pytest
from client_stack import Stack, until  # type: ignore[import-not-found]
from tessera_client import (
    FeatureNotEntitled,
    IdempotencyKeyReused,
    RateLimited,
    Tessera,
    UsageLimitExceeded,
    UsageRecord,
)

from tessera.auth.sellers import service as sellers
from tessera.devstack.infra import free_port

pytestmark = pytest.mark.integration
UPGRADE = "https://acme.example/upgrade"


async def a_customer(stack: Stack, email: str, limit: int | None, rate: int | None = 600) -> UUID:
    async with stack.client() as tessera:
        customer = await tessera.create_customer(email)
        await stack.assign_plan(tessera, customer.id, limit, rate)
    customer_id: UUID = customer.id
    return customer_id


async def with_upgrade_url(stack: Stack) -> None:
    """The seller sets its upgrade_url; wait until licensing's directory holds it."""
    async with stack.auth.pool.acquire() as conn, conn.transaction():
        await sellers.update_settings(conn, stack.seller.id, {"upgrade_url": UPGRADE})
    book = stack.apps["licensing"].state.context.sellers
    await until(15, lambda: book.by_id(stack.seller.id).settings.upgrade_url == UPGRADE)


async def test_record_replay_check_refuse_revert_and_read(stack: Stack) -> None:
    await with_upgrade_url(stack)
    customer = await a_customer(stack, "usage@example.com", limit=5)
    async with stack.client() as tessera:
        first = await tessera.record_usage(customer, "api_calls", idempotency_key="job-1")
        replay = await tessera.record_usage(customer, "api_calls", idempotency_key="job-1")
        fits = await tessera.check_usage(customer, "api_calls", 4)
        too_many = await tessera.check_usage(customer, "api_calls", 5)
        rest = await tessera.record_usage(customer, "api_calls", 4)
        with pytest.raises(UsageLimitExceeded) as over:
            await tessera.record_usage(customer, "api_calls")
        undone = await tessera.revert_usage(idempotency_key="job-1")
        undone_by_id = await tessera.revert_usage(rest.record_id)
        standing = await tessera.get_usage(customer)
    assert (first.used, first.limit, first.remaining, first.replayed) == (1, 5, 4, False)
    assert first.tier == "free" and first.source == "assigned"
    assert first.rate_limit["api_calls"].limit == 5
    assert first.rate_limit["api_calls"].remaining == 4
    window, reset = first.rate_limit["api_calls"].window, first.rate_limit["api_calls"].reset
    assert window is not None and reset is not None and 0 < reset <= window
    assert first.rate_limit["rate_per_minute"].limit == 600
    assert replay.replayed and replay.record_id == first.record_id and replay.used == 1
    assert fits.allowed and not too_many.allowed and fits.used == 1
    assert rest.used == 5 and rest.remaining == 0 and rest.idempotency_key.startswith("tc_")
    error = over.value
    assert (error.status, error.code, error.upgrade_url) == (403, "usage-limit-exceeded", UPGRADE)
    assert (error.used, error.limit, error.remaining) == (5, 5, 0)
    assert error.rate_limit["api_calls"].remaining == 0
    assert undone.record_id == first.record_id and undone.used == 4
    assert undone_by_id.used == 0
    usage = standing.feature("api_calls")
    assert usage is not None and (usage.used, usage.limit) == (0, 5)


async def test_a_feature_no_tier_meters_and_a_reused_key_are_typed(stack: Stack) -> None:
    await with_upgrade_url(stack)
    customer = await a_customer(stack, "typed@example.com", limit=5)
    async with stack.client() as tessera:
        with pytest.raises(FeatureNotEntitled) as unentitled:
            await tessera.record_usage(customer, "exports")
        await tessera.record_usage(customer, "api_calls", idempotency_key="same")
        with pytest.raises(IdempotencyKeyReused) as reused:
            await tessera.record_usage(customer, "api_calls", 2, idempotency_key="same")
    assert unentitled.value.upgrade_url == UPGRADE and unentitled.value.status == 403
    assert reused.value.status == 409


async def test_over_the_rate_is_rate_limited_with_retry_after(stack: Stack) -> None:
    customer = await a_customer(stack, "rate@example.com", limit=None, rate=2)
    async with stack.client() as tessera:
        await tessera.record_usage(customer, "api_calls")
        await tessera.record_usage(customer, "api_calls")
        with pytest.raises(RateLimited) as limited:
            await tessera.record_usage(customer, "api_calls")
        standing = await tessera.get_usage(customer)
    assert limited.value.status == 429 and limited.value.retry_after is not None
    assert 1 <= limited.value.retry_after <= 60
    assert standing.features[0].used == 2  # nothing counted for the refused one
    assert standing.features[0].limit is None


class LosesFirstAnswer(httpx.AsyncBaseTransport):
    """The network between the seller's server and licensing: the first usage record
    reaches licensing and is answered, and the answer is lost on the way back."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path == "/v1/usage":
            self.sent.append(json.loads(request.content))
            if len(self.sent) == 1:
                await response.aread()
                await response.aclose()
                raise httpx.ReadError("connection reset", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_lost_answer_is_retried_with_the_same_key_and_counted_once(stack: Stack) -> None:
    customer = await a_customer(stack, "lost@example.com", limit=5)
    network = LosesFirstAnswer()
    async with httpx.AsyncClient(transport=network) as http, stack.client(
        http=http, backoff=0.01
    ) as tessera:  # fmt: skip
        record = await tessera.record_usage(customer, "api_calls")
        standing = await tessera.get_usage(customer)
    assert len(network.sent) == 2 and network.sent[0] == network.sent[1]
    assert record.replayed and record.used == 1
    assert standing.features[0].used == 1


async def test_an_unreachable_service_is_tried_max_retries_times(stack: Stack) -> None:
    attempts: list[str] = []

    async def note(request: httpx.Request) -> None:
        attempts.append(request.url.path)

    dead = f"http://127.0.0.1:{free_port()}"
    async with httpx.AsyncClient(event_hooks={"request": [note]}) as http, stack.client(
        http=http, licensing_url=dead, billing_url=dead, max_retries=2, backoff=0.01
    ) as tessera:  # fmt: skip
        with pytest.raises(httpx.ConnectError):
            await tessera.record_usage(UUID(int=1), "api_calls")
        with pytest.raises(httpx.ConnectError):  # a checkout is not repeated
            await tessera.start_subscription_checkout("pro")
    assert attempts == ["/v1/usage"] * 3 + ["/v1/checkout/subscriptions"]


async def test_concurrent_records_stop_exactly_at_the_limit(stack: Stack) -> None:
    customer = await a_customer(stack, "burst@example.com", limit=10)
    async with stack.client() as tessera:
        burst = await asyncio.gather(
            *(tessera.record_usage(customer, "api_calls") for _ in range(25)),
            return_exceptions=True,
        )
        same = await asyncio.gather(
            *(tessera.record_usage(customer, "api_calls", idempotency_key="burst-0")
              for _ in range(10)),
            return_exceptions=True,
        )  # fmt: skip
    accepted = [r for r in burst if isinstance(r, UsageRecord)]
    refused = [r for r in burst if isinstance(r, UsageLimitExceeded)]
    assert len(accepted) == 10 and len(refused) == 15
    assert sorted(r.used for r in accepted) == list(range(1, 11))
    # Over the limit, a key never used before counts nothing and is refused each time.
    assert all(isinstance(r, UsageLimitExceeded) for r in same)


async def test_concurrent_retries_of_one_key_count_once(stack: Stack) -> None:
    customer = await a_customer(stack, "retries@example.com", limit=10)
    async with stack.client() as tessera:
        same = await asyncio.gather(
            *(tessera.record_usage(customer, "api_calls", idempotency_key="one")
              for _ in range(12))
        )  # fmt: skip
        standing = await tessera.get_usage(customer)
    assert len({r.record_id for r in same}) == 1
    assert sum(not r.replayed for r in same) == 1
    assert standing.features[0].used == 1


async def test_the_sync_client_records_and_checks(stack: Stack) -> None:
    customer = await a_customer(stack, "blocking@example.com", limit=3)

    def flow() -> tuple[int, bool]:
        with Tessera(stack.seller.secret_key, **stack.client_args()) as tessera:
            tessera.record_usage(customer, "api_calls", 2, idempotency_key="sync-1")
            tessera.record_usage(customer, "api_calls", 2, idempotency_key="sync-1")
            check = tessera.check_usage(customer, "api_calls", 2)
            try:
                tessera.record_usage(customer, "api_calls", 2)
            except UsageLimitExceeded as refused:
                return refused.used or 0, check.allowed
        raise AssertionError("not refused")

    assert await asyncio.to_thread(flow) == (2, False)
