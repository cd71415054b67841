"""Connect's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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
