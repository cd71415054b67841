"""Test builders for webhooks: a real receiver (an HTTP server on a local port that verifies
each request's signature with the `standardwebhooks` library) and a harness around the
real webhooks app."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI
from nats.js import JetStreamContext
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.requests import Request
from starlette.responses import Response

from tessera.shared.events.billing import OrderPaid
from tessera.shared.events.envelope import Event
from tessera.shared.events.topology import Namespace, stream_for_subject
from tessera.shared.sellers import Tenant

A_LIVE = Tenant(uuid.UUID("00000000-0000-4000-8000-00000000000a"), "live")
A_TEST = Tenant(A_LIVE.seller_id, "test")
B_LIVE = Tenant(uuid.UUID("00000000-0000-4000-8000-00000000000b"), "live")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    webhook_id: str
    body: bytes
    headers: dict[str, str]
    # The receiver's secrets (by index) whose signature verified.
    verified_with: list[int]
    at: float

    @property
    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass(eq=False)
class Receiver:
    """A webhook receiver on 127.0.0.1:`port`. `mode`: `ok` (204 once a signature
    verifies, 400 if none does), `fail` (503), `hang` (never answers), or a status code.
    Down (not listening at all) until `start()`, and again after `stop()`."""

    secrets: list[str] = field(default_factory=list)
    mode: str | int = "ok"
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    answer_body: bytes = b"thanks"
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def verified(self) -> list[Received]:
        return [r for r in self.received if r.verified_with]

    def ids(self) -> set[str]:
        return {r.webhook_id for r in self.verified()}

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        good = []
        for index, secret in enumerate(self.secrets):
            with contextlib.suppress(WebhookVerificationError):
                Webhook(secret).verify(body, headers)
                good.append(index)
        self.received.append(
            Received(headers.get("webhook-id", ""), body, headers, good, time.monotonic())
        )
        if self.mode == "hang":
            await asyncio.Event().wait()
        if self.mode == "fail":
            return Response(b"down for maintenance", status_code=503)
        if isinstance(self.mode, int):
            headers_out = {"location": "http://127.0.0.1:1/elsewhere"}
            return Response(self.answer_body, status_code=self.mode, headers=headers_out)
        return Response(self.answer_body if good else b"bad signature", 200 if good else 400)

    async def start(self) -> None:
        app = FastAPI()
        app.add_api_route("/hooks", self.handle, methods=["POST"])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        await until(lambda: self._server is not None and self._server.started, timeout=10)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # a hanging handler must not keep it up
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 10)
        self._server = self._task = None


@contextlib.asynccontextmanager
async def receiving(**kwargs: Any) -> AsyncIterator[Receiver]:
    receiver = Receiver(**kwargs)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


@dataclass
class Harness:
    app: FastAPI
    http: httpx.AsyncClient
    js: JetStreamContext
    ns: Namespace
    database_url: str
    keys: dict[Tenant, dict[str, str]]
    publishable: dict[str, str] = field(default_factory=dict)

    async def publish(self, event: Event, msg_id: str | None = None) -> None:
        await self.js.publish(
            self.ns.subject(event.subject),
            event.to_json(),
            stream=self.ns.stream(stream_for_subject(event.subject)),
            headers={"Nats-Msg-Id": msg_id or str(event.event_id)},
        )

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def fetchval(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0][0] if rows else None

    async def endpoint(self, tenant: Tenant, url: str, **body: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/v1/webhook-endpoints", json={"url": url, **body}, headers=self.keys[tenant]
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


async def until(
    predicate: Callable[[], Awaitable[Any]] | Callable[[], Any], timeout: float = 20.0
) -> Any:
    """Poll a predicate (sync or async) until truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {value!r}")
        await asyncio.sleep(0.02)


def order_paid(tenant: Tenant, **over: Any) -> OrderPaid:
    fields: dict[str, Any] = {
        "order_id": uuid.uuid4(), "account_id": uuid.uuid4(), "email": "buyer@example.com",
        "sku": "tool-1y", "quantity": 1, "amount_total": 4900, "currency": "usd",
        "product": "tool", "policy": "tool-year", "seats": 1,
        "seller_id": tenant.seller_id, "mode": tenant.mode,
        "occurred_at": datetime.now(UTC),
    }  # fmt: skip
    return OrderPaid(**{**fields, **over})
