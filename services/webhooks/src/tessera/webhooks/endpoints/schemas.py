"""The seller API's endpoint bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from tessera.webhooks.catalogue.schemas import SUBSCRIBABLE_TYPES


def _known_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = sorted(set(value) - set(SUBSCRIBABLE_TYPES))
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)} (docs/webhooks.md)")
    if len(set(value)) != len(value):
        raise ValueError("event types must be distinct")
    return sorted(value)


# The scheme in the pattern too: the schema says what a URL must look like (the full check,
# host and port and, in production, https only, is targets.py's).
EndpointUrl = Annotated[
    str, StringConstraints(min_length=8, max_length=2000, pattern=r"^https?://\S+$")
]
EventTypes = Annotated[
    list[str] | None,
    Field(min_length=1, max_length=50, description="null (or absent): every event type."),
    AfterValidator(_known_types),
]
Description = Annotated[str, StringConstraints(max_length=500)]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: EndpointUrl = Field(description="https:// in production (docs/webhooks.md, Safety).")
    event_types: EventTypes = None
    description: Description = ""
    enabled: bool = True


class EndpointUpdate(BaseModel):
    """Only the fields given change; `event_types: null` means every type."""

    model_config = ConfigDict(extra="forbid")

    url: EndpointUrl | None = None
    event_types: EventTypes = None
    description: Description | None = None
    enabled: bool | None = None


class EndpointOut(BaseModel):
    id: UUID
    url: str
    event_types: list[str] | None = Field(description="null: every event type.")
    description: str
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why it is off: `seller` (through the API) or `failing` (every attempt "
        "failed for days)."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="While a rotation's overlap lasts: when the old secret stops signing."
    )
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="`whsec_…`: shown this once; verify signatures with it.")


class RotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: int = Field(
        default=86400,
        ge=0,
        description="How long the old secret keeps signing too (both signatures are sent).",
    )


class RotatedSecret(BaseModel):
    secret: str = Field(description="The new `whsec_…`: shown this once.")
    previous_secret_expires_at: datetime | None
