"""Events produced by licensing (stream LICENSING)."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

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
