"""Catalog entries, as read from the seed file and the database."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CatalogItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    unit_amount: int = Field(ge=0)
    currency: str = Field(pattern=r"^[a-z]{3}$")
    stripe_price_id: str | None = None
    product: str = Field(min_length=1, max_length=100)
    policy: str = Field(min_length=1, max_length=100)
    seats_per_unit: int = Field(default=1, ge=1)
    max_quantity: int = Field(default=10, ge=1)
    active: bool = True
    # The buyer may enter a Stripe promotion code: only then is a session's
    # `total_details.amount_discount` taken off the expected total (docs/billing.md).
    allow_promotion_codes: bool = False


class CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    products: list[CatalogItem]


class PublicCatalogItem(BaseModel):
    """What anyone may read about a SKU: its name and price, and what it licenses."""

    sku: str
    name: str
    description: str
    unit_amount: int
    currency: str
    product: str
    policy: str
    seats_per_unit: int
    max_quantity: int
    active: bool

    @classmethod
    def of(cls, item: CatalogItem) -> PublicCatalogItem:
        return cls(**item.model_dump(exclude={"stripe_price_id"}))
