"""Reporting key use: every process that checks keys tells auth, every `interval()`
seconds, which keys it accepted and when last (`ApiKeysUsed`), so a seller's key listing
shows a coarse `last_used_at` without a write per request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from nats.aio.client import Client

from tessera.shared.api_keys.book import KeyBook
from tessera.shared.events.kernel import ApiKeysUsed, KeyUse
from tessera.shared.events.topology import Namespace

log = logging.getLogger("tessera.api_keys")

BATCH = 1000


async def report_use(
    book: KeyBook,
    client: Client,
    namespace: Namespace,
    producer: str,
    interval: Callable[[], float],
) -> None:
    """Until cancelled: publish the book's uses every `interval()` seconds. A batch that
    cannot go out (NATS away) is kept for the next round."""
    subject = namespace.subject(ApiKeysUsed.subject)
    while True:
        waited = 0.0
        # In steps of at most a second: a changed interval takes effect within one.
        while waited < interval():
            step = min(1.0, interval() - waited)
            await asyncio.sleep(step)
            waited += step
        used = book.take_used()
        items = sorted(used.items())
        for start in range(0, len(items), BATCH):
            chunk = items[start : start + BATCH]
            event = ApiKeysUsed(
                producer=producer,
                used=[KeyUse(key_id=k, at=datetime.fromtimestamp(t, UTC)) for k, t in chunk],
            )
            try:
                await client.publish(subject, event.to_json())
            except Exception as error:
                book.put_back(dict(items[start:]))
                log.warning("api_keys.use_report_failed", extra={"error": repr(error)})
                break
