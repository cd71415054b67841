"""Auth's fixtures: the app on real Postgres/Redis/NATS, a real SMTP mail catcher (the
stand-in for a person's mailbox, speaking SMTP and Mailpit's API), and helpers that act as
the portal would."""

from __future__ import annotations

import asyncio
import re
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import nats
import pytest

from tessera.auth.app import create_app
from tessera.auth.settings import AuthSettings
from tessera.auth.users import service as users
from tessera.devstack.infra import free_port
from tessera.devstack.mailcatcher import MailCatcher
from tessera.devstack.platform_plan import pay_platform_plans
from tessera.shared.events.billing import AccountCreated
from tessera.shared.events.envelope import new_event_id
from tessera.shared.events.topology import BILLING, WEBHOOKS, Namespace
from tessera.shared.messaging import ensure_stream, stream_config
from tessera.shared.settings import InfraSettings

# --import-mode=importlib puts no test folder on sys.path; the seller helpers live beside us.
sys.path.insert(0, str(Path(__file__).parent))

pytestmark = pytest.mark.integration

# Generous limits so that tests which are not about rate limits never meet one.
ROOMY = {
    "rl_link_per_address_burst": "1000/minute",
    "rl_link_per_address": "1000/hour",
    "rl_link_per_ip": "1000/hour",
    "rl_link_global": "10000/hour",
    "rl_verify_per_ip": "1000/minute",
    "rl_device_authorize_per_ip": "1000/hour",
    "rl_device_token_per_ip": "1000/minute",
    "mail_poll_seconds": 0.2,
    "mail_retry_base_seconds": 0.2,
    "mail_retry_max_seconds": 0.5,
    "device_poll_interval_seconds": 1,
    "device_slow_down_seconds": 1,
}

TOKEN_IN_LINK = re.compile(r"/sign-in/link\?token=([A-Za-z0-9_\-]+)")
CODE_IN_MAIL = re.compile(r"enter this code: (\d{6})")


def new_browser() -> str:
    """What the portal keeps in its per-browser binding cookie."""
    return secrets.token_urlsafe(24)


def new_email() -> str:
    return f"user-{secrets.token_hex(4)}@example.com"


@pytest.fixture
async def mail() -> AsyncIterator[MailCatcher]:
    catcher = MailCatcher("127.0.0.1", free_port(), free_port())
    await catcher.start()
    yield catcher
    await catcher.stop()


class Mailbox:
    """A person's mailbox, read through the catcher's Mailpit-compatible HTTP API."""

    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher
        self.http = httpx.AsyncClient(base_url=catcher.api_url, timeout=5)

    async def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        listing = (await self.http.get("/api/v1/messages")).json()["messages"]
        return [m for m in listing if to is None or any(a["Address"] == to for a in m["To"])]

    async def message(self, message_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/message/{message_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def wait_for(
        self, to: str, subject: str, count: int = 1, timeout: float = 10
    ) -> dict[str, Any]:
        """The newest message to `to` whose subject starts with `subject`, once there are
        `count` of them."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [m for m in await self.messages(to) if m["Subject"].startswith(subject)]
            if len(found) >= count:
                return await self.message(found[0]["ID"])
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no mail {subject!r} to {to} within {timeout}s")
            await asyncio.sleep(0.05)

    async def clear(self) -> None:
        await self.http.delete("/api/v1/messages")


def link_token(message: dict[str, Any]) -> str:
    found = TOKEN_IN_LINK.search(message["Text"])
    assert found, message["Text"]
    return found.group(1)


def one_time_code(message: dict[str, Any]) -> str:
    found = CODE_IN_MAIL.search(message["Text"])
    assert found, message["Text"]
    return found.group(1)


class Harness:
    """Auth running, driven as the portal would drive it."""

    new_browser = staticmethod(new_browser)
    new_email = staticmethod(new_email)
    link_token = staticmethod(link_token)
    one_time_code = staticmethod(one_time_code)

    def __init__(self, app: Any, client: httpx.AsyncClient, mailbox: Mailbox) -> None:
        self.app = app
        self.client = client
        self.mailbox = mailbox

    @property
    def auth(self) -> Any:
        return self.app.state.context

    async def pay_plan(self, seller_id: UUID) -> None:
        """The seller's platform plan paid, as billing announces it (its live keys work)."""
        infra = self.auth.infra
        await pay_platform_plans(
            str(infra.nats_url), infra.namespace, [seller_id], [self.auth.sellers]
        )

    def client_from(self, ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="https://auth.test")

    async def user(self, email: str | None = None, *, welcome: bool = True) -> tuple[UUID, str]:
        """A user as billing's event makes one; waits for the welcome mail (whose link
        would otherwise replace a link the test asks for)."""
        email = email or new_email()
        event = AccountCreated(account_id=new_event_id(), email=email)
        admins = [str(a) for a in self.auth.settings.bootstrap_admins]
        user_id = await users.create_user_for_account(self.auth.pool, event, admins)
        assert user_id is not None
        if welcome:
            await self.mailbox.wait_for(email, "Welcome to")
        return user_id, email

    async def request_link(self, email: str, browser: str, **extra: Any) -> httpx.Response:
        return await self.client.post(
            "/v1/magic-links", json={"email": email, "browser": browser, **extra}
        )

    async def link_mail(self, email: str, count: int = 1) -> dict[str, Any]:
        return await self.mailbox.wait_for(email, "Sign in to", count)

    async def sign_in(self, email: str, browser: str | None = None) -> dict[str, Any]:
        browser = browser or new_browser()
        before = len(
            [m for m in await self.mailbox.messages(email) if m["Subject"].startswith("Sign in")]
        )
        assert (await self.request_link(email, browser)).status_code == 202
        message = await self.link_mail(email, before + 1)
        response = await self.client.post(
            "/v1/magic-links/verify", json={"token": link_token(message), "browser": browser}
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def access_token(self, session_id: str) -> str:
        response = await self.client.post("/v1/sessions/token", json={"session_id": session_id})
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def signed_in_token(self, email: str) -> tuple[str, dict[str, Any]]:
        signed = await self.sign_in(email)
        return await self.access_token(signed["session_id"]), signed


async def declare_billing_stream(infra: InfraSettings) -> None:
    """Billing's stream, as a running billing declares it: auth joins NATS (and so relays
    its outbox, the seller directory included) once the streams it consumes exist."""
    nc = await nats.connect(str(infra.nats_url))
    try:
        for stream in (BILLING, WEBHOOKS):
            await ensure_stream(nc.jetstream(), stream_config(stream, Namespace(infra.namespace)))
    finally:
        await nc.close()


@pytest.fixture
def auth_settings(database_url: str, mail: MailCatcher) -> Any:
    def make(**overrides: Any) -> AuthSettings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "smtp_port": mail.smtp_port,
            "portal_url": "https://portal.test",
            **ROOMY,
            **overrides,
        }
        return AuthSettings(**values)

    return make


@pytest.fixture
def harness(
    auth_settings: Any, infra_settings: InfraSettings, mail: MailCatcher, running: Any
) -> Any:
    """`async with harness(**settings) as h:` runs auth with those settings."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Harness]:
        await declare_billing_stream(infra_settings)
        app = create_app(auth_settings(**overrides), infra_settings)
        mailbox = Mailbox(mail)
        async with running(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://auth.test") as c:
                yield Harness(app, c, mailbox)
        await mailbox.http.aclose()

    return start
