"""`SellerBook`: the seller directory every replica of every service holds in memory.

Auth publishes each seller's public record (`SellerChanged`) on the `SELLERS` stream, one
subject per seller, only the latest kept; the book follows it (`RecordFollower`). A
customer's access token names its seller by slug (`sel`); the verifier turns the slug into
the seller's internal id here, with no call and no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from tessera.shared.directory.follower import RecordFollower
from tessera.shared.events.auth import SellerChanged
from tessera.shared.events.topology import SELLERS


@dataclass(frozen=True, slots=True)
class SellerEntry:
    seller_id: UUID
    slug: str
    name: str
    signup_policy: Literal["closed", "open"]
    status: Literal["active", "suspended"]
    version: int

    @property
    def active(self) -> bool:
        return self.status == "active"


class SellerBook:
    """id -> the latest record of its seller, and slug -> the same entry."""

    def __init__(self) -> None:
        self._by_id: dict[UUID, SellerEntry] = {}
        self._by_slug: dict[str, SellerEntry] = {}
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
        )
        if held is not None and held.slug != entry.slug:
            self._by_slug.pop(held.slug, None)
        self._by_id[entry.seller_id] = entry
        self._by_slug[entry.slug] = entry
        return True

    def by_slug(self, slug: str) -> SellerEntry | None:
        return self._by_slug.get(slug)

    def by_id(self, seller_id: UUID) -> SellerEntry | None:
        return self._by_id.get(seller_id)
