"""Events produced by auth (streams AUTH, APIKEYS and SELLERS)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)

from tessera.shared.events.envelope import Event


class AuthEvent(Event):
    producer: Literal["auth"] = "auth"


class UserCreated(AuthEvent):
    """A user exists for an account; published once per user."""

    subject: ClassVar[str] = "auth.user.created.v1"

    user_id: UUID
    account_id: UUID
    email: EmailStr
    role: Literal["customer", "admin"] = "customer"


class UserDisabled(AuthEvent):
    """A user was disabled by an admin; their sessions and tokens died with it."""

    subject: ClassVar[str] = "auth.user.disabled.v1"

    user_id: UUID
    account_id: UUID


class ApiKeyChanged(AuthEvent):
    """An API key's whole current record: created, rotated (`not_after` set) or revoked.

    Published on its own subject per key (`apikeys.<key_id>`, stream `APIKEYS`, which keeps
    only the last message per subject), so the stream is the key book itself: a replica that
    starts replays the latest record of every key and then follows. It carries the key's
    SHA-256 only, never the key. `version` grows with every change of one key; a verifier
    drops a record older than the one it holds.
    """

    # The filter that matches every key's subject; an instance publishes on its own.
    subject: ClassVar[str] = "apikeys.*"

    key_id: UUID
    seller_id: UUID
    key_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the key, hex")
    kind: Literal["publishable", "secret"]
    mode: Literal["test", "live"]
    status: Literal["active", "revoked"]
    not_after: AwareDatetime | None = Field(
        default=None, description="End of a rotation overlap: refused from then on"
    )
    version: int = Field(ge=1, description="Grows with every change of this key")

    def publish_subject(self) -> str:
        return f"apikeys.{self.key_id}"


def _https(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise ValueError("must be an https:// URL with a host and no user or password")
    return url


def _distinct_ascending(values: list[int]) -> list[int]:
    if len(set(values)) != len(values):
        raise ValueError("thresholds must be distinct")
    return sorted(values)


# The settings' value types, shared by the record below and auth's PATCH body.
# An absolute https URL, kept as written (not normalised: what a seller set is what every
# service shows).
HttpsUrl = Annotated[
    str, StringConstraints(max_length=2000, pattern=r"^https://\S+$"), AfterValidator(_https)
]
SupportEmail = Annotated[EmailStr, Field(max_length=254)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
AccentColor = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]
GraceDays = Annotated[int, Field(ge=0, le=30)]
UsageThresholds = Annotated[
    list[Annotated[int, Field(ge=1, le=100)]],
    Field(min_length=1, max_length=5),
    AfterValidator(_distinct_ascending),
]


class Branding(BaseModel):
    """How a seller's pages and mails look; each part unset means Tessera's own."""

    # `ignore`, as for every event payload: a field a newer auth adds must not make an
    # older consumer drop the whole record. Auth's input models forbid extras.
    model_config = ConfigDict(frozen=True, extra="ignore")

    display_name: DisplayName | None = Field(default=None, description="At most 80 characters")
    logo_url: HttpsUrl | None = None
    accent_color: AccentColor | None = Field(default=None, description="`#rrggbb`")


class SellerSettings(BaseModel):
    """A seller's settings, as every service reads them from the directory (docs/sellers.md,
    "Settings"). Every field has a default, so a record from before settings (or one that
    lacks a newer field) reads as the defaults."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    support_email: SupportEmail | None = None
    upgrade_url: HttpsUrl | None = Field(
        default=None, description="Where the usage API's over-limit answer sends a customer"
    )
    branding: Branding = Branding()
    past_due_grace_days: GraceDays = Field(
        default=7, description="Days a past-due subscription keeps working (0-30)"
    )
    usage_thresholds: UsageThresholds = Field(
        default_factory=lambda: [80, 100],
        description="Percents of a limit at which usage warnings go out: 1-5 distinct, 1-100",
    )


PlanStatus = Literal["none", "active", "past_due", "ended"]


class SellerChanged(AuthEvent):
    """A seller's whole public record, as the directory holds it: created, renamed, its
    signup policy, status or settings changed.

    The seller is the envelope's `seller_id` (its `mode` is always `live`: a seller is not
    per mode). Published on its own subject per seller (`sellers.<seller_id>`, stream
    `SELLERS`, which keeps only the last message per subject), so the stream is the
    directory itself: a replica that starts replays every seller's latest record, then
    follows. `version` grows with every change of one seller; a follower drops a record
    older than the one it holds.
    """

    # The filter that matches every seller's subject; an instance publishes on its own.
    subject: ClassVar[str] = "sellers.*"

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,39}$")
    name: str
    signup_policy: Literal["closed", "open"]
    status: Literal["active", "suspended"]
    version: int = Field(ge=1, description="Grows with every change of this seller")
    # A record from before settings carries none: the defaults.
    settings: SellerSettings = SellerSettings()
    # The seller's platform plan (docs/sellers.md, "Platform plan"); a record from before
    # plans carries none. Live keys of a non-home seller work only while it is in force.
    plan_status: PlanStatus = "none"
    plan_grace_until: AwareDatetime | None = Field(
        default=None, description="While past_due: the plan works until then"
    )

    def publish_subject(self) -> str:
        return f"sellers.{self.seller_id}"
