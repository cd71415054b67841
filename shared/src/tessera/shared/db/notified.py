"""A worker loop over a table: drain it, then sleep until Postgres NOTIFYs new rows.

The outbox relay and billing's webhook applier have the same shape: claim rows with
`FOR UPDATE SKIP LOCKED` (so replicas never take the same row), work through them, and when
nothing is left wait for the NOTIFY a trigger sends at commit, polling as a fallback in case
a notification is missed (a listener reconnecting, say). Errors back off and retry forever:
the rows stay put, so nothing is lost through a Postgres or NATS outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

log = logging.getLogger("tessera.worker")

# One round of work; True when it filled a batch, so more may be waiting right now.
Step = Callable[[], Awaitable[bool]]


class NotifiedLoop:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channel: str,
        step: Step,
        *,
        name: str,
        poll_interval: float = 1.0,
        max_backoff: float = 5.0,
        every_so_often: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.pool = pool
        self.channel = channel
        self.step = step
        self.name = name
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.every_so_often = every_so_often
        self.healthy = True
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    async def run(self) -> None:
        """Work until cancelled; keeps going through outages."""
        try:
            await self._work()
        finally:
            # Give the LISTEN connection back, or closing the pool waits for it.
            await self._drop_listener()

    async def _work(self) -> None:
        backoff = 0.1
        rounds = 0
        while True:
            try:
                await self._ensure_listener()
                more = await self.step()
                self.healthy = True
                backoff = 0.1
                rounds += 1
                if self.every_so_often is not None and rounds % 1000 == 0:
                    await self.every_so_often()
                if more:
                    continue
                await self._sleep_until_woken(self.poll_interval)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.healthy = False
                log.warning(
                    f"{self.name}.failed", extra={"error": repr(error), "retry_in": backoff}
                )
                await self._drop_listener()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def close(self) -> None:
        await self._drop_listener()

    def wake(self) -> None:
        """Run a round now rather than at the next notification or poll (the owner knows of
        new work itself, e.g. a slot came free)."""
        self._wake.set()

    async def _sleep_until_woken(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        # A dedicated connection: LISTEN must outlive any one pooled checkout.
        conn: asyncpg.Connection = await self.pool.acquire()
        await conn.add_listener(self.channel, self._on_notify)
        self._listener = conn

    async def _drop_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            await conn.remove_listener(self.channel, self._on_notify)
        with contextlib.suppress(Exception):
            await self.pool.release(conn)
