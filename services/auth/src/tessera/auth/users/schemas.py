"""Users as the API shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, StringConstraints

from tessera.shared.sellers import Tenant

Role = Literal["customer", "admin"]


@dataclass(frozen=True)
class User:
    id: UUID
    account_id: UUID
    email: str
    role: Role
    disabled_at: datetime | None
    created_at: datetime
    tenant: Tenant

    @classmethod
    def of(cls, row: asyncpg.Record) -> User:
        return cls(
            id=row["id"],
            account_id=row["account_id"],
            email=row["email"],
            role="admin" if row["role"] == "admin" else "customer",
            disabled_at=row["disabled_at"],
            created_at=row["created_at"],
            tenant=Tenant(row["seller_id"], "test" if row["mode"] == "test" else "live"),
        )

    @property
    def active(self) -> bool:
        return self.disabled_at is None


class UserOut(BaseModel):
    id: UUID
    account_id: UUID
    email: str
    role: Role
    disabled: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            account_id=user.account_id,
            email=user.email,
            role=user.role,
            disabled=user.disabled_at is not None,
            created_at=user.created_at,
        )


class UserPage(BaseModel):
    users: list[UserOut]


# Leading and trailing blanks are dropped, so a reason of only spaces is refused as empty.
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ReasonBody(BaseModel):
    """Why an admin disables (or enables) a user: kept in the audit entry."""

    model_config = ConfigDict(extra="forbid")
    reason: Reason
