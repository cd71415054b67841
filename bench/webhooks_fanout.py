"""Webhooks' fan-out: bus events delivered to 100 endpoints (real local receivers that
verify every signature), beside a bare FastAPI endpoint measured in the same run.

    uv run python bench/webhooks_fanout.py --endpoints 100 --rate 5 --seconds 10 --burst 20 --rounds 3

The webhooks service runs as production runs it (its own process, uvicorn, its delivery
worker on, the default limits: `MAX_IN_FLIGHT` 64, `MAX_IN_FLIGHT_PER_ENDPOINT` 4); the
receivers are one uvicorn process serving `/r/{n}` for every endpoint (bench/webhooks_receiver.py).
The bench publishes `billing.order.paid.v1` on the bus as billing would and times each
delivery from the publish to its receipt, on the machine-wide monotonic clock.

- **Open loop**: `--rate` events a second for `--seconds` (each fanned out to every
  endpoint): latency p50/p99 from publish to receipt, and deliveries a second.
- **Burst**, alternated with the bare endpoint round after round: `--burst` events
  published at once; deliveries a second from the first publish to the last receipt.
- **Bare FastAPI**: `/echo` of bench/baseline.py driven with the same body by an asyncio
  httpx client with as many requests in flight as webhooks' worker allows (64): the most
  this machine gives one Python sender, beside what webhooks achieves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import harness
import httpx
import nats
from nats.js import JetStreamContext

from tessera.devstack.infra import bring_up
from tessera.shared.api_keys import generate
from tessera.shared.db.pool import ensure_database, with_database
from tessera.shared.events.auth import ApiKeyChanged, SellerChanged
from tessera.shared.events.billing import OrderPaid
from tessera.shared.events.topology import (
    APIKEYS,
    AUTH,
    BILLING,
    LICENSING,
    SELLERS,
    Namespace,
    Stream,
)
from tessera.shared.messaging import ensure_stream, stream_config

SELLER = uuid.uuid4()


@dataclass(frozen=True)
class Delivered:
    """One phase: deliveries received, publish-to-receipt latencies, and how long from the
    first publish to the last receipt."""

    deliveries: int
    expected: int
    latencies_ms: list[float]
    seconds: float
    refused: int

    @property
    def per_second(self) -> float:
        return self.deliveries / self.seconds if self.seconds else 0.0


async def publish(js: JetStreamContext, ns: Namespace, stream: Stream, event: Any) -> None:
    await js.publish(
        ns.subject(event.publish_subject()), event.to_json(), stream=ns.stream(stream),
        headers={"Nats-Msg-Id": str(event.event_id)},
    )  # fmt: skip


async def stand_in_for_producers(js: JetStreamContext, ns: Namespace) -> None:
    """The streams webhooks reads, and a seller with a paid plan and a live secret key, as
    billing, licensing and auth would publish them (none of them runs here)."""
    for stream in (BILLING, AUTH, LICENSING, APIKEYS, SELLERS):
        await ensure_stream(js, stream_config(stream, ns))


async def seller_key(js: JetStreamContext, ns: Namespace) -> str:
    seller = SellerChanged(
        seller_id=SELLER, mode="live", slug=f"bench-{SELLER.hex[:8]}", name="Bench seller",
        signup_policy="closed", status="active", version=1, plan_status="active",
    )  # fmt: skip
    await publish(js, ns, SELLERS, seller)
    issued = generate("secret", "live")
    key = ApiKeyChanged(
        seller_id=SELLER, mode="live", key_id=uuid.uuid4(), key_hash=issued.hash_hex,
        kind="secret", status="active", version=1,
    )  # fmt: skip
    await publish(js, ns, APIKEYS, key)
    return issued.plaintext


async def register(webhooks_url: str, receiver_url: str, key: str, count: int) -> dict[str, str]:
    """`count` endpoints through the seller API (once the key is known there); their secrets
    by endpoint number."""
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=webhooks_url, headers=headers, timeout=10) as http:
        deadline = time.monotonic() + 30
        while (await http.get("/v1/webhook-endpoints")).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the seller's key never worked at webhooks")
            await asyncio.sleep(0.2)
        found: dict[str, str] = {}
        for n in range(count):
            created = await http.post(
                "/v1/webhook-endpoints",
                json={"url": f"{receiver_url}/r/{n}", "event_types": ["order.paid"]},
            )
            created.raise_for_status()
            found[str(n)] = created.json()["secret"]
    return found


def order_paid(n: int) -> OrderPaid:
    return OrderPaid(
        order_id=uuid.uuid4(), account_id=uuid.uuid4(), email=f"buyer{n}@example.com",
        sku="tool-1y", quantity=1, amount_total=4900, currency="usd", product="tool",
        policy="tool-year", seats=1, seller_id=SELLER, mode="live",
        occurred_at=datetime.now(UTC),
    )  # fmt: skip


async def deliver(
    js: JetStreamContext,
    ns: Namespace,
    receiver: httpx.AsyncClient,
    endpoints: int,
    events: int,
    rate: float | None,
    timeout: float,
) -> Delivered:
    """Publish `events` (at `rate` a second, or all at once), wait until every endpoint has
    every one (or `timeout` passes), and time each receipt from its event's publish."""
    published: dict[str, float] = {}
    first = time.monotonic()
    for n in range(events):
        event = order_paid(n)
        published[f"evt_{event.event_id.hex}"] = time.monotonic()
        await publish(js, ns, BILLING, event)
        if rate:
            await asyncio.sleep(max(0.0, first + (n + 1) / rate - time.monotonic()))
    expected = events * endpoints
    receipts: list[tuple[int, str, float]] = []
    refused = 0
    deadline = time.monotonic() + timeout
    while len(receipts) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        taken = (await receiver.post("/receipts/take")).json()
        receipts += [tuple(r) for r in taken["receipts"]]  # type: ignore[misc]
        refused += taken["refused"]
    ours = [(hook, at) for _, hook, at in receipts if hook in published]
    latencies = [(at - published[hook]) * 1000 for hook, at in ours]
    last = max((at for _, at in ours), default=first)
    return Delivered(len(ours), expected, latencies, last - first, refused)


def bare(base_url: str, body: bytes, concurrency: int, duration: float) -> harness.Result:
    return asyncio.run(
        harness.drive(
            f"bare FastAPI (POST, same body, {concurrency} in flight)", base_url,
            lambda c, n: c.post("/echo", content=body), concurrency=concurrency,
            duration=duration,
        )
    )  # fmt: skip


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def line(name: str, result: Delivered) -> str:
    lost = (
        f", {result.expected - result.deliveries} missing"
        if result.deliveries < result.expected
        else ""
    )
    refused = f", {result.refused} refused signatures" if result.refused else ""
    return (
        f"{name}: {result.deliveries}/{result.expected} deliveries in {result.seconds:.1f} s "
        f"= {result.per_second:,.0f}/s; publish -> receipt {harness.summary(result.latencies_ms)}"
        f"{lost}{refused}"
    )


async def main(args: argparse.Namespace) -> None:
    run = secrets.token_hex(3)
    infra = bring_up(harness.REPO / ".dev" / "bench" / "infra")
    database = f"bench_webhooks_{run}"
    database_url = with_database(infra.postgres.url, database)
    await ensure_database(infra.postgres.url, database)
    namespace = f"bench{run}"
    ns = Namespace(namespace)
    nc = await nats.connect(infra.nats.url)
    js = nc.jetstream()
    env = {
        **infra.env(),
        "TESSERA_NAMESPACE": namespace,
        "TESSERA_LOG_LEVEL": "WARNING",
        "TESSERA_WEBHOOKS_DATABASE_URL": database_url,
        "TESSERA_WEBHOOKS_RATE_PER_SELLER_KEY": "1000000",
        "TESSERA_OTEL_CLIENT_SPANS": "false",
    }
    rounds: list[tuple[harness.Result, Delivered]] = []
    try:
        await stand_in_for_producers(js, ns)
        key = await seller_key(js, ns)
        with (
            harness.uvicorn_process("baseline:app", harness.free_port()) as base_url,
            harness.uvicorn_process("webhooks_receiver:app", harness.free_port()) as receiver_url,
            harness.uvicorn_process(
                "tessera.webhooks.app:create_app()", harness.free_port(), env
            ) as webhooks_url,
        ):
            found = await register(webhooks_url, receiver_url, key, args.endpoints)
            async with httpx.AsyncClient(base_url=receiver_url, timeout=10) as receiver:
                (await receiver.put("/secrets", json=found)).raise_for_status()
                warm = await deliver(js, ns, receiver, args.endpoints, 2, None, args.timeout)
                open_loop = await deliver(
                    js, ns, receiver, args.endpoints, round(args.rate * args.seconds),
                    args.rate, args.timeout,
                )  # fmt: skip
                body = json.dumps(order_paid(0).model_dump(mode="json")).encode()
                for _ in range(args.rounds):
                    b = await asyncio.to_thread(bare, base_url, body, 64, args.bare_seconds)
                    burst = await deliver(
                        js, ns, receiver, args.endpoints, args.burst, None, args.timeout
                    )
                    rounds.append((b, burst))
        print(f"{args.endpoints} endpoints (one receiver process verifying every signature)")
        print(line("warm-up (2 events)", warm))
        print(line(f"open loop, {args.rate:g} events/s for {args.seconds:g} s", open_loop))
        print(
            "| round | bare req/s | fan-out deliveries/s | fan-out / bare | burst p50 ms | burst p99 ms |"
        )
        print("|---|---|---|---|---|---|")
        for n, (b, burst) in enumerate(rounds, 1):
            print(
                f"| {n} | {b.rps:,.0f} | {burst.per_second:,.0f} | "
                f"{burst.per_second / b.rps:.0%} | {percentile(burst.latencies_ms, 50):,.0f} | "
                f"{percentile(burst.latencies_ms, 99):,.0f} |"
            )
        for b, burst in rounds:
            print(b.line())
            print(line(f"burst of {args.burst} events", burst))
        ratios = [burst.per_second / b.rps for b, burst in rounds]
        print(f"fan-out / bare, median of {args.rounds} rounds: {statistics.median(ratios):.0%}")
    finally:
        await nc.close()
        await harness.tear_down(infra, [database], namespace)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5, help="events/s in the open loop")
    parser.add_argument("--seconds", type=float, default=10, help="open loop duration")
    parser.add_argument("--burst", type=int, default=20, help="events published at once")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/burst rounds")
    parser.add_argument("--bare-seconds", type=float, default=5)
    parser.add_argument(
        "--timeout", type=float, default=120, help="longest wait for a phase's deliveries"
    )
    harness.add_server_option(parser)
    args = parser.parse_args()
    harness.use_server(args.server)
    asyncio.run(main(args))
