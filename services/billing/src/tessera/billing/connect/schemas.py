"""Connect's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tessera.billing.connect.queries import Pending
from tessera.billing.stripe.connections import Connection


class ConnectStart(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConnectStarted(BaseModel):
    """Where to send the seller's developer: Stripe's page that connects their account."""

    url: str
    expires_at: datetime = Field(description="The link's `state` is refused after this")


class StripeConnection(BaseModel):
    """The tenant's Stripe account: `not_connected` (never), `connected`, `disconnected`."""

    status: Literal["not_connected", "connected", "disconnected"]
    account_id: str | None = None
    livemode: bool | None = None
    connected_at: datetime | None = None
    disconnected_at: datetime | None = None
    disconnected_by: Literal["seller", "stripe"] | None = None

    @classmethod
    def of(cls, connection: Connection | None) -> StripeConnection:
        if connection is None:
            return cls(status="not_connected")
        return cls(
            status=connection.status,
            account_id=connection.account_id,
            livemode=connection.livemode,
            connected_at=connection.connected_at,
            disconnected_at=connection.disconnected_at,
            disconnected_by=connection.disconnected_by,
        )


class PendingConnection(BaseModel):
    """A Stripe account that authorized the platform through the seller's link, waiting for
    the seller to confirm it (`POST confirm_url` with its secret key) before `expires_at`.
    Not the seller's connection until then: whoever held the link may have authorized it."""

    status: Literal["pending_confirmation"] = "pending_confirmation"
    id: UUID
    account_id: str
    livemode: bool
    authorized_at: datetime
    expires_at: datetime
    confirm_url: str

    @classmethod
    def of(cls, pending: Pending, confirm_url: str) -> PendingConnection:
        return cls(
            id=pending.id,
            account_id=pending.account_id,
            livemode=pending.livemode,
            authorized_at=pending.authorized_at,
            expires_at=pending.expires_at,
            confirm_url=confirm_url,
        )
