"""The portal against the real stack: auth, billing and licensing served by uvicorn on free
ports (real HTTP, as in production), each on its own real Postgres database, sharing this
test's NATS namespace and Redis; auth's mail goes to a real SMTP mail catcher read through
its Mailpit-compatible API. The portal itself runs on a real port too, so the browser tests
and the httpx tests see the same thing."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tessera.auth.app import create_app as create_auth
from tessera.auth.settings import AuthSettings
from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.devstack.infra import free_port
from tessera.devstack.mailcatcher import MailCatcher
from tessera.devstack.serving import LoopServer
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.settings import LicensingSettings
from tessera.portal.app import create_app as create_portal
from tessera.portal.settings import PortalSettings
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
ADMIN = "operator@example.com"
LINK = re.compile(r"/sign-in/link\?token=([A-Za-z0-9_\-]+)")
CODE = re.compile(r"enter this code: (\d{6})")
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
# Roomy limits: tests that are not about rate limits must never meet one.
AUTH_ROOMY: dict[str, Any] = {
    "rl_link_per_address_burst": "1000/minute",
    "rl_link_per_address": "1000/hour",
    "rl_link_per_ip": "1000/hour",
    "rl_link_global": "10000/hour",
    "rl_verify_per_ip": "1000/minute",
    "mail_poll_seconds": 0.2,
    "mail_retry_base_seconds": 0.2,
    "mail_retry_max_seconds": 0.5,
    "device_poll_interval_seconds": 1,
    "device_slow_down_seconds": 1,
}


class Mailbox:
    """A person's mailbox, read through the catcher's HTTP API."""

    def __init__(self, api_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=api_url, timeout=5)

    async def wait_for(self, to: str, subject: str, count: int = 1, timeout: float = 20) -> str:
        """The text of the newest mail to `to` whose subject starts with `subject`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            listing = (await self.http.get("/api/v1/messages")).json()["messages"]
            found = [
                m
                for m in listing
                if m["Subject"].startswith(subject) and any(a["Address"] == to for a in m["To"])
            ]
            if len(found) >= count:
                message = (await self.http.get(f"/api/v1/message/{found[0]['ID']}")).json()
                return str(message["Text"])
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no mail {subject!r} to {to} within {timeout}s")
            await asyncio.sleep(0.1)


@dataclass
class Stack:
    portal_url: str
    auth_url: str
    billing_url: str
    licensing_url: str
    apps: dict[str, FastAPI]
    mailbox: Mailbox
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def browser(self) -> httpx.AsyncClient:
        """A browser without JavaScript: cookies, forms, no redirects followed for it."""
        client = httpx.AsyncClient(base_url=self.portal_url, timeout=20)
        self.clients.append(client)
        return client

    async def buy(self, email: str) -> None:
        """Through billing's test checkout, as a buyer's browser does."""
        async with httpx.AsyncClient(base_url=self.billing_url, timeout=20) as shop:
            buy = await shop.get("/buy/chartgpt-lifetime")
            assert buy.status_code == 303, buy.text
            session_id = buy.headers["location"].rsplit("/", 1)[1]
            paid = await shop.post(f"/test-checkout/{session_id}/pay", data={"email": email})
            assert paid.status_code == 303, paid.text

    async def welcome_link(self, email: str) -> str:
        text = await self.mailbox.wait_for(email, "Welcome to")
        found = LINK.search(text)
        assert found, text
        return found.group(0)

    async def sign_in(self, client: httpx.AsyncClient, email: str, count: int = 1) -> None:
        """The whole no-JS sign-in: email form, the mail, the landing page, the button."""
        form = await client.get("/sign-in")
        requested = await client.post("/sign-in", data={"email": email, "csrf": csrf_of(form.text)})
        assert requested.status_code == 303, requested.text
        text = await self.mailbox.wait_for(email, "Sign in to", count)
        found = LINK.search(text)
        assert found, text
        await self.land(client, found.group(0))

    async def land(self, client: httpx.AsyncClient, link: str) -> httpx.Response:
        landing = await client.get(link)
        assert landing.status_code == 200, landing.text
        token = link.split("token=", 1)[1]
        done = await client.post(
            "/sign-in/link", data={"token": token, "csrf": csrf_of(landing.text)}
        )
        assert done.status_code == 303, done.text
        return done

    async def licenses(self, client: httpx.AsyncClient, timeout: float = 20) -> str:
        """The licenses page, once it lists a license (issuing travels over NATS)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            page = await client.get("/licenses")
            assert page.status_code == 200, page.text
            if "License key" in page.text:
                return page.text
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("no license appeared")
            await asyncio.sleep(0.2)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


def new_email() -> str:
    return f"buyer-{secrets.token_hex(4)}@example.com"


@pytest.fixture
async def stack(
    database_factory: Any,
    infra_settings: InfraSettings,
    all_streams: None,  # webhooks' stream, which auth consumes (webhooks is not run here)
) -> AsyncIterator[Stack]:
    ports = {name: free_port() for name in ("auth", "billing", "licensing", "portal")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    infra = infra_settings.model_copy(
        update={"auth_jwks_url": url["auth"] + "/.well-known/jwks.json"}
    )
    mail = MailCatcher("127.0.0.1", free_port(), free_port())
    await mail.start()
    apps = {
        "auth": create_auth(
            AuthSettings(
                database_url=await database_factory("auth"),
                smtp_port=mail.smtp_port,
                portal_url=url["portal"],
                bootstrap_admins=[ADMIN],
                **AUTH_ROOMY,
            ),
            infra,
        ),
        "billing": create_billing(
            BillingSettings(
                database_url=await database_factory("billing"),
                catalog_file=REPO / "deploy" / "catalog.json",
                public_url=url["billing"],
                portal_url=url["portal"],
            ),
            infra,
        ),
        "licensing": create_licensing(
            LicensingSettings(
                database_url=await database_factory("licensing"),
                auth_jwks_url=url["auth"] + "/.well-known/jwks.json",
            ),
            infra,
        ),
        "portal": create_portal(
            PortalSettings(
                auth_url=url["auth"],
                billing_url=url["billing"],
                licensing_url=url["licensing"],
                port=ports["portal"],
            ),
            infra,
        ),
    }
    servers = []
    try:
        for name in ("auth", "billing", "licensing", "portal"):
            servers.append(await LoopServer.start(apps[name], ports[name], lifespan="on"))
        for name in ("auth", "billing", "licensing"):
            await asyncio.wait_for(apps[name].state.context.messaging_ready.wait(), 30)
        stack = Stack(
            url["portal"], url["auth"], url["billing"], url["licensing"], apps,
            Mailbox(mail.api_url),
        )  # fmt: skip
        yield stack
        for client in stack.clients:
            await client.aclose()
        await stack.mailbox.http.aclose()
    finally:
        for served in reversed(servers):
            await served.stop()
        await mail.stop()
