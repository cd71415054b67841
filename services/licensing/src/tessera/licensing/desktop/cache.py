"""validate's memory: what a license key looks like (license, policy, product, activations),
per replica, kept fresh by Postgres notifications.

Every committed change to a license, its activations or the catalog NOTIFYs (triggers in
licensing_0003); each replica LISTENs and forgets that license at once. Entries also expire
after `ttl` (a safety net), the cache is bounded (LRU), and it is emptied whenever the
listening connection is lost (notifications may have been missed meanwhile).

Unknown keys are cached too (as "no license"): a key answered from memory takes the same
time whether it exists or not, and so does a first lookup, which always reads Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

log = logging.getLogger("tessera.licensing.cache")

CHANNEL = "licensing_license_changed"


@dataclass(frozen=True)
class Known:
    """A license as validate needs it; `activations` maps fingerprint hash to activation id."""

    id: UUID
    account_id: UUID
    product_code: str
    status: str
    expires_at: datetime | None
    max_machines: int
    lease_seconds: int
    grace_seconds: int
    entitlements: tuple[str, ...]
    activations: dict[str, UUID]

    def __getitem__(self, name: str) -> Any:
        # Lets the verdict and lease code read a cached license like a database row.
        return getattr(self, name)


NOBODY = "nobody"  # a key no license has
Entry = Known | str


class LicenseCache:
    def __init__(self, *, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[float, Entry]] = OrderedDict()
        self._by_license: dict[UUID, bytes] = {}
        # Bumped by every invalidation: a fill that raced one is not stored.
        self.epoch = 0
        # Only while a LISTEN connection is up: without it a change could go unnoticed.
        self.live = False

    def get(self, key_hash: bytes) -> Entry | None:
        if not self.live:
            return None
        item = self._entries.get(key_hash)
        if item is None:
            return None
        stored_at, entry = item
        if time.monotonic() - stored_at > self.ttl:
            self._drop(key_hash)
            return None
        self._entries.move_to_end(key_hash)
        return entry

    def put(self, key_hash: bytes, entry: Entry, epoch: int) -> None:
        if epoch != self.epoch or not self.live:
            return  # something changed while we read: the row may already be stale
        self._entries[key_hash] = (time.monotonic(), entry)
        self._entries.move_to_end(key_hash)
        if isinstance(entry, Known):
            self._by_license[entry.id] = key_hash
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key_hash: bytes) -> None:
        _, entry = self._entries.pop(key_hash, (0.0, NOBODY))
        if isinstance(entry, Known):
            self._by_license.pop(entry.id, None)

    def forget(self, payload: str) -> None:
        self.epoch += 1
        if payload == "*":
            self.clear()
            return
        try:
            license_id = UUID(payload)
        except ValueError:
            self.clear()
            return
        key_hash = self._by_license.pop(license_id, None)
        if key_hash is not None:
            self._entries.pop(key_hash, None)

    def clear(self) -> None:
        self.epoch += 1
        self._entries.clear()
        self._by_license.clear()

    def __len__(self) -> int:
        return len(self._entries)


async def listen(cache: LicenseCache, dsn: str, ready: asyncio.Event | None = None) -> None:
    """Hold a LISTEN connection for as long as the service runs; reconnect when it drops."""
    delay = 0.2
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(dsn)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _, lost=lost: lost.set())
            await conn.add_listener(CHANNEL, lambda _c, _p, _ch, payload: cache.forget(payload))
            cache.clear()  # anything cached before we listened may have missed a change
            cache.live = True
            if ready is not None:
                ready.set()
            delay = 0.2
            await lost.wait()
            log.warning("licensing.cache.listener_lost")
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning(
                "licensing.cache.listen_failed", extra={"error": repr(error), "retry_in": delay}
            )
        finally:
            cache.live = False
            cache.clear()
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
