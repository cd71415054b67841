"""validate's memory: what a license key looks like (license, policy, product, activations),
per replica, kept fresh by Postgres notifications.

Every committed change to a license, its activations or the catalog NOTIFYs (triggers in
licensing_0003); each replica LISTENs and forgets that license at once. Entries are also
read again after about `ttl` (a safety net), the cache is bounded (LRU), and it is emptied
whenever the listening connection is lost (notifications may have been missed meanwhile).

The safety net must not stall the hot path: keys cached together (a busy minute) would come
due together and their callers would queue on the pool all at once. So an entry's due time
is jittered, a due entry is still answered while one background read refreshes it (it is
at most one read older than `ttl`, and any change still evicts it at once), and concurrent
callers missing the same key share one read.

Unknown keys are cached too (as "no license"): a key answered from memory takes the same
time whether it exists or not, and so does a first lookup, which always reads Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self, cast
from uuid import UUID

import asyncpg

from tessera.shared.sellers import Mode, Tenant

log = logging.getLogger("tessera.licensing.cache")

CHANNEL = "licensing_license_changed"


@dataclass(frozen=True, slots=True)
class License:
    """A license as the desktop verbs read it (with its policy and product): the one read
    model, whether it comes from the cache, the hot path's read or a locked row."""

    id: UUID
    account_id: UUID
    product_code: str
    status: str
    expires_at: datetime | None
    max_machines: int
    lease_seconds: int
    grace_seconds: int
    entitlements: tuple[str, ...]
    # Heartbeats (None: not required) and floating seats (docs/licensing.md).
    heartbeat_seconds: int | None
    heartbeat_grace_seconds: int
    floating: bool
    # Whose license it is: what it changes and publishes is that tenant's.
    tenant: Tenant

    @classmethod
    def of(cls, row: Mapping[str, Any], **extra: Any) -> Self:
        """The read model of a licenses row; a subclass passes its own fields in `extra`."""
        return cls(
            id=row["id"],
            account_id=row["account_id"],
            product_code=row["product_code"],
            status=row["status"],
            expires_at=row["expires_at"],
            max_machines=row["max_machines"],
            lease_seconds=row["lease_seconds"],
            grace_seconds=row["grace_seconds"],
            entitlements=tuple(row["entitlements"]),
            heartbeat_seconds=row["heartbeat_seconds"],
            heartbeat_grace_seconds=row["heartbeat_grace_seconds"],
            floating=row["floating"],
            # The column's CHECK allows only the two modes.
            tenant=Tenant(row["seller_id"], cast(Mode, row["mode"])),
            **extra,
        )


@dataclass(frozen=True, slots=True)
class Known(License):
    """What the cache holds for a key: the license, its activations (fingerprint hash to
    activation id) and, under a floating policy, the seats held (fingerprint hash to the
    seat's end, unix seconds)."""

    activations: dict[str, UUID]
    seats: dict[str, float]


NOBODY = "nobody"  # a key no license has
Entry = Known | str
Read = Callable[[], Awaitable[Known | None]]
RETRY_SECONDS = 1.0


class LicenseCache:
    def __init__(self, *, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        # key hash -> (when it is due to be read again, entry)
        self._entries: OrderedDict[bytes, tuple[float, Entry]] = OrderedDict()
        # Reads in flight, with the epoch each began in.
        self._loading: dict[bytes, tuple[int, asyncio.Task[Entry]]] = {}
        self._by_license: dict[UUID, bytes] = {}
        # Bumped by every invalidation: a fill that raced one is not stored.
        self.epoch = 0
        # Only while a LISTEN connection is up: without it a change could go unnoticed.
        self.live = False

    def lookup(self, key_hash: bytes) -> tuple[Entry | None, bool]:
        """The entry (None when there is none or the cache is off), and whether it is due
        to be read again."""
        if not self.live:
            return None, False
        item = self._entries.get(key_hash)
        if item is None:
            return None, False
        due_at, entry = item
        self._entries.move_to_end(key_hash)
        return entry, time.monotonic() > due_at

    async def load(self, key_hash: bytes, read: Read) -> Entry:
        """Read a missing key, once however many callers miss it at the same time (in a
        task of its own, so a caller that goes away does not cancel the others' read)."""
        return await asyncio.shield(self._reading(key_hash, read))

    def refresh(self, key_hash: bytes, read: Read) -> None:
        """Read a due key again in the background (once, however often it is asked)."""
        self._reading(key_hash, read)

    def _reading(self, key_hash: bytes, read: Read) -> asyncio.Task[Entry]:
        loading = self._loading.get(key_hash)
        if loading is not None and loading[0] == self.epoch:
            return loading[1]
        # None in flight, or one that began before a change it may not have seen.
        # A context of its own: the read serves whoever asks meanwhile, not only this caller.
        task = asyncio.get_running_loop().create_task(
            self._read_and_store(key_hash, read), context=contextvars.Context()
        )
        self._loading[key_hash] = (self.epoch, task)
        task.add_done_callback(lambda done: self._read_done(key_hash, done))
        return task

    def _read_done(self, key_hash: bytes, task: asyncio.Task[Entry]) -> None:
        loading = self._loading.get(key_hash)
        if loading is not None and loading[1] is task:
            del self._loading[key_hash]
        if not task.cancelled() and task.exception() is not None:
            # Retrieved here, so an unawaited refresh is not reported as lost (a caller that
            # awaited the read has the error already). A due entry is tried again in a
            # second, not by every request while Postgres is away.
            item = self._entries.get(key_hash)
            if item is not None:
                self._entries[key_hash] = (time.monotonic() + RETRY_SECONDS, item[1])

    async def _read_and_store(self, key_hash: bytes, read: Read) -> Entry:
        epoch = self.epoch
        known = await read()
        entry: Entry = known if known is not None else NOBODY
        self.put(key_hash, entry, epoch)
        return entry

    def put(self, key_hash: bytes, entry: Entry, epoch: int) -> None:
        if epoch != self.epoch or not self.live:
            return  # something changed while we read: the row may already be stale
        # Due somewhere in the last quarter of the ttl, so entries stored together do not
        # all come due together.
        due_at = time.monotonic() + self.ttl * (1 - 0.25 * random.random())  # noqa: S311
        self._entries[key_hash] = (due_at, entry)
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
