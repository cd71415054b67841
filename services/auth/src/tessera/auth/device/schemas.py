"""Device-flow requests and responses (RFC 8628 field names)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from tessera.auth.device.store import Grant


class DeviceAuthorization(BaseModel):
    device_code: str
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a type, not a secret
    expires_in: int
    refresh_token: str


class UserCodeEntry(BaseModel):
    user_code: str = Field(min_length=8, max_length=12)


class Decision(UserCodeEntry):
    decision: Literal["approve", "deny"]


class PendingGrant(BaseModel):
    """What the approval page shows before the person presses Approve or Deny."""

    client_id: str
    client_name: str
    client_version: str | None
    ip: str
    requested_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, grant: Grant, client_name: str) -> PendingGrant:
        return cls(
            client_id=grant.client_id,
            client_name=client_name,
            client_version=grant.client_version or None,
            ip=grant.ip,
            requested_at=datetime.fromtimestamp(grant.created_at, UTC),
            expires_at=datetime.fromtimestamp(grant.expires_at, UTC),
        )


class Decided(BaseModel):
    decision: Literal["approve", "deny"]
