"""Seller sign-up, memberships and invites as the API shows them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from tessera.auth.links.schemas import Browser
from tessera.auth.sellers.schemas import SLUG_PATTERN

MemberRole = Literal["owner", "developer"]
SellerName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class SellerSignUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr = Field(max_length=254)
    name: SellerName
    slug: str = Field(
        pattern=SLUG_PATTERN,
        max_length=40,
        description="Public, unique and fixed: the seller's sign-in page and its customers' "
        "token claim `sel`. 3-40 of a-z, 0-9 and '-', starting with a letter or digit.",
    )
    browser: str = Browser
    next: str | None = Field(default=None, max_length=200)


class SignUpAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str = "A link to confirm the address and create the seller is on its way."


class Membership(BaseModel):
    slug: str
    name: str
    role: MemberRole
    status: Literal["active", "suspended"]
    signup_policy: Literal["closed", "open"]
    joined_at: datetime

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Membership:
        return cls(
            slug=row["slug"],
            name=row["name"],
            role=row["role"],
            status=row["status"],
            signup_policy=row["signup_policy"],
            joined_at=row["joined_at"],
        )


class Memberships(BaseModel):
    sellers: list[Membership]


class SellerUpdate(BaseModel):
    """What an owner may change: the name shown in mails, and who may sign up."""

    model_config = ConfigDict(extra="forbid")
    name: SellerName | None = None
    signup_policy: Literal["closed", "open"] | None = None


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr = Field(max_length=254)
    role: MemberRole = "developer"


class InviteOut(BaseModel):
    id: UUID
    email: str
    role: MemberRole
    created_at: datetime
    expires_at: datetime


class MemberOut(BaseModel):
    user_id: UUID
    email: str
    role: MemberRole
    joined_at: datetime


class MemberList(BaseModel):
    members: list[MemberOut]
    invites: list[InviteOut]


class InviteAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=20, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")
    browser: str = Browser


class DashboardTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["test", "live"]


class DashboardToken(BaseModel):
    """A member's seller-session token: the dashboard's stand-in for the seller's secret
    key at billing, licensing and auth's seller routes, for `expires_in` seconds."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a scheme name
    expires_in: int
    slug: str
    mode: Literal["test", "live"]
    role: MemberRole
