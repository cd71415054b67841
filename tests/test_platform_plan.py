"""The platform plan end to end (docs/sellers.md, "Platform plan"), against the Stripe
stand-in through the official library: a seller without a plan has refused live keys and
working test keys; it buys the plan with its own test key (a subscription in the home
seller's live tenant to tier `platform`), billing announces it, auth keeps it, and every
process lets the live key through; canceling the plan refuses it again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tessera.auth.api_keys import service as api_keys
from tessera.auth.app import create_app as create_auth
from tessera.auth.sellers import service as sellers
from tessera.auth.settings import AuthSettings
from tessera.auth.tokens import service as tokens
from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.devstack.infra import free_port
from tessera.devstack.stripe_standin.testing import API_KEY, PLATFORM_SECRET, running_standin
from tessera.shared.events.envelope import new_event_id
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration

CATALOG = Path(__file__).resolve().parents[1] / "deploy" / "catalog.json"


async def until(seconds: float, condition: Any) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.05)


@pytest.fixture
async def apps(
    database_factory: Any, infra_settings: InfraSettings, running: Any, all_streams: None
) -> AsyncIterator[dict[str, Any]]:
    async with running_standin() as standin, AsyncExitStack() as exits:
        made = {
            "auth": create_auth(
                AuthSettings(database_url=await database_factory("auth"), smtp_port=free_port()),
                infra_settings,
            ),
            "billing": create_billing(
                BillingSettings(
                    database_url=await database_factory("billing"),
                    catalog_file=CATALOG,
                    stripe_secret_key=API_KEY,
                    stripe_api_base=standin.url,
                    stripe_webhook_secrets=[PLATFORM_SECRET],
                    stripe_sync_retry_seconds=0.2,
                ),
                infra_settings,
            ),
        }
        out: dict[str, Any] = {"standin": standin}
        for name, app in made.items():
            await exits.enter_async_context(running(app))
            await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
            transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
            out[name] = await exits.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=f"http://{name}")
            )
            out[f"{name}_app"] = app
        yield out


async def forward(apps: dict[str, Any], sent: list[int]) -> None:
    """Hand billing every event the stand-in sent since the last call; wait until applied."""
    standin = apps["standin"]
    await standin.delivered()
    deliveries = standin.platform.deliveries[sent[0] :]
    sent[0] += len(deliveries)
    for body, signature in deliveries:
        answer = await apps["billing"].post(
            "/webhooks/stripe",
            content=body,
            headers={"stripe-signature": signature, "content-type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
    pool = apps["billing_app"].state.context.pool

    async def applied() -> bool:
        return not await pool.fetchval(
            "SELECT count(*) FROM stripe_events WHERE status = 'received'"
        )

    await until(10, applied)


async def test_a_seller_buys_its_plan_and_its_live_keys_work_while_it_lasts(
    apps: dict[str, Any],
) -> None:
    auth = apps["auth_app"].state.context
    billing_ctx = apps["billing_app"].state.context
    async with auth.pool.acquire() as conn, conn.transaction():
        seller = await sellers.create(conn, new_event_id(), "plan-buyer", "Plan buyer")
    live = await api_keys.issue_pair(auth, seller.id, "prod", "live", None)
    test = await api_keys.issue_pair(auth, seller.id, "prod", "test", None)
    live_sk = {"authorization": f"Bearer {live.secret.key}"}
    test_sk = {"authorization": f"Bearer {test.secret.key}"}

    async def known() -> bool:
        return billing_ctx.sellers.by_id(seller.id) is not None and all(
            _holds(billing_ctx.key_book, k) for k in (live.secret.key, test.secret.key)
        )

    await until(15, known)

    async def codes() -> tuple[int, int]:
        got_live = await apps["billing"].get("/v1/products", headers=live_sk)
        got_test = await apps["billing"].get("/v1/products", headers=test_sk)
        return got_live.status_code, got_test.status_code

    before = await codes()
    shown_before = (await apps["billing"].get("/v1/platform/subscription", headers=test_sk)).json()

    # The catalog (the `platform` tier) reaches the stand-in, then the seller checks out.
    async def synced() -> bool:
        return not await billing_ctx.pool.fetchval(
            "SELECT count(*) FROM stripe_sync WHERE state IN ('pending', 'local', 'failed')"
        )

    await until(30, synced)
    stripe = apps["standin"].client()
    customer = await stripe.v1.customers.create_async({"email": "owner@plan-buyer.example"})
    started = await apps["billing"].post(
        "/v1/platform/subscription/checkout",
        json={"email": "owner@plan-buyer.example"},
        headers=test_sk,
    )
    assert started.status_code == 201, started.text
    session = await stripe.v1.checkout.sessions.retrieve_async(started.json()["id"])
    assert session.metadata is not None
    assert session.metadata["tessera_platform_for"] == str(seller.id)
    assert session.metadata["tessera_tier"] == "platform" and session.customer == customer.id
    async with httpx.AsyncClient(base_url=apps["standin"].url) as control:
        done = await control.post(f"/_standin/checkout/sessions/{session.id}/complete", json={})
        assert done.status_code == 200, done.text
    sent = [0]
    await forward(apps, sent)

    async def plan_is(status: str) -> bool:
        entry = billing_ctx.sellers.by_id(seller.id)
        return entry is not None and entry.plan_status == status

    await until(20, lambda: plan_is("active"))
    paid = await codes()
    shown_paid = (await apps["billing"].get("/v1/platform/subscription", headers=live_sk)).json()
    again = await apps["billing"].post(
        "/v1/platform/subscription/checkout", json={}, headers=live_sk
    )

    [subscription] = (await stripe.v1.subscriptions.list_async({"customer": customer.id})).data
    await stripe.v1.subscriptions.cancel_async(subscription.id)
    await forward(apps, sent)
    await until(20, lambda: plan_is("ended"))
    ended = await codes()
    unkeyed = await apps["billing"].post(
        "/v1/platform/subscription/checkout", json={}, headers={"authorization": "Bearer x"}
    )
    assert before == (402, 200)
    assert shown_before == {"status": "none", "grace_until": None, "in_force": False}
    assert paid == (200, 200)
    assert shown_paid["status"] == "active" and shown_paid["in_force"] is True
    assert again.status_code == 409 and again.json()["type"].endswith("platform-plan-in-force")
    assert ended == (402, 200)
    assert unkeyed.status_code == 401


def _holds(book: Any, text: str) -> bool:
    try:
        book.check(text)
    except Exception:
        return False
    return True


async def test_only_an_owner_s_dashboard_session_buys_the_plan(apps: dict[str, Any]) -> None:
    """Members act in the dashboard with auth's seller-session tokens (docs/sellers.md,
    "Dashboard sessions"): billing takes them as the seller's secret key, but buying the
    plan spends the seller's money, so a developer's session is refused (403) where the
    owner's goes through; either may read the plan, and a live session waits for it."""
    auth = apps["auth_app"].state.context
    billing_ctx = apps["billing_app"].state.context
    async with auth.pool.acquire() as conn, conn.transaction():
        seller = await sellers.create(conn, new_event_id(), "plan-team", "Plan team")
    # Billing checks auth's signatures against auth's JWKS (here handed over, not fetched).
    billing_ctx.token_verifier.jwks.load(await auth.keyring.jwks())

    async def session(role: str, mode: str) -> dict[str, str]:
        minted = await tokens.mint_seller_session(
            auth, uuid4(), "plan-team", role, mode, "sid-" + role
        )
        return {"authorization": f"Bearer {minted.token}"}

    async def known() -> bool:
        return billing_ctx.sellers.by_id(seller.id) is not None

    await until(15, known)

    async def synced() -> bool:
        return not await billing_ctx.pool.fetchval(
            "SELECT count(*) FROM stripe_sync WHERE state IN ('pending', 'local', 'failed')"
        )

    await until(30, synced)
    developer, owner = await session("developer", "test"), await session("owner", "test")
    read = await apps["billing"].get("/v1/platform/subscription", headers=developer)
    refused = await apps["billing"].post(
        "/v1/platform/subscription/checkout", json={}, headers=developer
    )
    bought = await apps["billing"].post(
        "/v1/platform/subscription/checkout", json={}, headers=owner
    )
    live = await apps["billing"].get("/v1/products", headers=await session("owner", "live"))
    # Where the customers' money goes is the owner's call too: Connect's start, confirm and
    # disconnect refuse a developer's session before anything else.
    connect = [
        await apps["billing"].post("/v1/stripe/connect", headers=developer),
        await apps["billing"].post(
            f"/v1/stripe/connect/pending/{uuid4()}/confirm", headers=developer
        ),
        await apps["billing"].delete("/v1/stripe/connection", headers=developer),
    ]
    assert read.status_code == 200 and read.json()["status"] == "none"
    assert refused.status_code == 403 and refused.json()["type"].endswith("owner-required")
    assert [(a.status_code, a.json()["type"].rsplit(":", 1)[-1]) for a in connect] == [
        (403, "owner-required")
    ] * 3
    assert bought.status_code == 201, bought.text
    assert live.status_code == 402
