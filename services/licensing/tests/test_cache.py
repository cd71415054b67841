"""validate's cache under its safety-net expiry: a due entry is answered while one read
refreshes it, concurrent misses share one read, a read that raced a change is neither
stored nor shared, and keys stored together do not come due together."""

from __future__ import annotations

import asyncio
import time
import uuid

from tessera.licensing.cache import NOBODY, Known, LicenseCache
from tessera.shared.sellers import HOME_LIVE


def a_known(status: str = "active") -> Known:
    return Known(
        id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        product_code="chartgpt",
        status=status,
        expires_at=None,
        max_machines=2,
        lease_seconds=3600,
        grace_seconds=0,
        entitlements=("chartgpt.core",),
        heartbeat_seconds=None,
        heartbeat_grace_seconds=0,
        floating=False,
        tenant=HOME_LIVE,
        activations={},
        seats={},
    )


class Reads:
    """What the cache reads: counts the reads and answers what it is told to."""

    def __init__(self, answer: Known | None) -> None:
        self.answer = answer
        self.count = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self) -> Known | None:
        self.count += 1
        await self.gate.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def live_cache(ttl: float = 60.0) -> LicenseCache:
    cache = LicenseCache(ttl=ttl, max_entries=1000)
    cache.live = True
    return cache


async def test_concurrent_misses_of_one_key_share_one_read() -> None:
    cache, known = live_cache(), a_known()
    reads = Reads(known)
    reads.gate.clear()
    waiting = [asyncio.create_task(cache.load(b"k", reads)) for _ in range(20)]
    await asyncio.sleep(0.01)
    reads.gate.set()
    assert await asyncio.gather(*waiting) == [known] * 20
    assert reads.count == 1
    assert cache.lookup(b"k") == (known, False)


async def test_a_due_entry_is_answered_while_one_read_refreshes_it() -> None:
    cache, old, new = live_cache(ttl=0.05), a_known(), a_known("suspended")
    await cache.load(b"k", Reads(old))
    await asyncio.sleep(0.06)
    entry, due = cache.lookup(b"k")
    assert (entry, due) == (old, True)
    reads = Reads(new)
    for _ in range(20):
        cache.refresh(b"k", reads)
    assert cache.lookup(b"k")[0] is old  # still answered meanwhile
    await asyncio.sleep(0.01)
    assert reads.count == 1
    assert cache.lookup(b"k") == (new, False)


async def test_a_read_that_began_before_a_change_is_not_shared_or_stored() -> None:
    cache, before, after = live_cache(), a_known(), a_known("revoked")
    slow = Reads(before)
    slow.gate.clear()
    first = asyncio.create_task(cache.load(b"k", slow))
    await asyncio.sleep(0.01)
    cache.forget("*")  # a change was committed while that read was in flight
    fresh = Reads(after)
    assert await cache.load(b"k", fresh) is after
    assert fresh.count == 1
    slow.gate.set()
    assert await first is before  # its caller asked before the change
    assert cache.lookup(b"k")[0] is after  # but it is not what the cache keeps


async def test_a_failed_refresh_keeps_the_entry_and_waits_before_trying_again() -> None:
    cache, known = live_cache(ttl=0.05), a_known()
    await cache.load(b"k", Reads(known))
    await asyncio.sleep(0.06)
    failing = Reads(None)
    failing.answer = ConnectionError("postgres went away")  # type: ignore[assignment]
    cache.refresh(b"k", failing)
    await asyncio.sleep(0.01)
    assert failing.count == 1
    assert cache.lookup(b"k") == (known, False)  # not due again for a second


async def test_unknown_keys_are_remembered_and_keys_stored_together_come_due_apart() -> None:
    cache = live_cache(ttl=100.0)
    assert await cache.load(b"nobody", Reads(None)) == NOBODY
    started = time.monotonic()
    for n in range(200):
        cache.put(n.to_bytes(2, "big"), a_known(), cache.epoch)
    due = [cache._entries[n.to_bytes(2, "big")][0] - started for n in range(200)]
    assert all(75.0 <= d <= 100.5 for d in due)
    assert max(due) - min(due) > 10.0
