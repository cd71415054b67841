"""Billing's webhook ingress under load, beside a bare FastAPI endpoint, and the time from
a webhook to `billing.order.paid.v1` on NATS.

    uv run python bench/billing_webhooks.py --duration 15 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import time

import harness
import httpx
import nats

from tessera.billing.checkout import stripe_shapes as shapes
from tessera.devstack.infra import bring_up
from tessera.shared.db.pool import ensure_database, with_database

SECRET = "whsec_bench"  # noqa: S105 - a throwaway secret for a throwaway stack


def purchase(n: int, run: str) -> dict[str, object]:
    session = shapes.checkout_session(
        session_id=f"cs_bench_{run}_{n}", email=f"buyer{n}.{run}@example.com",
        sku="chartgpt-lifetime", quantity=1, amount_total=14900, currency="usd",
        customer=f"cus_{run}_{n}", payment_intent=f"pi_{run}_{n}",
    )  # fmt: skip
    return shapes.event("checkout.session.completed", session)


async def webhook_to_order_paid(
    url: str, nats_url: str, namespace: str, run: str, rate: int, seconds: int
) -> list[float]:
    """Send `rate` purchases a second and time each until its order.paid reaches NATS."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    nc = await nats.connect(nats_url)

    async def on_paid(msg: nats.aio.msg.Msg) -> None:
        email = json.loads(msg.data)["email"]
        if email in sent:
            latencies.append((time.perf_counter() - sent.pop(email)) * 1000)

    await nc.subscribe(f"{namespace}.billing.order.paid.v1", cb=on_paid)
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:

        async def one(n: int) -> None:
            event = purchase(n, run + "e2e")
            body, header = shapes.signed(event, SECRET)
            sent[f"buyer{n}.{run}e2e@example.com"] = time.perf_counter()
            await client.post(
                "/webhooks/stripe", content=body, headers={"stripe-signature": header}
            )

        tasks = []
        for n in range(rate * seconds):
            tasks.append(asyncio.create_task(one(n)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    deadline = time.monotonic() + 10
    while sent and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a dict the callback drains
        await asyncio.sleep(0.05)
    await nc.close()
    if sent:
        print(f"  {len(sent)} purchases never reached order.paid within 10 s")
    return latencies


async def main(args: argparse.Namespace) -> None:
    run = secrets.token_hex(3)
    infra = bring_up(harness.REPO / ".dev" / "bench" / "infra")
    database = f"bench_billing_{run}"
    await ensure_database(infra.postgres.url, database)
    namespace = f"bench{run}"
    env = {
        **infra.env(),
        "TESSERA_NAMESPACE": namespace,
        "TESSERA_LOG_LEVEL": "WARNING",
        "TESSERA_BILLING_DATABASE_URL": with_database(infra.postgres.url, database),
        "TESSERA_BILLING_STRIPE_WEBHOOK_SECRETS": SECRET,
        "TESSERA_BILLING_WEBHOOK_RATE_LIMIT": "10000000/minute",
        "TESSERA_BILLING_CATALOG_FILE": str(harness.REPO / "deploy" / "catalog.json"),
        "TESSERA_OTEL_CLIENT_SPANS": "true" if args.client_spans else "false",
    }
    body_size = len(shapes.signed(purchase(0, run), SECRET)[0])
    filler = b"x" * body_size
    use_wrk = harness.wrk_available() and not args.httpx
    try:
        with harness.uvicorn_process("baseline:app", harness.free_port()) as base_url:
            cpu = harness.server_cpu_seconds(base_url)
            if use_wrk:
                baseline = harness.drive_wrk(
                    "bare FastAPI (POST, same body)", base_url, "POST", "/echo",
                    [("", filler)], connections=args.concurrency, duration=args.duration,
                )  # fmt: skip
            else:
                baseline = await harness.drive(
                    "bare FastAPI (POST, same body)", base_url,
                    lambda c, n: c.post("/echo", content=filler),
                    concurrency=args.concurrency, duration=args.duration,
                )  # fmt: skip
            cpu_bare = (harness.server_cpu_seconds(base_url) - cpu) / max(baseline.requests, 1)
        ingress_env = {**env, "TESSERA_BILLING_RUN_WORKERS": "false"} if args.split else env
        # --split: the measured process only serves HTTP; a second one runs the provisioner
        # and the outbox relay (the deployment docs/operations.md describes for scale).
        with contextlib.ExitStack() as workers:
            if args.split:
                workers.enter_context(
                    harness.uvicorn_process(
                        "tessera.billing.app:create_app()", harness.free_port(), env
                    )
                )
            billing_url = workers.enter_context(
                harness.uvicorn_process(
                    "tessera.billing.app:create_app()", harness.free_port(), ingress_env
                )
            )
            # End to end first, on an idle service: a backlog from the saturation run
            # below would otherwise be measured instead of the path.
            e2e = await webhook_to_order_paid(
                billing_url, infra.nats.url, namespace, run, args.rate, args.e2e_seconds
            )
            cpu = harness.server_cpu_seconds(billing_url)
            if use_wrk:
                # Every request a distinct, freshly signed event: duplicates would be cheaper.
                lines = []
                for n in range(args.max_events):
                    body, header = shapes.signed(purchase(n, run), SECRET)
                    lines.append((f"Stripe-Signature:{header}", body))
                ingest = harness.drive_wrk(
                    "billing POST /webhooks/stripe", billing_url, "POST", "/webhooks/stripe",
                    lines, connections=args.concurrency, duration=args.duration,
                )  # fmt: skip
                if ingest.requests + ingest.errors > args.max_events:
                    print("  (more requests than distinct events: raise --max-events)")
            else:

                async def send(client: httpx.AsyncClient, n: int) -> httpx.Response:
                    body, header = shapes.signed(purchase(n, run), SECRET)
                    return await client.post(
                        "/webhooks/stripe", content=body, headers={"stripe-signature": header}
                    )

                ingest = await harness.drive(
                    "billing POST /webhooks/stripe", billing_url, send,
                    concurrency=args.concurrency, duration=args.duration,
                )  # fmt: skip
            cpu_ingest = (harness.server_cpu_seconds(billing_url) - cpu) / max(ingest.requests, 1)
        client = "wrk (1 thread)" if use_wrk else "httpx (asyncio)"
        print(
            f"client {client}, body {body_size} bytes, {args.concurrency} connections, {args.duration:.0f} s each"
        )
        print(baseline.line())
        print(ingest.line())
        print(f"ingest / bare throughput: {ingest.rps / baseline.rps:.0%}")
        measured = "the ingress process" if args.split else "the one billing process"
        print(
            f"server CPU per request: bare {cpu_bare * 1e6:.0f} µs, "
            f"ingest {cpu_ingest * 1e6:.0f} µs ({measured})"
        )
        print(f"webhook -> billing.order.paid.v1 at {args.rate}/s: {harness.summary(e2e)}")
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
    parser.add_argument("--max-events", type=int, default=60000, help="distinct events for wrk")
    parser.add_argument("--httpx", action="store_true", help="use the asyncio client, not wrk")
    parser.add_argument("--split", action="store_true", help="ingress and workers in two processes")
    parser.add_argument(
        "--client-spans", action="store_true", help="a span per SQL statement (off by default)"
    )
    asyncio.run(main(parser.parse_args()))
