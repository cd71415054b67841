"""License views shared by the customer and admin APIs."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel


class ActivationOut(BaseModel):
    id: UUID
    machine_name: str | None
    platform: str | None
    app_version: str | None
    created_at: datetime
    # Its last heartbeat (or check-out; its activation until then; validate stays read-only):
    # a policy that requires heartbeats deactivates a machine silent for too long.
    last_heartbeat_at: datetime
    # Floating policies: the seat it holds until then (None: it holds none).
    seat_until: datetime | None = None


class LicenseOut(BaseModel):
    id: UUID
    key: str
    account_id: UUID
    email: str
    product: str
    policy: str
    order_id: UUID | None
    source: str
    status: str
    status_reason: str | None
    expires_at: datetime | None
    created_at: datetime
    entitlements: list[str]
    max_machines: int
    activations: list[ActivationOut]
