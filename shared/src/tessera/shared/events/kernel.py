"""Events every service's kernel publishes (not one service's outbox): plain NATS
publishes, on no stream."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field

from tessera.shared.events.envelope import Event


class KeyUse(BaseModel):
    key_id: UUID
    at: AwareDatetime = Field(description="The last time this process accepted the key")


class ApiKeysUsed(Event):
    """Which API keys one process accepted since its last batch, and when last. Every
    process of every service that checks keys publishes one every 30 s or so (when it has
    any), with a plain NATS publish (no stream: a lost batch only makes `last_used_at`
    older, and the next one catches up); auth sets each key's `last_used_at` forward only.
    The keys may be any sellers': the envelope's seller is not used."""

    subject: ClassVar[str] = "apikeyuse.v1"

    producer: str
    used: list[KeyUse] = Field(max_length=1000)
