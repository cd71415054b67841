"""Admin request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from tessera.shared.http.params import IsoDateTime

# Required on every destructive admin API; blanks are stripped, so only spaces is empty (422).
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GrantRequest(Strict):
    account_id: UUID
    email: EmailStr
    policy: Annotated[str, Field(min_length=1, max_length=64)]
    seats: Annotated[int, Field(ge=1, le=100)] = 1
    reason: Reason


class StatusRequest(Strict):
    reason: Reason


class ExtendRequest(Strict):
    # None: never expires. RFC 3339 text only: a number is not read as a Unix time.
    expires_at: IsoDateTime | None
    reason: Reason


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor_id: UUID | None
    actor_role: str
    action: str
    license_id: UUID | None
    detail: dict[str, Any]


class HeldOrder(BaseModel):
    order_id: UUID
    reason: str
    held_since: datetime
