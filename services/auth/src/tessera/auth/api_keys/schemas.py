"""API keys as the seller API shows them: a new pair (its keys shown this once) and the
listing (prefix and last four only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

KeyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# A rotation's overlap: how long the old pair keeps working beside the new one.
MAX_OVERLAP_SECONDS = 7 * 24 * 3600


class PairRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: KeyName = Field(description="What the pair is for: prod, staging, a laptop…")
    mode: Literal["test", "live"]


class RotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_seconds: int = Field(
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="How long the old pair keeps working (0: it stops now; at most 7 days).",
    )


class NewKey(BaseModel):
    id: UUID
    key: str = Field(description="The key itself. Shown only in this answer; store it now.")


class PairCreated(BaseModel):
    pair_id: UUID
    name: str
    mode: Literal["test", "live"]
    publishable: NewKey
    secret: NewKey
    created_at: datetime


class KeyOut(BaseModel):
    id: UUID
    pair_id: UUID
    name: str
    mode: Literal["test", "live"]
    kind: Literal["publishable", "secret"]
    prefix: str = Field(description="The key's type prefix, e.g. `sk_live_`")
    last4: str
    status: Literal["active", "expired", "revoked"]
    not_after: datetime | None = Field(description="When a rotated key stops working")
    created_at: datetime
    last_used_at: datetime | None = Field(description="Coarse: updated about once a minute")


class KeyList(BaseModel):
    keys: list[KeyOut]
