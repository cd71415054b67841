"""Revoking a key at auth is refused at every replica of every service within a second:
auth, a billing worker, an HTTP-only billing replica (no broker: it follows the key book on
its own connection) and licensing, each on its own database, all on real Postgres, Redis
and NATS. The key reaches each through auth's outbox, the relay and `APIKEYS`."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tessera.auth.api_keys import service as api_keys
from tessera.auth.app import create_app as create_auth
from tessera.auth.sellers import service as sellers
from tessera.auth.settings import AuthSettings
from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.settings import LicensingSettings
from tessera.shared.api_keys import KeyBook, RevokedKey, UnknownKey
from tessera.shared.events.envelope import new_event_id
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration


def book(app: FastAPI) -> KeyBook:
    held: KeyBook = app.state.context.key_book
    return held


async def until(seconds: float, condition: Any) -> float:
    started = time.perf_counter()
    while not condition():
        assert time.perf_counter() - started < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.002)
    return time.perf_counter() - started


def accepts(app: FastAPI, key: str) -> Any:
    def check() -> bool:
        try:
            book(app).check(key)
        except UnknownKey:
            return False
        return True

    return check


def refuses(app: FastAPI, key: str) -> Any:
    def check() -> bool:
        try:
            book(app).check(key)
        except RevokedKey:
            return True
        return False

    return check


async def test_a_revoked_key_is_refused_at_billing_and_licensing_replicas_within_a_second(
    database_factory: Any, infra_settings: InfraSettings, running: Any, all_streams: None
) -> None:
    billing_url, licensing_url = await database_factory(), await database_factory()
    apps = {
        "auth": create_auth(AuthSettings(database_url=await database_factory()), infra_settings),
        "billing": create_billing(BillingSettings(database_url=billing_url), infra_settings),
        "billing-http": create_billing(
            BillingSettings(database_url=billing_url, run_workers=False), infra_settings
        ),
        "licensing": create_licensing(
            LicensingSettings(database_url=licensing_url), infra_settings
        ),
    }
    async with AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(running(app))
        for app in apps.values():
            await asyncio.wait_for(book(app).wait_ready(), 20)
        auth = apps["auth"].state.context
        async with auth.pool.acquire() as conn, conn.transaction():
            seller = await sellers.create(conn, new_event_id(), "revoke-everywhere", "Revoke")
        pair = await api_keys.issue_pair(auth, seller.id, "prod", "live", None)
        key = pair.secret.key
        for app in apps.values():
            await until(10, accepts(app, key))
        ready = {}
        for name, app in apps.items():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
                ready[name] = (await client.get("/readyz")).json()["checks"].get("api_keys")

        started = time.perf_counter()
        await api_keys.revoke_pair(auth, seller.id, pair.pair_id, None)
        waits = await asyncio.gather(*(until(1.0, refuses(app, key)) for app in apps.values()))
        total = time.perf_counter() - started
    assert ready == dict.fromkeys(apps, "ok")
    # From the revoking call (its commit included) to the last replica refusing.
    assert total < 1.0, (total, waits)
