"""What the Python client (clients/python, `tessera_client`) adds to a call, beside a raw
httpx call doing the same request.

    uv run python bench/python_client.py --iterations 20000 --rounds 5
    uv run python bench/python_client.py --real --iterations 1000 --rounds 5

Without `--real`: in one process, no network (httpx's MockTransport answers licensing's
canned `POST /v1/usage/check` answer with its RateLimit headers), so only the client's own
CPU shows: building the request, reading the answer into dataclasses and parsing the
RateLimit fields, against `http.post(...)` + `.json()`. Also the local token verification
(EdDSA verify and claim checks against a cached JWKS). With `--real`: auth and licensing on
real ports (uvicorn in this process, real Postgres, Redis and NATS from the `./dev`
bootstrap), the same check sequentially over TCP, raw and through the client, alternated
round after round. Results: clients/python/README.md ("What it costs").
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import nats
from nacl.signing import SigningKey
from tessera_client import AsyncTessera

from tessera.shared.keys.ed25519 import Signer, public_jwk

REPO = Path(__file__).resolve().parents[1]
CUSTOMER = str(uuid4())
CHECK_ANSWER = {
    "customer": CUSTOMER, "feature": "api_calls", "tier": "free", "source": "assigned",
    "used": 3, "limit": 500, "remaining": 497, "period_start": "2026-12-01T00:00:00Z",
    "period_end": "2027-01-01T00:00:00Z", "rate_per_minute": 60, "allowed": True,
}  # fmt: skip
RATE_HEADERS = {
    "RateLimit-Policy": '"api_calls";q=500;w=2592000, "rate_per_minute";q=60;w=60',
    "RateLimit": '"api_calls";r=497;t=1814400, "rate_per_minute";r=59;t=42',
}
SK = "sk_test_" + "x" * 40


async def timed(call: Callable[[], Awaitable[Any]], iterations: int) -> float:
    """Mean µs per call over `iterations` sequential calls."""
    start = time.perf_counter()
    for _ in range(iterations):
        await call()
    return (time.perf_counter() - start) / iterations * 1e6


async def in_process(iterations: int, rounds: int) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=CHECK_ANSWER, headers=RATE_HEADERS)

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    tessera = AsyncTessera(SK, seller="acme", licensing_url="http://licensing", http=http)
    body = {"customer": CUSTOMER, "feature": "api_calls", "amount": 1}
    headers = {"authorization": f"Bearer {SK}"}

    async def raw() -> Any:
        response = await http.post("http://licensing/v1/usage/check", json=body, headers=headers)
        return response.json()

    async def client() -> Any:
        return await tessera.check_usage(CUSTOMER, "api_calls")

    signer = Signer("bench", SigningKey.generate())
    tessera.jwks.load({"keys": [public_jwk("bench", signer.public_key)]})
    now = int(time.time())
    token = signer.jws({
        "iss": "tessera-auth", "aud": "tessera", "sub": str(uuid4()), "acc": CUSTOMER,
        "role": "customer", "sid": "s", "sel": "acme", "mod": "test", "jti": "j",
        "iat": now, "exp": now + 3600,
    })  # fmt: skip

    async def verify() -> Any:
        return await tessera.verify_token(token)

    await timed(raw, 200)
    await timed(client, 200)
    print(f"in process, no network: µs per call; {rounds} rounds of {iterations} calls each,")
    print("  raw, client and verify alternating in chunks of 500 (this machine is shared: the")
    print("  fastest chunk is the cost, the median shows the noise)")
    for n in range(rounds):
        chunks: dict[str, list[float]] = {"raw": [], "client": [], "verify": []}
        for _ in range(max(1, iterations // 500)):
            for name, call in (("raw", raw), ("client", client), ("verify", verify)):
                chunks[name].append(await timed(call, 500))
        best = {k: min(v) for k, v in chunks.items()}
        mid = {k: statistics.median(v) for k, v in chunks.items()}
        print(f"  round {n + 1}: fastest raw {best['raw']:6.1f} client {best['client']:6.1f} "
              f"(+{best['client'] - best['raw']:4.1f}) verify_token {best['verify']:6.1f}; "
              f"median raw {mid['raw']:6.1f} client {mid['client']:6.1f} "
              f"verify_token {mid['verify']:6.1f}")  # fmt: skip
    await http.aclose()


async def over_tcp(iterations: int, rounds: int) -> None:
    from tessera_client import NotFound

    from tessera.auth.api_keys import service as api_keys
    from tessera.auth.app import create_app as create_auth
    from tessera.auth.sellers import service as sellers
    from tessera.auth.settings import AuthSettings
    from tessera.devstack.infra import bring_up, free_port
    from tessera.devstack.serving import LoopServer
    from tessera.licensing.app import create_app as create_licensing
    from tessera.licensing.settings import LicensingSettings
    from tessera.shared.db.pool import ensure_database, with_database
    from tessera.shared.events.envelope import new_event_id
    from tessera.shared.events.topology import AUTH, BILLING, Namespace
    from tessera.shared.messaging import ensure_stream, stream_config
    from tessera.shared.settings import InfraSettings

    run = secrets.token_hex(3)
    infra = bring_up(REPO / ".dev" / "bench" / "infra")
    settings = InfraSettings(
        nats_url=infra.nats.url, redis_url=infra.redis.url, namespace=f"bench{run}"
    )  # type: ignore[arg-type]
    # Licensing reads billing's stream; billing does not run here, so declare it as it would.
    nc = await nats.connect(infra.nats.url)
    for stream in (BILLING, AUTH):
        await ensure_stream(nc.jetstream(), stream_config(stream, Namespace(f"bench{run}")))
    await nc.close()
    urls, servers = {}, []
    for name, make, cls in (("auth", create_auth, AuthSettings),
                            ("licensing", create_licensing, LicensingSettings)):  # fmt: skip
        database = f"bench_client_{name}_{run}"
        await ensure_database(infra.postgres.url, database)
        extra = {"smtp_port": free_port()} if name == "auth" else {}
        app = make(cls(database_url=with_database(infra.postgres.url, database), **extra), settings)
        port = free_port()
        servers.append((app, await LoopServer.start(app, port)))
        urls[name] = f"http://127.0.0.1:{port}"
    try:
        for app, _ in servers:
            await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
        auth = servers[0][0].state.context
        async with auth.pool.acquire() as conn, conn.transaction():
            seller = await sellers.create(conn, new_event_id(), f"bench-{run}", "Bench")
        pair = await api_keys.issue_pair(auth, seller.id, "bench", "test", None)
        await asyncio.sleep(2)  # the key reaches licensing's key book
        http = httpx.AsyncClient()
        tessera = AsyncTessera(
            pair.secret.key, seller=seller.slug, auth_url=urls["auth"],
            licensing_url=urls["licensing"], http=http,
        )  # fmt: skip
        customer = (await tessera.create_customer("bench@example.com")).id
        grants = {"quotas": {"api_calls": {"limit": 10**9}}, "rate_per_minute": None}
        for _ in range(300):
            try:
                await tessera.set_usage_plan(customer, "free", grants)
                break
            except NotFound:
                await asyncio.sleep(0.05)
        body = {"customer": str(customer), "feature": "api_calls", "amount": 1}
        headers = {"authorization": f"Bearer {pair.secret.key}"}
        url = urls["licensing"] + "/v1/usage/check"

        async def raw() -> Any:
            response = await http.post(url, json=body, headers=headers)
            response.raise_for_status()
            return response.json()

        async def client() -> Any:
            return await tessera.check_usage(customer, "api_calls")

        await timed(raw, 100)
        await timed(client, 100)
        print(f"over TCP to licensing (POST /v1/usage/check): µs per call; {rounds} rounds of")
        print(f"  {iterations} calls each, raw and client alternating in chunks of 50")
        for n in range(rounds):
            chunks: dict[str, list[float]] = {"raw": [], "client": []}
            for _ in range(max(1, iterations // 50)):
                chunks["raw"].append(await timed(raw, 50))
                chunks["client"].append(await timed(client, 50))
            best = {k: min(v) for k, v in chunks.items()}
            mid = {k: statistics.median(v) for k, v in chunks.items()}
            print(f"  round {n + 1}: fastest raw {best['raw']:7.0f} client {best['client']:7.0f}; "
                  f"median raw {mid['raw']:7.0f} client {mid['client']:7.0f} "
                  f"({(mid['client'] / mid['raw'] - 1) * 100:+.1f} %)")  # fmt: skip
        await http.aclose()
    finally:
        for _, server in servers:
            await server.stop(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--real", action="store_true", help="auth and licensing over TCP")
    args = parser.parse_args()
    asyncio.run((over_tcp if args.real else in_process)(args.iterations, args.rounds))


if __name__ == "__main__":
    main()
