"""Events produced by auth (stream AUTH)."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import EmailStr

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
