"""Events produced by licensing (stream LICENSING)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from tessera.shared.events.envelope import Event


class LicensingEvent(Event):
    producer: Literal["licensing"] = "licensing"


class LicenseEvent(LicensingEvent):
    license_id: UUID
    account_id: UUID
    product: str
    order_id: UUID | None = None


class LicenseIssued(LicenseEvent):
    subject: ClassVar[str] = "licensing.license.issued.v1"

    policy: str


class LicenseSuspended(LicenseEvent):
    subject: ClassVar[str] = "licensing.license.suspended.v1"

    reason: str


class LicenseReinstated(LicenseEvent):
    subject: ClassVar[str] = "licensing.license.reinstated.v1"

    reason: str


class LicenseRevoked(LicenseEvent):
    subject: ClassVar[str] = "licensing.license.revoked.v1"

    reason: str


class ActivationEvent(LicensingEvent):
    activation_id: UUID
    license_id: UUID
    account_id: UUID
    fingerprint_hash: str


class MachineActivated(ActivationEvent):
    subject: ClassVar[str] = "licensing.activation.created.v1"

    machine_name: str | None = None
    platform: str | None = None


class MachineDeactivated(ActivationEvent):
    subject: ClassVar[str] = "licensing.activation.removed.v1"

    # heartbeat: the sweeper, for a machine silent past its policy's heartbeat and grace.
    by: Literal["customer", "desktop", "admin", "heartbeat"]


class UsageThresholdReached(LicensingEvent):
    """A customer's usage of a metered feature reached a share of its period's limit (the
    seller's `usage_thresholds`, 80 and 100 % by default): once per period and threshold,
    written by the record that reached it (docs/usage.md, "Thresholds")."""

    subject: ClassVar[str] = "licensing.usage.threshold_reached.v1"

    account_id: UUID
    feature: str
    threshold: int = Field(ge=1, le=100, description="The percent of the limit reached")
    used: int
    limit: int
    tier: str
    period_start: datetime
    period_end: datetime
