"""The portal's pages under load, beside a bare FastAPI GET: the sign-in page (render, cookie,
CSRF token; no upstream call) and the dashboard `/licenses` for signed-in customers (session
cookie -> cached access token in Redis -> licensing and billing called in parallel).

    uv run python bench/portal_pages.py --duration 10 --concurrency 16 --buyers 60

Billing, auth, licensing and the portal each run in their own uvicorn process on the real
Postgres, Redis and NATS; the buyers buy through billing's test checkout, and sign in through
the portal with the link from their welcome mail (an in-process SMTP catcher). Licensing and
billing limit `/v1/me/*` to 120 requests a minute per account, so the load is spread over
`--buyers` accounts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import secrets
import time

import harness
import httpx

from tessera.devstack.infra import bring_up
from tessera.devstack.mailcatcher import MailCatcher
from tessera.shared.db.pool import ensure_database, with_database

LINK = re.compile(r"/sign-in/link\?token=([A-Za-z0-9_\-]+)")
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


async def buy_and_sign_in(
    billing: str, portal: str, catcher: MailCatcher, count: int, run: str
) -> list[httpx.Cookies]:
    """`count` buyers, each signed in to the portal once; their cookie jars."""
    emails = [f"b{n}.{run}@example.com" for n in range(count)]
    async with httpx.AsyncClient(base_url=billing, timeout=20) as shop:
        for email in emails:
            buy = await shop.get("/buy/chartgpt-lifetime")
            session_id = buy.headers["location"].rsplit("/", 1)[1]
            await shop.post(f"/test-checkout/{session_id}/pay", data={"email": email})
    deadline = time.monotonic() + 180
    while len(catcher.mailbox.messages) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(catcher.mailbox.messages)} welcome mails arrived")
        await asyncio.sleep(0.2)
    jars = []
    for message in catcher.mailbox.messages:
        token = LINK.search(message.body("plain"))
        assert token
        async with httpx.AsyncClient(base_url=portal, timeout=20) as browser:
            landing = await browser.get(f"/sign-in/link?token={token.group(1)}")
            csrf = CSRF.search(landing.text)
            assert csrf
            done = await browser.post(
                "/sign-in/link", data={"token": token.group(1), "csrf": csrf.group(1)}
            )
            assert done.status_code == 303, done.text
            # Wait for the license (issued over NATS) so every page measured is a full one.
            for _ in range(200):
                if "License key" in (await browser.get("/licenses")).text:
                    break
                await asyncio.sleep(0.1)
            jars.append(httpx.Cookies(browser.cookies))
    return jars


async def access_tokens(auth: str, jars: list[httpx.Cookies]) -> list[str]:
    """Each buyer's session exchanged once (tokens live five minutes: enough for a run)."""
    async with httpx.AsyncClient(base_url=auth, timeout=20) as client:
        tokens = []
        for jar in jars:
            answer = await client.post(
                "/v1/sessions/token", json={"session_id": jar["tessera_session"]}
            )
            tokens.append(str(answer.json()["access_token"]))
    return tokens


async def main(args: argparse.Namespace) -> None:
    run = secrets.token_hex(3)
    infra = bring_up(harness.REPO / ".dev" / "bench" / "infra")
    databases = {name: f"bench_{name}_{run}" for name in ("auth", "billing", "licensing")}
    for database in databases.values():
        await ensure_database(infra.postgres.url, database)
    namespace = f"bench{run}"
    catcher = MailCatcher("127.0.0.1", harness.free_port(), harness.free_port())
    await catcher.start()
    port = {name: harness.free_port() for name in ("auth", "billing", "licensing", "portal")}
    url = {name: f"http://127.0.0.1:{p}" for name, p in port.items()}
    roomy = "10000000/minute"
    env = {
        **infra.env(),
        "TESSERA_NAMESPACE": namespace,
        "TESSERA_LOG_LEVEL": "WARNING",
        "TESSERA_AUTH_JWKS_URL": url["auth"] + "/.well-known/jwks.json",
        "TESSERA_AUTH_DATABASE_URL": with_database(infra.postgres.url, databases["auth"]),
        "TESSERA_AUTH_SMTP_PORT": str(catcher.smtp_port),
        "TESSERA_AUTH_PORTAL_URL": url["portal"],
        "TESSERA_AUTH_RL_VERIFY_PER_IP": roomy,
        "TESSERA_AUTH_RL_TOKEN_PER_SESSION": roomy,
        "TESSERA_AUTH_MAIL_POLL_SECONDS": "0.2",
        "TESSERA_BILLING_DATABASE_URL": with_database(infra.postgres.url, databases["billing"]),
        "TESSERA_BILLING_PUBLIC_URL": url["billing"],
        "TESSERA_BILLING_PORTAL_URL": url["portal"],
        "TESSERA_BILLING_CHECKOUT_RATE_LIMIT": roomy,
        "TESSERA_LICENSING_DATABASE_URL": with_database(infra.postgres.url, databases["licensing"]),
        "TESSERA_LICENSING_AUTH_JWKS_URL": url["auth"] + "/.well-known/jwks.json",
        "TESSERA_PORTAL_AUTH_URL": url["auth"],
        "TESSERA_PORTAL_BILLING_URL": url["billing"],
        "TESSERA_PORTAL_LICENSING_URL": url["licensing"],
        "TESSERA_PORTAL_RL_SIGN_IN_PER_IP": roomy,
    }
    try:
        with harness.uvicorn_process("baseline:app", harness.free_port()) as base_url:
            baseline = await harness.drive(
                "bare FastAPI (GET)", base_url, lambda c, n: c.get("/readyz"),
                concurrency=args.concurrency, duration=args.duration,
            )  # fmt: skip
        with contextlib.ExitStack() as stack:
            # Billing first: auth and licensing consume its stream, which it declares.
            for name in ("billing", "auth", "licensing", "portal"):
                app = f"tessera.{name}.app:create_app()"
                stack.enter_context(harness.uvicorn_process(app, port[name], env))
            jars = await buy_and_sign_in(url["billing"], url["portal"], catcher, args.buyers, run)
            sign_in = await harness.drive(
                "portal GET /sign-in", url["portal"], lambda c, n: c.get("/sign-in"),
                concurrency=args.concurrency, duration=args.duration,
            )  # fmt: skip

            async def dashboard(c: httpx.AsyncClient, n: int) -> httpx.Response:
                jar = jars[n % len(jars)]
                cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
                response = await c.get("/licenses", headers={"cookie": cookie})
                ok = response.status_code == 200 and "License key" in response.text
                return httpx.Response(200 if ok else 500)

            licenses = await harness.drive(
                "portal GET /licenses (signed in)", url["portal"], dashboard,
                concurrency=args.concurrency, duration=args.duration,
            )  # fmt: skip
            # The two calls the dashboard makes, alone: where its time goes.
            tokens = await access_tokens(url["auth"], jars)
            upstream = {}
            for name, path in (("licensing", "/v1/me/licenses"), ("billing", "/v1/me/orders")):
                upstream[name] = await harness.drive(
                    f"{name} GET {path}", url[name],
                    lambda c, n, path=path: c.get(
                        path, headers={"authorization": f"Bearer {tokens[n % len(tokens)]}"}
                    ),
                    concurrency=args.concurrency, duration=args.duration,
                )  # fmt: skip
        print(f"concurrency {args.concurrency}, {args.duration:.0f} s each; {len(jars)} buyers")
        print(baseline.line())
        print(sign_in.line())
        print(licenses.line())
        print(upstream["licensing"].line())
        print(upstream["billing"].line())
        print(f"sign-in page / bare throughput: {sign_in.rps / baseline.rps:.0%}")
        print(f"dashboard / bare throughput: {licenses.rps / baseline.rps:.0%}")
    finally:
        await catcher.stop()
        for database in databases.values():
            await harness.tear_down(infra, [database], namespace)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--buyers", type=int, default=60)
    harness.add_server_option(parser)
    args = parser.parse_args()
    harness.use_server(args.server)
    asyncio.run(main(args))
