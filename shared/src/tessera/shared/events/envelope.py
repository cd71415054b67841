"""The envelope every event carries: id (UUIDv7), when it happened, and who produced it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from uuid6 import uuid7

from tessera.shared.sellers import HOME_SELLER_ID, Mode, Tenant


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> UUID:
    # UUIDv7 sorts by time, so ids double as a rough order and index well in Postgres.
    return UUID(str(uuid7()))


class Event(BaseModel):
    """Base of every event payload. Subclasses set `subject` and `producer`.

    Every event names the seller (internal id) and the mode whose data it is about; a
    consumer writes only that seller's rows in that mode. An event published before sellers
    existed carries neither and reads as the home seller's, live."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    subject: ClassVar[str]

    event_id: UUID = Field(default_factory=new_event_id)
    occurred_at: datetime = Field(default_factory=utcnow)
    producer: str
    seller_id: UUID = HOME_SELLER_ID
    mode: Mode = "live"

    @property
    def tenant(self) -> Tenant:
        return Tenant(self.seller_id, self.mode)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    def publish_subject(self) -> str:
        """The subject this instance is published on: `subject`, unless the event keeps one
        subject per entity (`ApiKeyChanged`: one per key, so a stream holding only the last
        message per subject keeps each key's latest record)."""
        return self.subject
