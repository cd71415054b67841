"""Faults across billing, auth and licensing: nothing lost, nothing doubled.

The three services run in-process on a NATS of the test's own and real Postgres and Redis.
Purchases arrive as signed Stripe webhooks on billing's ingress, the way Stripe sends them
(a 503 is retried, as Stripe retries). Then something breaks — licensing is down, NATS
restarts, Postgres drops every connection, Stripe repeats and reorders itself — and the end
state must be exactly what the purchases call for: one account, one user and one license
per seat, each announced once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import nats
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from tessera.auth.app import create_app as create_auth
from tessera.auth.settings import AuthSettings
from tessera.billing.app import create_app as create_billing
from tessera.billing.checkout import stripe_shapes as shapes
from tessera.billing.settings import BillingSettings
from tessera.devstack.infra import free_port
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.licenses import keyformat
from tessera.licensing.settings import LicensingSettings
from tessera.shared.events import topology
from tessera.shared.events.topology import (
    BILLING,
    LICENSING,
    STREAMS,
    WEBHOOKS,
    Namespace,
    Stream,
)
from tessera.shared.messaging import ensure_stream, stream_config
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration

CATALOG = Path(__file__).resolve().parents[1] / "deploy" / "catalog.json"
SECRET = "whsec_test_faults"
SKU = "chartgpt-lifetime"
PRICE = 14900
# Each declares the streams it owns, then waits for those it reads: billing for auth's,
# auth and licensing for billing's (and licensing for auth's), so none waits alone.
ORDER = ("billing", "auth", "licensing")
ISSUED = "licensing.license.issued.v1"
REVOKED = "licensing.license.revoked.v1"
PROBLEM = "application/problem+json"
DROPS = 4  # rounds of pg_terminate_backend while requests race them


# --- Stripe, as far as these tests need it -------------------------------------------------


@dataclass(frozen=True)
class Purchase:
    """One buyer's paid checkout, and the Stripe ids its later events refer to."""

    email: str
    quantity: int
    session: str = field(default_factory=lambda: shapes.stripe_id("cs"))
    payment_intent: str = field(default_factory=lambda: shapes.stripe_id("pi"))
    customer: str = field(default_factory=lambda: shapes.stripe_id("cus"))
    charge: str = field(default_factory=lambda: shapes.stripe_id("ch"))

    @property
    def amount(self) -> int:
        return PRICE * self.quantity

    def completed(self) -> dict[str, Any]:
        session = shapes.checkout_session(
            session_id=self.session, email=self.email, sku=SKU, quantity=self.quantity,
            amount_total=self.amount, currency="usd", customer=self.customer,
            payment_intent=self.payment_intent,
        )  # fmt: skip
        return shapes.event("checkout.session.completed", session)

    def refunded(self, amount: int) -> dict[str, Any]:
        charge = shapes.charge(
            charge_id=self.charge, amount=self.amount, currency="usd", customer=self.customer,
            payment_intent=self.payment_intent, amount_refunded=amount,
        )  # fmt: skip
        return shapes.event("charge.refunded", charge)

    def dispute(self, status: str) -> dict[str, Any]:
        dispute = shapes.dispute(
            dispute_id=f"dp_{self.charge}", charge_id=self.charge,
            payment_intent=self.payment_intent, amount=self.amount, currency="usd",
            status=status,
        )  # fmt: skip
        opened = status in ("needs_response", "warning_needs_response")
        return shapes.event(
            "charge.dispute.created" if opened else "charge.dispute.closed", dispute
        )


def buyers(prefix: str, n: int, quantities: Iterable[int] = (1,)) -> list[Purchase]:
    sizes = list(quantities)
    return [Purchase(f"{prefix}{i}@example.com", sizes[i % len(sizes)]) for i in range(n)]


# --- The stack --------------------------------------------------------------------------------


def build(name: str, url: str, infra: InfraSettings, licensing: dict[str, Any]) -> FastAPI:
    if name == "billing":
        settings = BillingSettings(
            database_url=url, catalog_file=CATALOG, stripe_webhook_secrets=[SecretStr(SECRET)]
        )
        return create_billing(settings, infra)
    if name == "auth":
        # Welcome mails go nowhere (a closed port): the sender retries them, harmlessly.
        return create_auth(AuthSettings(database_url=url, smtp_port=free_port()), infra)
    return create_licensing(
        LicensingSettings(database_url=url, gc_gen0_threshold=0, **licensing), infra
    )


@dataclass
class Stack:
    infra: InfraSettings
    nats: Any
    urls: dict[str, str]
    running: Any
    apps: dict[str, FastAPI] = field(default_factory=dict)
    lives: dict[str, contextlib.AsyncExitStack] = field(default_factory=dict)
    # Every answer billing's ingress gave, retries included.
    answers: list[int] = field(default_factory=list)
    # Licensing settings of this test's own (the defaults otherwise).
    licensing: dict[str, Any] = field(default_factory=dict)

    @property
    def ns(self) -> Namespace:
        return Namespace(self.infra.namespace)

    async def start(self, name: str, *, ready: bool = True) -> FastAPI:
        """Start `name`; with `ready`, return once it has joined NATS (its topology)."""
        app = build(name, self.urls[name], self.infra, self.licensing)
        life = contextlib.AsyncExitStack()
        await life.enter_async_context(self.running(app))
        self.lives[name] = life
        self.apps[name] = app
        if ready:
            await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
        return app

    async def stop(self, name: str) -> None:
        self.apps.pop(name)
        await self.lives.pop(name).aclose()

    async def close(self) -> None:
        for name in reversed(ORDER):
            if name in self.lives:
                await self.stop(name)

    def client(self, name: str) -> httpx.AsyncClient:
        # raise_app_exceptions=False: an unhandled error must show as the 500 a client sees.
        transport = httpx.ASGITransport(app=self.apps[name], raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url=f"http://{name}", timeout=30)

    async def post_webhook(self, event: dict[str, Any]) -> httpx.Response:
        """One delivery attempt, signed as Stripe signs."""
        body, header = shapes.signed(event, SECRET)
        async with self.client("billing") as client:
            response = await client.post(
                "/webhooks/stripe",
                content=body,
                headers={"stripe-signature": header, "content-type": "application/json"},
            )
        self.answers.append(response.status_code)
        return response

    async def deliver(self, event: dict[str, Any]) -> None:
        """Deliver as Stripe does: a 503 is retried a little later, until it is taken."""
        for _ in range(100):
            response = await self.post_webhook(event)
            if response.status_code != 503:
                assert response.is_success, response.text
                return
            assert response.headers["content-type"] == PROBLEM
            await asyncio.sleep(0.1)
        raise AssertionError(f"billing never took {event['id']}")

    async def rows(self, name: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.urls[name])
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def value(self, name: str, sql: str, *args: Any) -> Any:
        return (await self.rows(name, sql, *args))[0][0]

    async def published(self, stream: Stream, subject: str) -> list[dict[str, Any]]:
        """Every message on `subject` in the stream, read through an ephemeral consumer."""
        nc = await nats.connect(self.nats.url)
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe(self.ns.subject(subject), stream=self.ns.stream(stream))
            found: list[dict[str, Any]] = []
            while True:
                try:
                    batch = await sub.fetch(200, timeout=0.3)
                except (TimeoutError, nats.errors.TimeoutError):
                    break
                found.extend(json.loads(m.data) for m in batch)
            reader = await sub.consumer_info()
            await sub.unsubscribe()
            await js.delete_consumer(self.ns.stream(stream), reader.name)
            return found
        finally:
            await nc.close()

    async def settled(self) -> bool:
        """Nothing left to do anywhere: every outbox published, every consumer caught up."""
        for name in ORDER:
            if await self.value(name, "SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                return False
        nc = await nats.connect(self.nats.url)
        try:
            js = nc.jetstream()
            for stream in STREAMS:
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    for info in await js.consumers_info(self.ns.stream(stream)):
                        if info.config.durable_name is None:
                            continue  # a reader's ephemeral consumer, not a service's
                        if info.num_pending or info.num_ack_pending or info.num_redelivered:
                            return False
        finally:
            await nc.close()
        return True


@contextlib.asynccontextmanager
async def running_stack(
    database_factory: Any, own_nats: Any, infra_on: Any, running: Any, **licensing: Any
) -> AsyncIterator[Stack]:
    urls = {name: await database_factory(name) for name in ORDER}
    built = Stack(infra_on(own_nats.url), own_nats, urls, running, licensing=licensing)
    # Auth consumes webhooks' stream; webhooks is not run here, so stand in for its owner.
    nc = await nats.connect(own_nats.url)
    try:
        await ensure_stream(nc.jetstream(), stream_config(WEBHOOKS, built.ns))
    finally:
        await nc.close()
    try:
        for name in ORDER:
            await built.start(name, ready=False)
        for app in built.apps.values():
            await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
        yield built
    finally:
        await built.close()


@pytest.fixture
async def stack(
    database_factory: Any, own_nats: Any, infra_on: Any, running: Any
) -> AsyncIterator[Stack]:
    async with running_stack(database_factory, own_nats, infra_on, running) as built:
        yield built


@pytest.fixture
async def racing_stack(
    database_factory: Any, own_nats: Any, infra_on: Any, running: Any
) -> AsyncIterator[Stack]:
    """The stack with licensing's per-address limit out of reach of this test's own app
    checks, which validate from one address (127.0.0.1) as fast as the loop lets them for the
    whole racing phase (five 0.25 s pauses plus four connection drops, about 2 s). Counted
    from a Redis MONITOR of each run's own `rls:ip` key, no other key involved: passing runs
    sent 267, 366, 421, 438, 439 and 444 validates (about 230 a second); a run on a quicker
    moment reached the default 600 a minute on its own and got 429 from then on. So one run
    legitimately meets the limit: this test only raises it, every other test keeps the
    defaults."""
    async with running_stack(
        database_factory, own_nats, infra_on, running, rate_per_ip=1_000_000
    ) as built:
        yield built


@pytest.fixture
def quick_redelivery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every durable consumer with a 3 s ack wait instead of 30 s. An ack lost to a NATS
    restart is redelivered after the ack wait: this way the test sees that redelivery
    happen (and change nothing) within its time."""
    quick = tuple(
        dataclasses.replace(s, ack_wait=timedelta(seconds=3)) for s in topology.SUBSCRIPTIONS
    )
    monkeypatch.setattr(topology, "SUBSCRIPTIONS", quick)


@pytest.fixture
async def restartable_stack(
    quick_redelivery: None, database_factory: Any, own_nats: Any, infra_on: Any, running: Any
) -> AsyncIterator[Stack]:
    async with running_stack(database_factory, own_nats, infra_on, running) as built:
        yield built


# --- What "nothing lost, nothing doubled" means -----------------------------------------------


async def exactly_once(stack: Stack, purchases: list[Purchase]) -> str:
    """'' when every purchase is one paid order, one account, one user and one license per
    seat; otherwise what is still missing or extra (for the failure message)."""
    orders = await stack.rows(
        "billing", "SELECT id, email, seats, account_id, checkout_session_id FROM orders"
    )
    sessions = {p.session: p for p in purchases}
    if sorted(o["checkout_session_id"] for o in orders) != sorted(sessions):
        return f"{len(orders)} orders for {len(purchases)} purchases"
    if any(o["account_id"] is None for o in orders):
        return "an order is not provisioned yet"
    accounts = await stack.rows("billing", "SELECT id, email FROM accounts")
    emails = {p.email for p in purchases}
    if sorted(a["email"] for a in accounts) != sorted(emails):
        return f"{len(accounts)} accounts for {len(emails)} buyers"
    users = await stack.rows("auth", "SELECT account_id, email FROM users")
    if sorted((u["account_id"], u["email"]) for u in users) != sorted(
        (a["id"], a["email"]) for a in accounts
    ):
        return f"{len(users)} users for {len(accounts)} accounts"
    seats = await stack.rows("licensing", "SELECT order_id, seat FROM licenses")
    wanted = [(o["id"], s) for o in orders for s in range(1, o["seats"] + 1)]
    if sorted(seats) != sorted(wanted):
        return f"{len(seats)} licenses for {len(wanted)} seats"
    return ""


async def each_announced_once(stack: Stack) -> None:
    """Every account, paid order, user and license was published exactly once."""
    accounts = await stack.rows("billing", "SELECT id FROM accounts")
    orders = await stack.rows("billing", "SELECT id FROM orders WHERE account_id IS NOT NULL")
    created = await stack.published(BILLING, "billing.account.created.v1")
    paid = await stack.published(BILLING, "billing.order.paid.v1")
    assert sorted(UUID(e["account_id"]) for e in created) == sorted(a["id"] for a in accounts)
    assert sorted(UUID(e["order_id"]) for e in paid) == sorted(o["id"] for o in orders)
    licenses = await stack.rows("licensing", "SELECT id FROM licenses")
    issued = await stack.published(LICENSING, ISSUED)
    assert sorted(UUID(e["license_id"]) for e in issued) == sorted(r["id"] for r in licenses)
    users = await stack.value("auth", "SELECT count(*) FROM users")
    user_events = await stack.value(
        "auth", "SELECT count(*) FROM outbox WHERE subject = 'auth.user.created.v1'"
    )
    assert user_events == users


async def reaches_exactly_once(
    stack: Stack, purchases: list[Purchase], eventually: Any, timeout: float = 30
) -> None:
    async def done() -> bool:
        return await exactly_once(stack, purchases) == ""

    try:
        await eventually(done, timeout=timeout)
    except AssertionError:
        raise AssertionError(await exactly_once(stack, purchases)) from None
    # Done is not yet quiet: wait until nothing is in flight, then look again for doubles.
    await eventually(stack.settled, timeout=timeout)
    assert await exactly_once(stack, purchases) == ""
    await each_announced_once(stack)


async def count_is(read: Callable[[], Awaitable[int]], expected: int) -> bool:
    return await read() == expected


async def pending_for(stack: Stack, durable: str) -> int:
    nc = await nats.connect(stack.nats.url)
    try:
        info = await nc.jetstream().consumer_info(
            stack.ns.stream(BILLING), f"{stack.ns.prefix}__{durable}"
        )
        return int(info.num_pending)
    finally:
        await nc.close()


# --- 1. Licensing is down while purchases arrive ----------------------------------------------


async def test_purchases_made_while_licensing_is_down_are_licensed_once_when_it_returns(
    stack: Stack, eventually: Any
) -> None:
    first = Purchase("early@example.com", 2)
    await stack.deliver(first.completed())
    await reaches_exactly_once(stack, [first], eventually)

    await stack.stop("licensing")
    during = buyers("while-down", 6, quantities=(1, 3, 2))
    for purchase in during:
        await stack.deliver(purchase.completed())
    # Billing and auth carry on; licensing's paid orders wait in its durable consumer.
    await eventually(
        lambda: count_is(
            lambda: pending_for(stack, "licensing__billing_order_paid_v1"), len(during)
        ),
        timeout=20,
    )
    await eventually(
        lambda: count_is(
            lambda: stack.value("auth", "SELECT count(*) FROM users"), 1 + len(during)
        ),
        timeout=20,
    )
    assert await stack.value("licensing", "SELECT count(*) FROM licenses") == 2

    await stack.start("licensing")
    everyone = [first, *during]
    await reaches_exactly_once(stack, everyone, eventually)
    seats = sum(p.quantity for p in everyone)
    assert len(await stack.published(LICENSING, ISSUED)) == seats
    assert all(200 <= status < 300 for status in stack.answers)


# --- 2. NATS restarts while purchases flow ----------------------------------------------------


async def test_a_nats_restart_mid_stream_loses_and_doubles_nothing(
    restartable_stack: Stack, eventually: Any
) -> None:
    stack = restartable_stack
    purchases: list[Purchase] = []
    stop = asyncio.Event()

    async def stripe() -> None:
        while not stop.is_set():
            purchase = Purchase(f"restart{len(purchases)}@example.com", 1 + len(purchases) % 2)
            await stack.deliver(purchase.completed())
            purchases.append(purchase)
            await asyncio.sleep(0.05)

    async def delivered(n: int) -> bool:
        return len(purchases) >= n

    sender = asyncio.create_task(stripe())
    try:
        # Stop NATS once licenses come out the far end: purchases are mid-stream.
        await eventually(
            lambda: _at_least(stack.value("licensing", "SELECT count(*) FROM licenses"), 3),
            timeout=20,
        )
        stack.nats.stop()
        # Purchases keep arriving while it is down (billing's ingress needs only Postgres) ...
        while_down = len(purchases) + 5
        await eventually(lambda: delivered(while_down), timeout=20)
        stack.nats.start()
        # ... and after it is back.
        once_back = len(purchases) + 5
        await eventually(lambda: delivered(once_back), timeout=20)
    finally:
        stop.set()
        await sender
    await reaches_exactly_once(stack, purchases, eventually)
    assert all(200 <= status < 300 for status in stack.answers)


async def _at_least(value: Awaitable[int], n: int) -> bool:
    return await value >= n


async def _truthy(value: bool) -> bool:
    return value


# --- 3. Postgres drops every connection -------------------------------------------------------


def database_of(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


async def terminate_backends(stack: Stack, spare: Iterable[int] = ()) -> int:
    """pg_terminate_backend on every connection the services hold (not the test's own)."""
    conn = await asyncpg.connect(stack.urls["billing"])
    try:
        killed = await conn.fetch(
            """
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = ANY($1::text[]) AND pid <> pg_backend_pid()
               AND NOT pid = ANY($2::int[])
            """,
            [database_of(u) for u in stack.urls.values()],
            list(spare),
        )
        return len(killed)
    finally:
        await conn.close()


async def blocked(stack: Stack, name: str, statement: str) -> int:
    """How many of the service's connections wait on a lock inside `statement`."""
    return int(
        await stack.value(
            name,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND strpos(query, $1) > 0",
            statement,
        )
    )


async def until_blocked(stack: Stack, name: str, statement: str, eventually: Any) -> None:
    await eventually(lambda: _at_least(blocked(stack, name, statement), 1), timeout=20)


@contextlib.asynccontextmanager
async def table_locked(url: str, table: str) -> AsyncIterator[int]:
    """Hold an exclusive lock on `table`, so whatever touches it waits inside its query."""
    conn = await asyncpg.connect(url)
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield int(conn.get_server_pid())
        await tx.rollback()
    finally:
        await conn.close()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"]
    assert response.json()["type"] == "urn:tessera:problem:dependency-unavailable"


async def validate(stack: Stack, key: str) -> httpx.Response:
    async with stack.client("licensing") as client:
        return await client.post(
            "/v1/licenses/validate", json={"key": key, "fingerprint": "machine-faults-1"}
        )


async def activate(stack: Stack, key: str) -> httpx.Response:
    async with stack.client("licensing") as client:
        return await client.post(
            "/v1/licenses/activate", json={"key": key, "fingerprint": "machine-faults-1"}
        )


async def ask_link(stack: Stack, email: str) -> httpx.Response:
    async with stack.client("auth") as client:
        return await client.post("/v1/magic-links", json={"email": email, "browser": "b" * 32})


async def test_dropped_postgres_connections_are_503s_then_recovered_with_nothing_lost(
    stack: Stack, eventually: Any
) -> None:
    warm = buyers("warm", 3, quantities=(1, 2))
    for purchase in warm:
        await stack.deliver(purchase.completed())
    await reaches_exactly_once(stack, warm, eventually)

    # Requests and a consumer caught mid-query: each holds a connection that is killed under it.
    stuck = buyers("stuck", 3, quantities=(2, 1))
    retried = Purchase("retried@example.com", 1)
    async with contextlib.AsyncExitStack() as locks:
        spare = [await locks.enter_async_context(table_locked(stack.urls["licensing"], "licenses"))]
        for purchase in stuck:
            await stack.deliver(purchase.completed())
        await until_blocked(stack, "licensing", "INSERT INTO licenses", eventually)
        spare.append(
            await locks.enter_async_context(table_locked(stack.urls["billing"], "stripe_events"))
        )
        spare.append(
            await locks.enter_async_context(table_locked(stack.urls["auth"], "email_outbox"))
        )
        webhook = asyncio.create_task(stack.post_webhook(retried.completed()))
        activated = asyncio.create_task(activate(stack, keyformat.generate()))
        linked = asyncio.create_task(ask_link(stack, "someone@example.com"))
        await until_blocked(stack, "billing", "INSERT INTO stripe_events", eventually)
        await until_blocked(stack, "licensing", "FOR UPDATE OF l", eventually)
        await until_blocked(stack, "auth", "INSERT INTO email_outbox", eventually)
        assert await terminate_backends(stack, spare) >= 4
    for request in (activated, linked):
        assert_unavailable(await request)
    # The webhook's fast path hands a write that failed to the full stack, which tries once
    # more on a fresh connection: recorded then, or a 503 if that fails too; never a 500.
    delivered = await webhook
    if delivered.status_code != 200:
        assert_unavailable(delivered)
    else:
        assert delivered.json()["status"] == "received"

    # Stripe retries; the others ask again: all answered, on fresh connections.
    await stack.deliver(retried.completed())
    again = await activate(stack, keyformat.generate())
    assert again.status_code == 200, again.text
    assert again.json()["code"] == "NOT_FOUND"
    assert (await validate(stack, keyformat.generate())).json()["code"] == "NOT_FOUND"
    assert (await ask_link(stack, "someone-else@example.com")).status_code == 202

    # A second drop, of idle pools and listeners this time, then more purchases.
    assert await terminate_backends(stack) >= 3
    later = buyers("later", 3, quantities=(1, 3))
    for purchase in later:
        await stack.deliver(purchase.completed())

    await reaches_exactly_once(stack, [*warm, *stuck, retried, *later], eventually)
    assert 500 not in stack.answers
    for name in ORDER:
        async with stack.client(name) as client:
            ready = await client.get("/readyz")
        assert ready.status_code == 200, (name, ready.text)
    # validate's cache listens again (it goes quiet, not wrong, while its listener is away).
    cache = stack.apps["licensing"].state.context.cache
    await eventually(lambda: _truthy(cache.live), timeout=10)


async def test_requests_racing_repeated_drops_get_503s_never_500s(
    racing_stack: Stack, eventually: Any
) -> None:
    # A connection the server has just terminated can still be handed out by the pool, for
    # the moment before its socket closes; requests that draw one must fail cleanly too.
    stack = racing_stack
    purchases: list[Purchase] = []
    desktop: list[httpx.Response] = []
    stop = asyncio.Event()

    async def stripe() -> None:
        while not stop.is_set():
            purchase = Purchase(f"racing{len(purchases)}@example.com", 1)
            purchases.append(purchase)
            await stack.deliver(purchase.completed())
            await asyncio.sleep(0.02)

    async def app_checks() -> None:
        while not stop.is_set():
            desktop.append(await validate(stack, keyformat.generate()))

    clients = [asyncio.create_task(stripe()) for _ in range(2)]
    clients += [asyncio.create_task(app_checks()) for _ in range(3)]
    try:
        for _ in range(DROPS):
            await asyncio.sleep(0.25)
            await terminate_backends(stack)
        await asyncio.sleep(0.25)
    finally:
        stop.set()
        await asyncio.gather(*clients)

    assert 500 not in stack.answers
    for response in desktop:
        if response.status_code != 200:
            assert_unavailable(response)
    assert desktop[-1].status_code == 200
    await reaches_exactly_once(stack, purchases, eventually)


# --- 4. Stripe repeats itself, out of order ---------------------------------------------------


async def test_every_event_twice_and_shuffled_still_ends_in_the_right_state(
    stack: Stack, eventually: Any
) -> None:
    refunded = Purchase("refunded@example.com", 2)
    disputed_won = Purchase("won@example.com", 1)
    disputed_lost = Purchase("lost@example.com", 1)
    partly_refunded = Purchase("partial@example.com", 1)
    plain = Purchase("plain@example.com", 3)
    early_refund = refunded.refunded(refunded.amount)
    events = [
        early_refund,
        refunded.completed(),
        disputed_won.completed(),
        disputed_won.dispute("needs_response"),
        disputed_won.dispute("won"),
        disputed_lost.completed(),
        disputed_lost.dispute("needs_response"),
        disputed_lost.dispute("lost"),
        partly_refunded.completed(),
        partly_refunded.refunded(5000),
        plain.completed(),
    ]
    deliveries = events * 2
    random.Random(9).shuffle(deliveries)
    # The refund comes before its purchase ever does.
    deliveries.remove(early_refund)
    deliveries.insert(0, early_refund)
    for event in deliveries:
        await stack.deliver(event)

    purchases = [refunded, disputed_won, disputed_lost, partly_refunded, plain]
    want_orders = {
        refunded.session: ("refunded", refunded.amount, None),
        disputed_won.session: ("paid", 0, "won"),
        disputed_lost.session: ("paid", 0, "lost"),
        partly_refunded.session: ("paid", 5000, None),
        plain.session: ("paid", 0, None),
    }
    want_licenses = {
        refunded.session: ["revoked", "revoked"],
        disputed_won.session: ["active"],
        disputed_lost.session: ["revoked"],
        partly_refunded.session: ["active"],
        plain.session: ["active", "active", "active"],
    }

    async def end_state() -> bool:
        return await orders_by_session(stack) == want_orders and (
            await licenses_by_session(stack) == want_licenses
        )

    await eventually(end_state, timeout=30)
    await reaches_exactly_once(stack, purchases, eventually)
    assert await end_state()
    assert await stack.value("billing", "SELECT count(*) FROM stripe_events") == len(events)
    revoked = await stack.rows("licensing", "SELECT id FROM licenses WHERE status = 'revoked'")
    announced = await stack.published(LICENSING, REVOKED)
    assert sorted(UUID(e["license_id"]) for e in announced) == sorted(r["id"] for r in revoked)


async def orders_by_session(stack: Stack) -> dict[str, tuple[str, int, str | None]]:
    rows = await stack.rows(
        "billing",
        "SELECT checkout_session_id, status, amount_refunded, dispute_status FROM orders",
    )
    return {
        r["checkout_session_id"]: (r["status"], r["amount_refunded"], r["dispute_status"])
        for r in rows
    }


async def licenses_by_session(stack: Stack) -> dict[str, list[str]]:
    sessions = {
        r["id"]: r["checkout_session_id"]
        for r in await stack.rows("billing", "SELECT id, checkout_session_id FROM orders")
    }
    found: dict[str, list[str]] = {}
    for row in await stack.rows(
        "licensing", "SELECT order_id, status FROM licenses ORDER BY order_id, seat"
    ):
        found.setdefault(sessions.get(row["order_id"], "?"), []).append(row["status"])
    return found
