"""The `stack` fixture: the real services on real ports (client_stack.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from tessera.auth.app import create_app as create_auth
from tessera.auth.settings import AuthSettings
from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.devstack.infra import free_port
from tessera.devstack.serving import LoopServer
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.settings import LicensingSettings
from tessera.shared.settings import InfraSettings
from tessera.webhooks.app import create_app as create_webhooks
from tessera.webhooks.settings import WebhooksSettings

# --import-mode=importlib puts no test folder on sys.path; the builders live beside us.
sys.path.insert(0, str(Path(__file__).parent))

from client_stack import SERVICES, Receiver, Stack  # type: ignore[import-not-found]


@pytest.fixture
async def stack(database_factory: Any, infra_settings: InfraSettings) -> AsyncIterator[Stack]:
    apps: dict[str, FastAPI] = {
        # Mails go nowhere (a closed port); the signing key is read afresh (rotation tests).
        "auth": create_auth(
            AuthSettings(
                database_url=await database_factory("auth"),
                smtp_port=free_port(),
                signing_key_cache_seconds=0,
            ),
            infra_settings,
        ),
        "billing": create_billing(
            BillingSettings(database_url=await database_factory("billing")), infra_settings
        ),
        "licensing": create_licensing(
            LicensingSettings(database_url=await database_factory("licensing")), infra_settings
        ),
        "webhooks": create_webhooks(
            WebhooksSettings(
                database_url=await database_factory("webhooks"),
                poll_seconds=0.1,
                retry_schedule=[0.2, 0.3, 0.5],
                retry_jitter=0.1,
            ),
            infra_settings,
        ),
    }
    receiver = Receiver()
    async with AsyncExitStack() as exit_stack:
        urls = {}
        for name in SERVICES:
            port = free_port()
            server = await LoopServer.start(apps[name], port)
            exit_stack.push_async_callback(server.stop, 30)
            urls[name] = f"http://127.0.0.1:{port}"
        hooks = await LoopServer.start(receiver.app(), receiver.port)
        exit_stack.push_async_callback(hooks.stop, 10)
        for app in apps.values():
            await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
        stack = Stack(apps, urls, receiver, seller=None)
        stack.seller = await stack.make_seller("acme-tools")
        yield stack
