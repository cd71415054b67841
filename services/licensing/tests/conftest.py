"""Licensing test fixtures: the real app on real Postgres, Redis and NATS, billing's and
auth's streams to publish orders and users on, and access tokens signed by a test Ed25519 key."""

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

from tessera.licensing.app import create_app
from tessera.licensing.settings import LicensingSettings
from tessera.shared.events.topology import AUTH, BILLING, LICENSING, Namespace
from tessera.shared.messaging import ensure_stream, stream_config
from tessera.shared.settings import InfraSettings

# --import-mode=importlib puts no test folder on sys.path; the builders live beside us.
sys.path.insert(0, str(Path(__file__).parent))

from licensing_factories import Harness, TokenMint  # type: ignore[import-not-found]


@pytest.fixture
def mint() -> TokenMint:
    return TokenMint()


@pytest.fixture
def start_licensing(
    database_url: str, infra_settings: InfraSettings, running: Any, mint: TokenMint
) -> Any:
    """`async with start_licensing() as h:` runs one licensing process on the test's database
    (again after the block ends: a restart)."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Harness]:
        ns = Namespace(infra_settings.namespace)
        nc = await nats.connect(str(infra_settings.nats_url))
        js = nc.jetstream()
        for stream in (BILLING, AUTH):  # what licensing reads, declared as their owners would
            await ensure_stream(js, stream_config(stream, ns))
        settings = LicensingSettings(
            database_url=database_url, signing_key_refresh_seconds=0.2, **overrides
        )
        app: FastAPI = create_app(settings, infra_settings)
        try:
            async with running(app):
                await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
                app.state.context.token_verifier.jwks.load(mint.jwks)
                transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))
                async with httpx.AsyncClient(transport=transport, base_url="http://lic") as http:
                    yield Harness(app, http, js, ns, database_url, mint)
        finally:
            await nc.close()

    return start


@pytest.fixture
async def harness(start_licensing: Any) -> AsyncIterator[Harness]:
    async with start_licensing() as h:
        yield h


@pytest.fixture
def licensing_stream(infra_settings: InfraSettings) -> str:
    return Namespace(infra_settings.namespace).stream(LICENSING)
