"""A seller's settings changed at auth reach every other process's seller directory:
licensing and an HTTP-only billing replica, each on its own database, read the new
`upgrade_url` in memory from their `SellerBook` (auth's outbox, the relay, `SELLERS`). Real
Postgres, Redis and NATS."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tessera.auth.app import create_app as create_auth
from tessera.auth.members import queries as members
from tessera.auth.sellers import service as sellers
from tessera.auth.sessions import service as sessions
from tessera.auth.settings import AuthSettings
from tessera.auth.users import service as users
from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.settings import LicensingSettings
from tessera.shared.events.envelope import new_event_id
from tessera.shared.sellers import HOME_LIVE
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration


async def owner_token(auth: Any, client: httpx.AsyncClient, slug: str) -> str:
    """A new seller and its owner (a home user) signed in: the owner's access token, from
    auth's own token route."""
    async with auth.pool.acquire() as conn, conn.transaction():
        seller = await sellers.create(conn, new_event_id(), slug, slug.title())
        user = await users.sign_up(conn, HOME_LIVE, f"owner@{slug}.example", [])
        await members.add_member(conn, seller.id, user.id, "owner")
    opened = await sessions.open_browser_session(auth, user, ip="203.0.113.7", device="test")
    answer = await client.post("/v1/sessions/token", json={"session_id": opened.session_id})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


async def test_changed_settings_reach_every_process_s_seller_book(
    database_factory: Any, infra_settings: InfraSettings, running: Any, all_streams: None
) -> None:
    apps: dict[str, FastAPI] = {
        "auth": create_auth(AuthSettings(database_url=await database_factory()), infra_settings),
        "billing-http": create_billing(
            BillingSettings(database_url=await database_factory(), run_workers=False),
            infra_settings,
        ),
        "licensing": create_licensing(
            LicensingSettings(database_url=await database_factory()), infra_settings
        ),
    }
    async with AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(running(app))
        auth = apps["auth"].state.context
        transport = httpx.ASGITransport(app=apps["auth"], client=("203.0.113.7", 4000))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://auth")
        )
        token = await owner_token(auth, client, "settings-co")
        patched = await client.patch(
            "/v1/sellers/settings-co/settings",
            json={"upgrade_url": "https://settings.example/upgrade", "past_due_grace_days": 3},
            headers={"authorization": f"Bearer {token}"},
        )
        assert patched.status_code == 200, patched.text
        version = (await sellers.by_slug(auth.pool, "settings-co")).version  # type: ignore[union-attr]

        def seen(app: FastAPI) -> bool:
            entry = app.state.context.sellers.by_slug("settings-co")
            return entry is not None and entry.version == version

        deadline = time.monotonic() + 10
        while not all(seen(app) for app in apps.values()):
            assert time.monotonic() < deadline, "a process never saw the new settings"
            await asyncio.sleep(0.01)
        held = {
            name: app.state.context.sellers.by_slug("settings-co") for name, app in apps.items()
        }
    assert version == 2
    for name, entry in held.items():
        assert entry.settings.upgrade_url == "https://settings.example/upgrade", name
        assert entry.settings.past_due_grace_days == 3, name
        assert entry.settings.usage_thresholds == [80, 100], name
