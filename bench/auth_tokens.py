"""Auth's hot paths under load, beside a bare FastAPI endpoint: magic-link verify (a code
that signs in, and a token that does not) and session -> access-token exchange.

    uv run python bench/auth_tokens.py --duration 10 --concurrency 32 --users 400
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import time

import asyncpg
import harness
import httpx
import nats

from tessera.auth.users import service as users
from tessera.devstack.infra import bring_up
from tessera.devstack.mailcatcher import MailCatcher
from tessera.shared.db.pool import asyncpg_dsn, ensure_database, with_database
from tessera.shared.events.billing import AccountCreated
from tessera.shared.events.envelope import new_event_id
from tessera.shared.events.topology import BILLING, WEBHOOKS, Namespace
from tessera.shared.messaging import ensure_stream, stream_config

CODE = re.compile(r"enter this code: (\d{6})")


async def make_users(
    database_url: str, catcher: MailCatcher, count: int, run: str
) -> list[tuple[str, str]]:
    """`count` users from account events; their welcome mails (with a code) over SMTP."""
    pool = await asyncpg.create_pool(asyncpg_dsn(database_url), min_size=1, max_size=4)
    try:
        for n in range(count):
            event = AccountCreated(account_id=new_event_id(), email=f"u{n}.{run}@example.com")
            await users.create_user_for_account(pool, event)
    finally:
        await pool.close()
    deadline = time.monotonic() + 120
    while len(catcher.mailbox.messages) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(catcher.mailbox.messages)} welcome mails arrived")
        await asyncio.sleep(0.2)
    found = []
    for message in catcher.mailbox.messages:
        code = CODE.search(message.body("plain"))
        assert code
        found.append((str(message.parsed["To"]), code.group(1)))
    return found


async def verify_all(
    url: str, pairs: list[tuple[str, str]], concurrency: int, sessions: list[str]
) -> harness.Result:
    """Each (address, code) signs in once: the successful verify path, end to end."""
    queue = list(pairs)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:

        async def worker() -> None:
            nonlocal errors
            while queue:
                email, code = queue.pop()
                started = time.perf_counter()
                r = await client.post(
                    "/v1/magic-links/verify",
                    json={"email": email, "code": code, "browser": secrets.token_urlsafe(24)},
                )
                if r.status_code == 200:
                    latencies.append((time.perf_counter() - started) * 1000)
                    sessions.append(r.json()["session_id"])
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return harness.Result("auth verify (code signs in)", len(latencies), errors, elapsed, latencies)


async def main(args: argparse.Namespace) -> None:
    run = secrets.token_hex(3)
    infra = bring_up(harness.REPO / ".dev" / "bench" / "infra")
    database = f"bench_auth_{run}"
    await ensure_database(infra.postgres.url, database)
    database_url = with_database(infra.postgres.url, database)
    namespace = f"bench{run}"
    # Auth consumes from BILLING and WEBHOOKS; neither producer runs here, so stand in for
    # their streams
    # (auth's messaging, and so /readyz, waits for the stream to exist).
    nc = await nats.connect(infra.nats.url)
    for stream in (BILLING, WEBHOOKS):
        await ensure_stream(nc.jetstream(), stream_config(stream, Namespace(namespace)))
    await nc.close()
    catcher = MailCatcher("127.0.0.1", harness.free_port(), harness.free_port())
    await catcher.start()
    roomy = "10000000/minute"
    env = {
        **infra.env(),
        "TESSERA_NAMESPACE": namespace,
        "TESSERA_LOG_LEVEL": "WARNING",
        "TESSERA_AUTH_DATABASE_URL": database_url,
        "TESSERA_AUTH_SMTP_PORT": str(catcher.smtp_port),
        "TESSERA_AUTH_RL_VERIFY_PER_IP": roomy,
        "TESSERA_AUTH_RL_TOKEN_PER_SESSION": roomy,
        "TESSERA_AUTH_RL_CODE_PER_ACCOUNT": roomy,
    }
    try:
        with harness.uvicorn_process("baseline:app", harness.free_port()) as base_url:
            baseline = await harness.drive(
                "bare FastAPI (POST)", base_url, lambda c, n: c.post("/echo", content=b"{}"),
                concurrency=args.concurrency, duration=args.duration,
            )  # fmt: skip
        with harness.uvicorn_process(
            "tessera.auth.app:create_app()", harness.free_port(), env
        ) as url:
            pairs = await make_users(database_url, catcher, args.users, run)
            sessions: list[str] = []
            signed_in = await verify_all(url, pairs, args.concurrency, sessions)

            async def refused_verify(c: httpx.AsyncClient, n: int) -> httpx.Response:
                r = await c.post(
                    "/v1/magic-links/verify",
                    json={"token": secrets.token_urlsafe(32), "browser": "b" * 32},
                )
                # The expected answer is the uniform 401: count it as a success here.
                return httpx.Response(200 if r.status_code == 401 else 500)

            refused = await harness.drive(
                "auth verify (unknown token)", url,
                refused_verify,
                concurrency=args.concurrency, duration=args.duration,
            )  # fmt: skip
            exchange = await harness.drive(
                "auth POST /v1/sessions/token", url,
                lambda c, n: c.post("/v1/sessions/token", json={"session_id": sessions[n % len(sessions)]}),
                concurrency=args.concurrency, duration=args.duration,
            )  # fmt: skip
        print(f"concurrency {args.concurrency}, {args.duration:.0f} s each; {args.users} sign-ins")
        print(baseline.line())
        print(signed_in.line())
        print(refused.line())
        print(exchange.line())
        print(f"token exchange / bare throughput: {exchange.rps / baseline.rps:.0%}")
    finally:
        await catcher.stop()
        await harness.tear_down(infra, [database], namespace)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--users", type=int, default=400)
    harness.add_server_option(parser)
    args = parser.parse_args()
    harness.use_server(args.server)
    asyncio.run(main(args))
