"""Customers as the customer API shows them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

CustomerName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
MetadataValue = Annotated[str, StringConstraints(max_length=500)]
# Bounded like Stripe's: small enough that a customer row stays a row.
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=20)]
PAGE_MAX = 100


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr = Field(max_length=254)
    name: CustomerName | None = None
    metadata: Metadata = Field(default_factory=dict, description="Up to 20 string pairs")


class CustomerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: CustomerName | None = None
    metadata: Metadata | None = Field(default=None, description="Replaces the whole map when given")
    disabled: bool | None = Field(
        default=None, description="true ends the customer's sessions and refuses sign-in"
    )


class Customer(BaseModel):
    id: UUID = Field(
        description="The customer's account id: the `customer_id` of billing's and licensing's"
        " seller routes, and the `acc` claim of the customer's access tokens"
    )
    email: str
    name: str | None
    metadata: dict[str, str]
    disabled: bool
    mode: Literal["test", "live"]
    created_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> Customer:
        # asyncpg hands jsonb over as text (the pool sets no codec).
        metadata: dict[str, str] = json.loads(row["metadata"])
        return cls(
            id=row["account_id"], email=row["email"], name=row["name"],
            metadata=metadata,
            disabled=row["disabled_at"] is not None, mode=row["mode"],
            created_at=row["created_at"],
        )  # fmt: skip


class CustomerPage(BaseModel):
    data: list[Customer]
    has_more: bool
    next_cursor: UUID | None = Field(
        description="Pass as `starting_after` for the next page; null on the last"
    )
