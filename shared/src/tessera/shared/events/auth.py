"""Events produced by auth (streams AUTH, APIKEYS and SELLERS)."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, EmailStr, Field

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


class SellerChanged(AuthEvent):
    """A seller's whole public record, as the directory holds it: created, renamed, its
    signup policy or status changed.

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

    def publish_subject(self) -> str:
        return f"sellers.{self.seller_id}"
