"""Webhook delivery as Stripe does it: the event JSON POSTed to each endpoint of its kind
(platform or Connect), signed `Stripe-Signature: t=...,v1=HMAC_SHA256(secret, "t.payload")`,
retried after a failure. Endpoints come from the settings (like `stripe listen`) and from
`/v1/webhook_endpoints`. Every attempt is recorded (`GET /_standin/deliveries`)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

from tessera.devstack.stripe_standin.settings import StandInSettings
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


@dataclass
class Target:
    """Where some events go: the platform's (events without `account`) or a Connect
    endpoint (events with it), for the event types it enabled (`*`: all). Each target has
    its own queue, so a failing endpoint holds up only its own events."""

    url: str
    secret: str
    connect: bool
    events: tuple[str, ...] = ("*",)
    endpoint_id: str | None = None  # a /v1/webhook_endpoints object's id
    enabled: bool = True
    queue: asyncio.Queue[Obj] = field(default_factory=asyncio.Queue)

    def wants(self, event: Obj) -> bool:
        return (
            self.enabled
            and ("account" in event) == self.connect
            and ("*" in self.events or event["type"] in self.events)
        )


class Deliverer:
    """Sends each target its events in the order they happened (one sender per target,
    as one Stripe endpoint sees them), retrying a failed one before moving on."""

    def __init__(self, settings: StandInSettings) -> None:
        self.settings = settings
        self.targets: list[Target] = [
            Target(hook.url, hook.secret, connect)
            for hook, connect in (
                (settings.platform_webhook, False),
                (settings.connect_webhook, True),
            )
            if hook is not None
        ]
        self.attempts: list[Attempt] = []
        # Per event, the endpoints it has not yet reached (its `pending_webhooks`).
        self.pending: dict[str, int] = {}
        self.client: httpx.AsyncClient | None = None
        self.tasks: dict[int, asyncio.Task[None]] = {}

    def add(self, target: Target) -> None:
        self.targets.append(target)
        self._start(target)

    def remove(self, endpoint_id: str) -> None:
        for target in [t for t in self.targets if t.endpoint_id == endpoint_id]:
            self.targets.remove(target)
            task = self.tasks.pop(id(target), None)
            if task is not None:
                task.cancel()

    def enqueue(self, event: Obj) -> None:
        for target in self.targets:
            if target.wants(event):
                self.pending[event["id"]] = self.pending.get(event["id"], 0) + 1
                target.queue.put_nowait(event)

    def current(self, event: Obj) -> Obj:
        """The event with its `pending_webhooks` as of now."""
        return {**event, "pending_webhooks": self.pending.get(event["id"], 0)}

    def _start(self, target: Target) -> None:
        if self.client is not None and id(target) not in self.tasks:
            self.tasks[id(target)] = asyncio.create_task(self._run(self.client, target))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=self.settings.delivery_timeout) as client:
            self.client = client
            for target in self.targets:
                self._start(target)
            try:
                yield
            finally:
                self.client = None
                tasks = list(self.tasks.values())
                self.tasks.clear()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Until every queued event has been delivered or given up on (tests wait on it)."""
        for target in list(self.targets):
            await target.queue.join()

    async def _run(self, client: httpx.AsyncClient, target: Target) -> None:
        while True:
            event = await target.queue.get()
            try:
                await self._deliver(client, target, event)
            finally:
                target.queue.task_done()

    async def _deliver(self, client: httpx.AsyncClient, target: Target, event: Obj) -> None:
        payload = json.dumps(self.current(event), indent=2)
        for delay in (0.0, *self.settings.delivery_retries):
            await asyncio.sleep(delay)
            if await self._attempt(client, target, event["id"], payload):
                self.pending[event["id"]] -= 1
                return
        log.warning("gave up delivering %s to %s", event["id"], target.url)

    async def _attempt(
        self, client: httpx.AsyncClient, target: Target, event_id: str, payload: str
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
