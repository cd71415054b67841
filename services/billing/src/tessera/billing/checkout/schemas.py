"""Checkout request and response bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=1, ge=1, le=100)
    email: EmailStr | None = None


class CheckoutCreated(BaseModel):
    id: str
    url: str
    test_mode: bool
