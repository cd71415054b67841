"""The real stack for the client's tests (the fixture is in conftest.py): auth, billing, licensing and webhooks each on its
own database and a real port (uvicorn in the test's loop), on the real Postgres, Redis and
NATS; a seller with a test key pair made through auth; a webhook receiver on a port. The
client talks to them over TCP exactly as a seller's server would."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tessera_client import AsyncTessera, NotFound

from tessera.auth.api_keys import service as api_keys
from tessera.auth.context import Auth
from tessera.auth.sellers import service as sellers
from tessera.auth.sessions import service as sessions
from tessera.auth.users import service as users
from tessera.devstack.infra import free_port
from tessera.shared.api_keys import UnknownKey
from tessera.shared.events.envelope import new_event_id
from tessera.shared.sellers import Tenant

SERVICES = ("auth", "billing", "licensing", "webhooks")


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """A seller's webhook endpoint: keeps every POST it gets."""

    port: int = field(default_factory=free_port)
    got: asyncio.Queue[Delivery] = field(default_factory=asyncio.Queue)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def handle(self, request: Request) -> Response:
        await self.got.put(Delivery(await request.body(), dict(request.headers)))
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hooks", self.handle, methods=["POST"])])

    async def next(self, event_type: str, timeout: float = 20) -> Delivery:
        """The next delivery of `event_type` (others skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                delivery = await self.got.get()
                if f'"type":"{event_type}"' in delivery.body.decode():
                    return delivery


@dataclass
class Seller:
    slug: str
    id: UUID
    tenant: Tenant
    secret_key: str
    publishable_key: str


@dataclass
class Stack:
    apps: dict[str, FastAPI]
    urls: dict[str, str]
    receiver: Receiver
    seller: Seller

    @property
    def auth(self) -> Auth:
        context: Auth = self.apps["auth"].state.context
        return context

    def client(self, **overrides: Any) -> AsyncTessera:
        return AsyncTessera(self.seller.secret_key, **{**self.client_args(), **overrides})

    def client_args(self) -> dict[str, Any]:
        return {
            "seller": self.seller.slug,
            "auth_url": self.urls["auth"],
            "billing_url": self.urls["billing"],
            "licensing_url": self.urls["licensing"],
            "webhooks_url": self.urls["webhooks"],
        }

    async def make_seller(self, slug: str) -> Seller:
        async with self.auth.pool.acquire() as conn, conn.transaction():
            made = await sellers.create(conn, new_event_id(), slug, slug.title())
        pair = await api_keys.issue_pair(self.auth, made.id, "prod", "test", None)
        seller = Seller(slug, made.id, Tenant(made.id, "test"), pair.secret.key,
                        pair.publishable.key)  # fmt: skip
        for app in self.apps.values():
            await until(15, lambda app=app: knows(app, seller.secret_key, made.id))
        return seller

    async def customer_token(self, seller: Seller, email: str) -> str:
        """A signed-in customer's access token from auth's own token route (the session a
        verified sign-in link opens)."""
        user = await users.get_by_email(self.auth.pool, seller.tenant, email)
        opened = await sessions.open_browser_session(
            self.auth, user, ip="203.0.113.9", device="client-tests"
        )
        async with httpx.AsyncClient(base_url=self.urls["auth"]) as http:
            answer = await http.post("/v1/sessions/token", json={"session_id": opened.session_id})
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    async def assign_plan(
        self, client: AsyncTessera, customer: UUID, limit: int | None, rate: int | None = 600
    ) -> None:
        """A free tier of `limit` api_calls a month, once auth's customer event reached
        licensing: as a seller that creates and then plans retries a 404 briefly."""
        grants = {"quotas": {"api_calls": {"limit": limit}}, "rate_per_minute": rate}

        async def assigned() -> bool:
            try:
                await client.set_usage_plan(customer, "free", grants)
            except NotFound:
                return False
            return True

        await until(15, assigned)


def knows(app: FastAPI, key: str, seller_id: UUID) -> bool:
    context = app.state.context
    try:
        context.key_book.check(key)
    except UnknownKey:
        return False
    return context.sellers.by_id(seller_id) is not None


async def until(seconds: float, condition: Any) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert asyncio.get_running_loop().time() < deadline, f"not within {seconds} s"
        await asyncio.sleep(0.05)
