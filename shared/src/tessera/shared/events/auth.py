"""Events produced by auth (streams AUTH and SELLERS)."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import EmailStr, Field

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
