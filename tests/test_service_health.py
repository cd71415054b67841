"""Each service with a store starts on real Postgres, Redis and NATS, applies its
migrations, and reports its health truthfully."""

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tessera.auth.app import create_app as create_auth
from tessera.auth.settings import AuthSettings
from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.devstack.infra import free_port
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.settings import LicensingSettings
from tessera.shared.service import NotConnected
from tessera.shared.settings import InfraSettings
from tessera.webhooks.app import create_app as create_webhooks
from tessera.webhooks.settings import WebhooksSettings

pytestmark = pytest.mark.integration

Factory = Callable[[str, InfraSettings], FastAPI]

SERVICES: dict[str, tuple[Factory, str]] = {
    "billing": (
        lambda url, infra: create_billing(BillingSettings(database_url=url), infra),
        "accounts",
    ),
    "auth": (lambda url, infra: create_auth(AuthSettings(database_url=url), infra), "users"),
    "licensing": (
        lambda url, infra: create_licensing(LicensingSettings(database_url=url), infra),
        "customers",
    ),
    "webhooks": (
        lambda url, infra: create_webhooks(WebhooksSettings(database_url=url), infra),
        "deliveries",
    ),
}


async def get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        return await client.get(path)


@pytest.mark.parametrize("service", SERVICES)
async def test_it_migrates_and_is_ready(
    service: str, database_url: str, infra_settings: InfraSettings, running: Any, all_streams: None
) -> None:
    factory, own_table = SERVICES[service]
    app = factory(database_url, infra_settings)
    async with running(app):
        await asyncio.wait_for(app.state.context.messaging_ready.wait(), 20)
        await asyncio.wait_for(app.state.context.key_book.wait_ready(), 20)
        assert (await get(app, "/healthz")).json() == {"status": "ok"}
        ready = await get(app, "/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "postgres": "ok",
        "redis": "ok",
        "nats": "ok",
        "api_keys": "ok",
    }
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    assert {"outbox", "inbox", own_table} <= {r["tablename"] for r in rows}


@pytest.mark.parametrize("service", SERVICES)
async def test_it_is_alive_but_not_ready_when_redis_does_not_answer(
    service: str, database_url: str, infra_settings: InfraSettings, running: Any
) -> None:
    factory, _ = SERVICES[service]
    broken = infra_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    app = factory(database_url, broken)
    async with running(app):
        assert (await get(app, "/healthz")).status_code == 200
        ready = await get(app, "/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"] == "down"
    assert ready.json()["checks"]["postgres"] == "ok"


async def test_an_http_only_replica_writes_events_for_a_worker_replica_to_relay(
    database_url: str,
    infra_settings: InfraSettings,
    running: Any,
    eventually: Any,
    all_streams: None,  # auth's APIKEYS, which the key book follows
) -> None:
    from tessera.billing.accounts.service import find_or_create_account
    from tessera.shared.sellers import HOME_LIVE

    http_only = create_billing(
        BillingSettings(database_url=database_url, run_workers=False), infra_settings
    )
    worker = create_billing(BillingSettings(database_url=database_url), infra_settings)
    async with running(http_only):
        with pytest.raises(NotConnected):
            http_only.state.context.broker  # noqa: B018 - reading it is the test
        # No broker, yet it follows the key book on its own connection: it checks keys too.
        await asyncio.wait_for(http_only.state.context.key_book.wait_ready(), 20)
        ready = await get(http_only, "/readyz")
        assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok", "api_keys": "ok"}
        async with http_only.state.context.pool.acquire() as conn, conn.transaction():
            await find_or_create_account(conn, HOME_LIVE, "split@example.com", "purchase")
        async with running(worker):

            async def relayed() -> bool:
                async with worker.state.context.pool.acquire() as conn:
                    return bool(
                        await conn.fetchval(
                            "SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"
                        )
                    )

            await eventually(relayed, timeout=20)


async def test_with_redis_down_sign_in_fails_closed_with_a_clear_503(
    database_url: str, infra_settings: InfraSettings, running: Any
) -> None:
    broken = infra_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    app = create_auth(AuthSettings(database_url=database_url), broken)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
            asked = await client.post(
                "/v1/magic-links", json={"email": "someone@example.com", "browser": "b" * 32}
            )
            verify = await client.post(
                "/v1/magic-links/verify", json={"token": "t" * 43, "browser": "b" * 32}
            )
    for response in (asked, verify):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["type"] == "urn:tessera:problem:dependency-unavailable"
    conn = await asyncpg.connect(database_url)
    try:
        # nothing half-done: no mail queued, no audit row for a request that failed
        assert await conn.fetchval("SELECT count(*) FROM email_outbox") == 0
    finally:
        await conn.close()
