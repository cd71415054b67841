"""Webhook delivery as Stripe does it: the event JSON POSTed to each endpoint of its kind
(platform or Connect), signed `Stripe-Signature: t=...,v1=HMAC_SHA256(secret, "t.payload")`,
retried after a failure. Every attempt is recorded (`GET /_standin/deliveries`)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from tessera.devstack.stripe_standin.settings import StandInSettings, WebhookTarget
from tessera.devstack.stripe_standin.store import Store
from tessera.devstack.stripe_standin.wire import Obj

log = logging.getLogger(__name__)


def signature(secret: str, payload: str, timestamp: int) -> str:
    """The `Stripe-Signature` header value for this payload at this time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass
class Attempt:
    event: str
    url: str
    status: int | None
    error: str | None
    at: float

    def describe(self) -> Obj:
        return {
            "event": self.event,
            "url": self.url,
            "status": self.status,
            "error": self.error,
            "at": self.at,
        }


class Deliverer:
    """Sends each event to its endpoint in the order they happened (one queue, one sender,
    as a single Stripe endpoint sees them), retrying a failed one before moving on."""

    def __init__(self, settings: StandInSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.queue: asyncio.Queue[Obj] = asyncio.Queue()
        self.attempts: list[Attempt] = []

    def target(self, event: Obj) -> WebhookTarget | None:
        if "account" in event:
            return self.settings.connect_webhook
        return self.settings.platform_webhook

    def enqueue(self, event: Obj) -> None:
        if self.target(event) is not None:
            event["pending_webhooks"] = 1
            self.queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=self.settings.delivery_timeout) as client:
            task = asyncio.create_task(self._run(client))
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def idle(self) -> None:
        """Until every queued event has been delivered or given up on (tests wait on it)."""
        await self.queue.join()

    async def _run(self, client: httpx.AsyncClient) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self._deliver(client, event)
            finally:
                self.queue.task_done()

    async def _deliver(self, client: httpx.AsyncClient, event: Obj) -> None:
        target = self.target(event)
        assert target is not None
        payload = json.dumps(event, indent=2)
        for delay in (0.0, *self.settings.delivery_retries):
            await asyncio.sleep(delay)
            if await self._attempt(client, target, event["id"], payload):
                event["pending_webhooks"] = 0
                return
        log.warning("gave up delivering %s to %s", event["id"], target.url)

    async def _attempt(
        self, client: httpx.AsyncClient, target: WebhookTarget, event_id: str, payload: str
    ) -> bool:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": signature(target.secret, payload, int(time.time())),
        }
        try:
            response = await client.post(target.url, content=payload, headers=headers)
        except httpx.HTTPError as error:
            self.attempts.append(Attempt(event_id, target.url, None, repr(error), time.time()))
            return False
        self.attempts.append(Attempt(event_id, target.url, response.status_code, None, time.time()))
        return response.is_success
