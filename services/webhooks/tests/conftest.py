"""Webhooks test fixtures: the real app on real Postgres, Redis and NATS, billing's, auth's
and licensing's streams to publish on, sellers' keys published as auth would, and real
receivers (webhooks_factories.Receiver)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI

from tessera.devstack.seller_keys import publish_seller_keys
from tessera.shared.api_keys.format import Kind
from tessera.shared.events.topology import AUTH, BILLING, LICENSING, Namespace
from tessera.shared.messaging import ensure_stream, stream_config
from tessera.shared.sellers import Tenant
from tessera.shared.settings import InfraSettings
from tessera.webhooks.app import create_app
from tessera.webhooks.context import Webhooks
from tessera.webhooks.settings import WebhooksSettings

# --import-mode=importlib puts no test folder on sys.path; the builders live beside us.
sys.path.insert(0, str(Path(__file__).parent))

from webhooks_factories import A_LIVE, A_TEST, B_LIVE, Harness  # type: ignore[import-not-found]

# Fast enough for a test: the schedule's shape, in fractions of a second.
FAST = {
    "retry_schedule": [0.2, 0.3, 0.5, 0.5, 0.5, 0.5],
    "retry_jitter": 0.1,
    "poll_seconds": 0.1,
    "attempt_timeout_seconds": 3.0,
    "connect_timeout_seconds": 1.0,
}


@pytest.fixture
def start_webhooks(database_url: str, infra_settings: InfraSettings, running: Any) -> Any:
    """`async with start_webhooks(**settings) as h:` runs one webhooks process on the test's
    database (again after the block ends: a restart; twice at once: two replicas)."""

    @asynccontextmanager
    async def start(resolver: Any = None, **overrides: Any) -> AsyncIterator[Harness]:
        ns = Namespace(infra_settings.namespace)
        nc = await nats.connect(str(infra_settings.nats_url))
        js = nc.jetstream()
        for stream in (BILLING, AUTH, LICENSING):  # declared as their owners would
            await ensure_stream(js, stream_config(stream, ns))
        settings = WebhooksSettings(database_url=database_url, **{**FAST, **overrides})
        context = Webhooks.of(settings, infra_settings)
        if resolver is not None:
            context.resolver = resolver
        app: FastAPI = create_app(settings, infra_settings, context)
        try:
            async with running(app):
                await asyncio.wait_for(context.messaging_ready.wait(), 30)
                wanted: list[tuple[Tenant, Kind]] = [
                    (t, "secret") for t in (A_LIVE, A_TEST, B_LIVE)
                ]
                wanted.append((A_LIVE, "publishable"))
                texts = await publish_seller_keys(js, ns, context.key_book, context.sellers, wanted)
                keys = {
                    tenant: {"authorization": f"Bearer {text}"}
                    for (tenant, kind), text in texts.items()
                    if kind == "secret"
                }
                transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))
                async with httpx.AsyncClient(transport=transport, base_url="http://hooks") as http:
                    harness = Harness(app, http, js, ns, database_url, keys)
                    harness.publishable = {
                        "authorization": f"Bearer {texts[(A_LIVE, 'publishable')]}"
                    }
                    yield harness
        finally:
            await nc.close()

    return start


@pytest.fixture
async def harness(start_webhooks: Any) -> AsyncIterator[Harness]:
    async with start_webhooks() as h:
        yield h
