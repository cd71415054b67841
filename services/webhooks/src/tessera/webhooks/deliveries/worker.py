"""The delivery worker: claims due deliveries and runs each attempt as its own task.

At most `max_in_flight` attempts run at once in a process, and at most
`max_in_flight_per_endpoint` for any one endpoint (the claim counts this process's own), so
a slow or hung endpoint holds its own few slots, for one attempt timeout at most, and every
other endpoint's deliveries go on. Replicas share the queue: each row is leased by one
claim (`FOR UPDATE SKIP LOCKED`), and a replica that dies leaves its leases to run out.
Every replica wakes at the commit of new deliveries (a trigger NOTIFYs `webhooks_deliveries`),
polling as a fallback; the kernel's `NotifiedLoop` runs the rounds and backs off on errors.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
import httpx

from tessera.shared.db.notified import NotifiedLoop
from tessera.shared.keys import Sealer, SealingError
from tessera.webhooks.catalogue import service as catalogue
from tessera.webhooks.deliveries import queries, service
from tessera.webhooks.deliveries.sender import Attempt, Outcome, send
from tessera.webhooks.settings import WebhooksSettings
from tessera.webhooks.targets import Resolver

log = logging.getLogger("tessera.webhooks.worker")

NOTIFY_CHANNEL = "webhooks_deliveries"


@dataclass(eq=False)
class Worker:
    pool: asyncpg.Pool
    settings: WebhooksSettings
    # https and public addresses only (always in production).
    public_targets_only: bool
    resolver: Resolver
    sealer: Sealer
    rng: random.Random = field(default_factory=random.Random)
    in_flight: Counter[UUID] = field(default_factory=Counter)
    loop: NotifiedLoop = field(init=False)
    _client: httpx.AsyncClient | None = field(default=None, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.loop = NotifiedLoop(
            self.pool, NOTIFY_CHANNEL, self.claim_and_start, name="webhooks.worker",
            poll_interval=self.settings.poll_seconds,
        )  # fmt: skip

    @property
    def lease_seconds(self) -> float:
        # Longer than any attempt can take, so a live attempt never loses its row.
        return self.settings.attempt_timeout_seconds * 2 + 10

    def client(self) -> httpx.AsyncClient:
        settings = self.settings
        return httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: the target is the checked IP
            timeout=httpx.Timeout(
                settings.attempt_timeout_seconds, connect=settings.connect_timeout_seconds
            ),
            # No keep-alive: a pooled connection is keyed by address, and reusing one made
            # for another host name on that address would skip this host's TLS check.
            limits=httpx.Limits(
                max_connections=settings.max_in_flight, max_keepalive_connections=0
            ),
        )

    async def run(self) -> None:
        async with self.client() as client:
            self._client = client
            try:
                await self.loop.run()
            finally:
                for task in self._tasks:
                    task.cancel()
                if self._tasks:
                    await asyncio.wait(self._tasks, timeout=5)

    async def claim_and_start(self) -> bool:
        """One round: lease what is due, as many as there are free slots, and start an
        attempt for each. True when every free slot was filled (more may be due)."""
        free = self.settings.max_in_flight - len(self._tasks)
        if free <= 0 or self._client is None:
            return False  # a finishing attempt wakes the loop
        async with self.pool.acquire() as conn:
            rows = await queries.claim_due(
                conn, free, self.settings.max_in_flight_per_endpoint, dict(self.in_flight),
                self.lease_seconds,
            )  # fmt: skip
        for row in rows:
            self.in_flight[row["endpoint_id"]] += 1
            task = asyncio.create_task(self._deliver(self._client, row))
            self._tasks.add(task)
            task.add_done_callback(self._done(row["endpoint_id"]))
        return len(rows) == free

    def _done(self, endpoint_id: UUID) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self.in_flight[endpoint_id] -= 1
            if self.in_flight[endpoint_id] <= 0:
                del self.in_flight[endpoint_id]
            self.loop.wake()  # a slot is free

        return done

    async def _deliver(self, client: httpx.AsyncClient, row: asyncpg.Record) -> None:
        sealed = [row["secret_sealed"], row["previous_secret_sealed"]]
        try:
            secrets = [self.sealer.open(s).decode() for s in sealed if s is not None]
        except SealingError:
            # A key-encryption key that is not the one that sealed it: nothing is sent
            # unsigned; the attempt fails (and is logged) until the operator fixes the key.
            outcome = Outcome(None, 0, "", "the signing secret does not open with this key")
        else:
            attempt = Attempt(
                url=row["url"], webhook_id=catalogue.public_id(row["event_id"]),
                body=row["body"], secrets=secrets,
            )  # fmt: skip
            outcome = await send(
                client, attempt, resolver=self.resolver, production=self.public_targets_only,
                timeout=self.settings.attempt_timeout_seconds,
                excerpt_bytes=self.settings.response_excerpt_bytes,
            )  # fmt: skip
        settings = self.settings
        retry_in = None
        if not outcome.ok:
            retry_in = service.retry_delay(
                row["attempts"] + 1, settings.retry_schedule, settings.retry_jitter, self.rng
            )
        try:
            await service.record_outcome(
                self.pool, row, outcome, retry_in, settings.disable_after_seconds
            )
        except Exception as error:
            # The lease runs out and the row is tried again: at least once, never lost.
            log.warning("webhooks.worker.record_failed", extra={"error": repr(error)})
