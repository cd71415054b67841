"""Billing's webhook ingress under load, beside a bare FastAPI endpoint, and the time from
a webhook to `billing.order.paid.v1` on NATS.

    uv run python bench/billing_webhooks.py --duration 12 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import harness
import httpx
import nats

from tessera.billing.checkout import stripe_shapes as shapes
from tessera.devstack.infra import bring_up
from tessera.shared.db.pool import asyncpg_dsn, ensure_database, with_database

SECRET = "whsec_bench"  # noqa: S105 - a throwaway secret for a throwaway stack


@dataclass(frozen=True)
class Measured:
    result: harness.Result
    cpu: float  # the server's CPU seconds per request


def measured(url: str, drive: Callable[[], harness.Result]) -> Measured:
    cpu = harness.server_cpu_seconds(url)
    result = drive()
    return Measured(result, (harness.server_cpu_seconds(url) - cpu) / max(result.requests, 1))


async def applied_per_second(database_url: str, seconds: float) -> float:
    """How fast the workers take events out of `received` (applied or otherwise settled)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        query = "SELECT count(*) FROM stripe_events WHERE status = 'received'"
        before = await conn.fetchval(query)
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        after = await conn.fetchval(query)
        return float(before - after) / (time.perf_counter() - started)
    finally:
        await conn.close()


def purchase(n: int, run: str) -> dict[str, object]:
    session = shapes.checkout_session(
        session_id=f"cs_bench_{run}_{n}", email=f"buyer{n}.{run}@example.com",
        sku="chartgpt-lifetime", quantity=1, amount_total=14900, currency="usd",
        customer=f"cus_{run}_{n}", payment_intent=f"pi_{run}_{n}",
    )  # fmt: skip
    return shapes.event("checkout.session.completed", session)


async def webhook_to_order_paid(
    url: str, nats_url: str, namespace: str, run: str, rate: int, seconds: int, warmup: float
) -> tuple[list[float], list[float]]:
    """Send `rate` purchases a second and time each until its order.paid reaches NATS: first
    `warmup` seconds of them (a fresh process's first requests pay for connections and
    first-use code paths), then `seconds` of them. Returns both phases' latencies."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    nc = await nats.connect(nats_url)

    async def on_paid(msg: nats.aio.msg.Msg) -> None:
        email = json.loads(msg.data)["email"]
        if email in sent:
            latencies.append((time.perf_counter() - sent.pop(email)) * 1000)

    await nc.subscribe(f"{namespace}.billing.order.paid.v1", cb=on_paid)
    phases: list[list[float]] = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:

        async def one(n: int) -> None:
            event = purchase(n, run + "e2e")
            body, header = shapes.signed(event, SECRET)
            sent[f"buyer{n}.{run}e2e@example.com"] = time.perf_counter()
            await client.post(
                "/webhooks/stripe", content=body, headers={"stripe-signature": header}
            )

        first = 0
        for count in (round(rate * warmup), rate * seconds):
            tasks = []
            for n in range(first, first + count):
                tasks.append(asyncio.create_task(one(n)))
                await asyncio.sleep(1 / rate)
            first += count
            await asyncio.gather(*tasks)
            deadline = time.monotonic() + 10
            while sent and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a dict the callback drains
                await asyncio.sleep(0.05)
            if sent:
                print(f"  {len(sent)} purchases never reached order.paid within 10 s")
                sent.clear()
            phases.append(latencies[:])
            latencies.clear()
    await nc.close()
    return phases[0], phases[1]


async def main(args: argparse.Namespace) -> None:
    run = secrets.token_hex(3)
    infra = bring_up(harness.REPO / ".dev" / "bench" / "infra")
    database = f"bench_billing_{run}"
    database_url = with_database(infra.postgres.url, database)
    await ensure_database(infra.postgres.url, database)
    namespace = f"bench{run}"
    env = {
        **infra.env(),
        "TESSERA_NAMESPACE": namespace,
        "TESSERA_LOG_LEVEL": "WARNING",
        "TESSERA_BILLING_DATABASE_URL": database_url,
        "TESSERA_BILLING_STRIPE_WEBHOOK_SECRETS": SECRET,
        "TESSERA_BILLING_WEBHOOK_RATE_LIMIT": "10000000/minute",
        "TESSERA_BILLING_CATALOG_FILE": str(harness.REPO / "deploy" / "catalog.json"),
        "TESSERA_OTEL_CLIENT_SPANS": "true" if args.client_spans else "false",
    }
    body_size = len(shapes.signed(purchase(0, run), SECRET)[0])
    filler = b"x" * body_size
    use_wrk = harness.wrk_available() and not args.httpx
    rounds: list[tuple[Measured, Measured]] = []
    try:
        ingress_env = {**env, "TESSERA_BILLING_RUN_WORKERS": "false"}
        # The measured process only serves HTTP; a second one runs the applier, the
        # provisioner and the outbox relay (the deployment docs/operations.md describes).
        workers = contextlib.ExitStack()

        def start_workers() -> None:
            workers.enter_context(
                harness.uvicorn_process(
                    "tessera.billing.app:create_app()", harness.free_port(), env,
                    nice=args.workers_nice,
                )
            )  # fmt: skip

        with contextlib.ExitStack() as servers:
            servers.enter_context(workers)
            base_url = servers.enter_context(
                harness.uvicorn_process("baseline:app", harness.free_port())
            )
            start_workers()
            billing_url = servers.enter_context(
                harness.uvicorn_process(
                    "tessera.billing.app:create_app()", harness.free_port(), ingress_env
                )
            )
            # End to end first, on an idle service: a backlog from the saturation runs
            # below would otherwise be measured instead of the path.
            cold, e2e = await webhook_to_order_paid(
                billing_url, infra.nats.url, namespace, run, args.rate, args.e2e_seconds,
                args.warmup_seconds,
            )  # fmt: skip
            # Every request a distinct, freshly signed event: duplicates would be cheaper.
            events = [
                (f"Stripe-Signature:{header}", body)
                for body, header in (
                    shapes.signed(purchase(n, run), SECRET) for n in range(args.max_events)
                )
            ]
            per_round = len(events) // args.rounds

            def bare() -> harness.Result:
                if use_wrk:
                    return harness.drive_wrk(
                        "bare FastAPI (POST, same body)", base_url, "POST", "/echo",
                        [("", filler)], connections=args.concurrency, duration=args.duration,
                    )  # fmt: skip
                return asyncio.run(
                    harness.drive(
                        "bare FastAPI (POST, same body)", base_url,
                        lambda c, n: c.post("/echo", content=filler),
                        concurrency=args.concurrency, duration=args.duration,
                    )
                )  # fmt: skip

            def ingest(n: int) -> harness.Result:
                lines = events[n * per_round : (n + 1) * per_round]
                if use_wrk:
                    return harness.drive_wrk(
                        "billing POST /webhooks/stripe", billing_url, "POST", "/webhooks/stripe",
                        lines, connections=args.concurrency, duration=args.duration,
                    )  # fmt: skip

                async def send(client: httpx.AsyncClient, i: int) -> httpx.Response:
                    header, body = lines[i % len(lines)]
                    return await client.post(
                        "/webhooks/stripe", content=body,
                        headers={"stripe-signature": header.split(":", 1)[1]},
                    )  # fmt: skip

                return asyncio.run(
                    harness.drive(
                        "billing POST /webhooks/stripe", billing_url, send,
                        concurrency=args.concurrency, duration=args.duration,
                    )
                )  # fmt: skip

            if not args.workers_during_ingest:
                # The request path alone (the issue's "one signature check and one
                # transaction"): what the workers then make of the backlog is measured below.
                workers.close()
            # Bare and ingest alternate, round after round, every server up the whole time:
            # this machine's speed drifts by tens of percent over minutes (a shared VM), so
            # each ratio compares two runs made moments apart.
            for n in range(args.rounds):
                b = await asyncio.to_thread(measured, base_url, bare)
                i = await asyncio.to_thread(measured, billing_url, lambda n=n: ingest(n))
                if i.result.requests + i.result.errors > per_round:
                    print("  (more requests than distinct events: raise --max-events)")
                rounds.append((b, i))
            if not args.workers_during_ingest:
                start_workers()
                drained = await applied_per_second(database_url, args.drain_seconds)
        client = "wrk (1 thread)" if use_wrk else "httpx (asyncio)"
        print(
            f"client {client}, body {body_size} bytes, {args.concurrency} connections, "
            f"{args.duration:.0f} s each, {args.rounds} alternating rounds"
        )
        measured_process = "the ingress process"
        if args.workers_during_ingest:
            print(f"workers ran during the ingest rounds, at nice {args.workers_nice}")
        else:
            print("workers stopped during the ingest rounds (the request path alone)")
        print(
            f"| round | bare req/s | ingest req/s | ingest / bare | CPU µs/req bare | CPU µs/req ingest ({measured_process}) |"
        )
        print("|---|---|---|---|---|---|")
        for n, (b, i) in enumerate(rounds, 1):
            print(
                f"| {n} | {b.result.rps:,.0f} | {i.result.rps:,.0f} | "
                f"{i.result.rps / b.result.rps:.0%} | {b.cpu * 1e6:.0f} | {i.cpu * 1e6:.0f} |"
            )
        for b, i in rounds:
            print(b.result.line())
            print(i.result.line())
        ratios = [i.result.rps / b.result.rps for b, i in rounds]
        print(
            f"ingest / bare throughput, median of {args.rounds} rounds: {statistics.median(ratios):.0%}"
        )
        print(
            f"webhook -> billing.order.paid.v1 at {args.rate}/s, first {args.warmup_seconds:g} s "
            f"after start: {harness.summary(cold)}"
        )
        print(f"webhook -> billing.order.paid.v1 at {args.rate}/s: {harness.summary(e2e)}")
        if not args.workers_during_ingest:
            print(
                f"the workers then applied the backlog at {drained:,.0f} events/s "
                f"(over {args.drain_seconds:g} s)"
            )
    finally:
        await harness.tear_down(infra, [database], namespace)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--rate", type=int, default=50, help="purchases/s for the end-to-end timing"
    )
    parser.add_argument("--e2e-seconds", type=int, default=10)
    parser.add_argument(
        "--warmup-seconds", type=float, default=2, help="purchases timed apart, right after start"
    )
    parser.add_argument(
        "--max-events", type=int, default=120000, help="distinct events, all rounds"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/ingest rounds")
    parser.add_argument("--httpx", action="store_true", help="use the asyncio client, not wrk")
    parser.add_argument(
        "--workers-during-ingest", action="store_true",
        help="keep the workers (applier, provisioner, relay) running during the ingest rounds",
    )  # fmt: skip
    parser.add_argument(
        "--workers-nice", type=int, default=0,
        help="the workers' CPU priority (e.g. 10: the ingress goes first)",
    )  # fmt: skip
    parser.add_argument(
        "--drain-seconds", type=float, default=20,
        help="how long to time the workers applying the backlog the ingest rounds left",
    )  # fmt: skip
    parser.add_argument(
        "--client-spans", action="store_true", help="a span per SQL statement (off by default)"
    )
    harness.add_server_option(parser)
    args = parser.parse_args()
    harness.use_server(args.server)
    asyncio.run(main(args))
