"""`SellerBook`: the seller directory every replica of every service holds in memory.

Auth publishes each seller's public record (`SellerChanged`) on the `SELLERS` stream, one
subject per seller, only the latest kept; the book follows it (`RecordFollower`). A
customer's access token names its seller by slug (`sel`); the verifier turns the slug into
the seller's internal id here, with no call and no I/O.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from tessera.shared.directory.follower import RecordFollower
from tessera.shared.events.auth import PlanStatus, SellerChanged, SellerSettings
from tessera.shared.events.topology import SELLERS


@dataclass(frozen=True, slots=True)
class SellerEntry:
    seller_id: UUID
    slug: str
    name: str
    signup_policy: Literal["closed", "open"]
    status: Literal["active", "suspended"]
    version: int
    # What billing, licensing and the portal read in memory (e.g. `upgrade_url`).
    settings: SellerSettings
    plan_status: PlanStatus = "none"
    plan_grace_until: float | None = None  # epoch seconds

    @property
    def active(self) -> bool:
        return self.status == "active"

    def plan_in_force(self, now: float) -> bool:
        """The seller's platform plan lets its live keys work: paid up, or past due but
        still within its grace (docs/sellers.md, "Platform plan")."""
        if self.plan_status == "active":
            return True
        grace = self.plan_grace_until
        return self.plan_status == "past_due" and grace is not None and now < grace


# How long after its replay a book still waits a moment for a seller it does not know: at a
# stack's start the stream can be empty when a replica replays it, and the first records
# (the home seller's) arrive just after.
SETTLING_SECONDS = 5.0


class SellerBook:
    """id -> the latest record of its seller, and slug -> the same entry."""

    def __init__(self) -> None:
        self._by_id: dict[UUID, SellerEntry] = {}
        self._by_slug: dict[str, SellerEntry] = {}
        self._changed = asyncio.Event()
        self.follower = RecordFollower(SELLERS, SellerChanged, self.apply)

    @property
    def ready(self) -> bool:
        return self.follower.ready

    def __len__(self) -> int:
        return len(self._by_id)

    def apply(self, record: SellerChanged) -> bool:
        """Hold `record` unless the one held for its seller is as new or newer (a replay, a
        redelivery or an out-of-order record changes nothing). Returns whether it was."""
        held = self._by_id.get(record.seller_id)
        if held is not None and held.version >= record.version:
            return False
        entry = SellerEntry(
            seller_id=record.seller_id,
            slug=record.slug,
            name=record.name,
            signup_policy=record.signup_policy,
            status=record.status,
            version=record.version,
            settings=record.settings,
            plan_status=record.plan_status,
            plan_grace_until=(
                record.plan_grace_until.timestamp() if record.plan_grace_until else None
            ),
        )
        if held is not None and held.slug != entry.slug:
            self._by_slug.pop(held.slug, None)
        self._by_id[entry.seller_id] = entry
        self._by_slug[entry.slug] = entry
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return True

    @property
    def settling(self) -> bool:
        """Not replayed yet, or replayed only a moment ago (see SETTLING_SECONDS)."""
        ready_at = self.follower.ready_at
        return ready_at is None or time.monotonic() - ready_at < SETTLING_SECONDS

    async def find_slug(self, slug: str, *, wait: float = 1.0) -> SellerEntry | None:
        """The seller with this slug; while the book is settling, wait up to `wait` seconds
        for it to arrive. Once settled an unknown slug is unknown at once, so made-up slugs
        cannot hold requests open."""
        entry = self._by_slug.get(slug)
        if entry is not None or not self.settling:
            return entry
        deadline = time.monotonic() + wait
        while entry is None and (remaining := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                break
            entry = self._by_slug.get(slug)
        return entry

    def by_slug(self, slug: str) -> SellerEntry | None:
        return self._by_slug.get(slug)

    def by_id(self, seller_id: UUID) -> SellerEntry | None:
        return self._by_id.get(seller_id)
