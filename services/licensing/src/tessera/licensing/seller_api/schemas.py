"""Seller API request models."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field

from tessera.licensing.admin.schemas import Reason, Strict

Code = Annotated[str, Field(min_length=1, max_length=64)]


class SellerGrantRequest(Strict):
    customer_id: UUID = Field(description="The customer's id (its account id)")
    product: Code
    policy: Code
    seats: Annotated[int, Field(ge=1, le=100)] = 1
    reason: Reason | None = None
