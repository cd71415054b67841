"""Desktop request and answer models (the answer model documents the JSON; the hot path
writes it directly)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Fingerprint = Annotated[str, Field(min_length=8, max_length=256)]
Nonce = Annotated[str | None, Field(default=None, max_length=128)]
KeyText = Annotated[str, Field(min_length=1, max_length=64)]
Label = Annotated[str | None, Field(default=None, max_length=128)]


class Code(StrEnum):
    VALID = "VALID"
    NOT_FOUND = "NOT_FOUND"
    SUSPENDED = "SUSPENDED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    NOT_ACTIVATED = "NOT_ACTIVATED"
    FINGERPRINT_MISMATCH = "FINGERPRINT_MISMATCH"
    TOO_MANY_ACTIVATIONS = "TOO_MANY_ACTIVATIONS"
    NO_LICENSE = "NO_LICENSE"
    DEACTIVATED = "DEACTIVATED"
    CHECKOUT_REQUIRED = "CHECKOUT_REQUIRED"
    NO_FREE_SEAT = "NO_FREE_SEAT"
    CHECKED_IN = "CHECKED_IN"


DETAILS: dict[Code, str] = {
    Code.VALID: "The license is valid on this machine.",
    Code.NOT_FOUND: "No license has this key.",
    Code.SUSPENDED: "The license is suspended.",
    Code.REVOKED: "The license was revoked.",
    Code.EXPIRED: "The license has expired.",
    Code.NOT_ACTIVATED: "This machine is not activated for the license; activate it.",
    Code.FINGERPRINT_MISMATCH: "The activation belongs to another machine fingerprint.",
    Code.TOO_MANY_ACTIVATIONS: "Every machine the license allows is in use; free one first.",
    Code.NO_LICENSE: "The signed-in account holds no license for this product.",
    Code.DEACTIVATED: "The machine was deactivated; its seat is free.",
    Code.CHECKOUT_REQUIRED: "This machine holds no floating seat; check one out.",
    Code.NO_FREE_SEAT: "Every floating seat is in use; try again when one is checked in.",
    Code.CHECKED_IN: "The floating seat was given back.",
}


class Desktop(BaseModel):
    # Unknown fields are ignored, not refused: a newer app must keep working against an
    # older service (the contract grows by adding optional fields).
    model_config = ConfigDict(extra="ignore", frozen=True)


class ValidateRequest(Desktop):
    key: KeyText
    fingerprint: Fingerprint
    nonce: Nonce = None
    activation_id: UUID | None = None


class ActivateRequest(Desktop):
    # Either a license key, or none and a device-flow access token in Authorization.
    key: KeyText | None = None
    fingerprint: Fingerprint
    machine_name: Label = None
    platform: Label = None
    app_version: Label = None
    product: Annotated[str | None, Field(default=None, max_length=64)] = None
    nonce: Nonce = None


class DeactivateRequest(Desktop):
    key: KeyText
    fingerprint: Fingerprint
    nonce: Nonce = None


class HeartbeatRequest(DeactivateRequest):
    """The same machine naming: a heartbeat says it still runs."""


class CheckinRequest(DeactivateRequest):
    """The same machine naming: it gives its floating seat back (on exit)."""


class LicenseInfo(BaseModel):
    id: UUID
    product: str
    status: str
    expires_at: datetime | None


class Answer(BaseModel):
    """Every desktop answer: HTTP 200 whatever the verdict; `code` says which."""

    valid: bool
    code: Code
    detail: str
    server_time: datetime
    nonce: str | None
    entitlements: list[str]
    license: LicenseInfo | None = None
    activation_id: UUID | None = None
    lease: str | None = Field(None, description="Compact JWS (EdDSA), when valid.")
    lease_expires_at: datetime | None = None
    license_key: str | None = Field(
        None, description="Only when activated with an access token instead of a key."
    )
    next_heartbeat_at: datetime | None = Field(
        None,
        description="When valid under a policy that requires heartbeats: send the next by then.",
    )
    seat_expires_at: datetime | None = Field(
        None, description="When valid under a floating policy: the seat's end unless renewed."
    )
