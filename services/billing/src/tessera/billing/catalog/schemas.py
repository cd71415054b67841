"""The catalog's shapes: products, their one-time prices (SKUs: `CatalogItem`, as checkout
and orders read them) and recurring tiers with what they grant, as the seed file, the
database and the seller API carry them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

CODE = r"^[a-z0-9][a-z0-9-]{1,62}$"
# What a path may name: a new code is `CODE`, but a product made from a SKU row of before
# the catalog API (billing_0007) has that row's product name, up to 100 characters.
EXISTING_CODE = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
FEATURE = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
# Stripe's largest `unit_amount` (eight digits).
MAX_AMOUNT = 99_999_999

Code = Annotated[str, StringConstraints(pattern=CODE)]
FeatureCode = Annotated[str, StringConstraints(pattern=FEATURE)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=2000)]
Currency = Annotated[str, StringConstraints(pattern=r"^[a-z]{3}$")]
Amount = Annotated[int, Field(ge=0, le=MAX_AMOUNT)]
Interval = Literal["month", "year"]
INTERVALS: tuple[Interval, ...] = ("month", "year")


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- one-time prices (SKUs)


class CatalogItem(Strict):
    """A SKU: a one-time price of `product`, and what a unit grants (license policy, seats).
    As read from the database: only as strict as the rows before the catalog API were (the
    API's own bodies, `OneTimePriceIn`, are stricter)."""

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


class OneTimePriceIn(Strict):
    """A new SKU (`POST /v1/one-time-prices`); its product must exist."""

    sku: Code
    product: Code
    name: Name
    description: Description = ""
    unit_amount: Amount
    currency: Currency
    policy: str = Field(min_length=1, max_length=100)
    seats_per_unit: int = Field(default=1, ge=1, le=10_000)
    max_quantity: int = Field(default=10, ge=1, le=10_000)
    active: bool = True
    allow_promotion_codes: bool = False


class OneTimePricePatch(Strict):
    """What a SKU's update may change (absent: unchanged). A new amount or currency is a new
    Stripe price; the old one is archived and kept."""

    name: Name | None = None
    description: Description | None = None
    unit_amount: Amount | None = None
    currency: Currency | None = None
    policy: str | None = Field(default=None, min_length=1, max_length=100)
    seats_per_unit: int | None = Field(default=None, ge=1, le=10_000)
    max_quantity: int | None = Field(default=None, ge=1, le=10_000)
    active: bool | None = None
    allow_promotion_codes: bool | None = None


# ---------------------------------------------------------------- products


class ProductIn(Strict):
    code: Code
    name: Name
    description: Description = ""
    active: bool = True


class ProductPatch(Strict):
    name: Name | None = None
    description: Description | None = None
    active: bool | None = None


class Product(Strict):
    code: str
    name: str
    description: str
    active: bool
    stripe_product_id: str | None


# ---------------------------------------------------------------- tiers


class Quota(Strict):
    """Units of a metered feature per billing period of the subscription; null: unlimited."""

    limit: int | None = Field(ge=0, le=10**12)


class Grants(Strict):
    """What a tier grants its subscriber."""

    features: list[FeatureCode] = Field(default_factory=list, max_length=100)
    quotas: dict[FeatureCode, Quota] = Field(default_factory=dict, max_length=50)
    # Calls a minute the subscriber may make (a rate limit); null: no tier-specific limit.
    rate_per_minute: int | None = Field(default=None, ge=1, le=10**9)
    seats: int = Field(default=1, ge=1, le=10_000)

    @model_validator(mode="after")
    def distinct_features(self) -> Grants:
        if len(set(self.features)) != len(self.features):
            raise ValueError("features must not repeat")
        return self


class Money(Strict):
    amount: Amount
    currency: Currency


class TierPrices(Strict):
    """A tier's price per interval; at least one."""

    month: Money | None = None
    year: Money | None = None

    @model_validator(mode="after")
    def at_least_one(self) -> TierPrices:
        if self.month is None and self.year is None:
            raise ValueError("a tier needs a monthly or a yearly price (or both)")
        return self

    def of(self, interval: Interval) -> Money | None:
        return self.month if interval == "month" else self.year


class TierIn(Strict):
    code: Code
    product: Code
    name: Name
    description: Description = ""
    trial_days: int = Field(default=0, ge=0, le=730)
    prices: TierPrices
    grants: Grants = Field(default_factory=Grants)
    active: bool = True


class TierPatch(Strict):
    """What a tier's update may change (absent: unchanged). `prices` replaces both intervals:
    a changed amount is a new Stripe price (the old one archived and kept for the
    subscriptions on it), an interval left out is archived."""

    name: Name | None = None
    description: Description | None = None
    trial_days: int | None = Field(default=None, ge=0, le=730)
    prices: TierPrices | None = None
    grants: Grants | None = None
    active: bool | None = None


class Tier(Strict):
    code: str
    product: str
    name: str
    description: str
    trial_days: int
    grants: Grants
    active: bool


# ---------------------------------------------------------------- prices and sync state


SyncStateName = Literal["local", "awaiting_connect", "pending", "synced", "failed"]


class SyncState(Strict):
    """How far an object's Stripe sync got (docs/billing.md, "Sync to Stripe")."""

    state: SyncStateName
    version: int
    synced_version: int | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    synced_at: datetime | None


class Price(Strict):
    id: str
    product: str
    sku: str | None
    tier: str | None
    interval: Interval | None
    unit_amount: int
    currency: str
    active: bool
    current: bool
    stripe_price_id: str | None
    created_at: datetime
    superseded_at: datetime | None


class PriceOut(Strict):
    id: str
    interval: Interval | None
    unit_amount: int
    currency: str
    active: bool
    current: bool
    stripe_price_id: str | None
    created_at: datetime
    superseded_at: datetime | None
    sync: SyncState


class ProductOut(Strict):
    code: str
    name: str
    description: str
    active: bool
    stripe_product_id: str | None
    sync: SyncState


class OneTimePriceOut(Strict):
    sku: str
    product: str
    name: str
    description: str
    unit_amount: int
    currency: str
    policy: str
    seats_per_unit: int
    max_quantity: int
    active: bool
    allow_promotion_codes: bool
    stripe_price_id: str | None
    # Every Stripe price the SKU has had, newest first (the first is the current one).
    prices: list[PriceOut]


class TierOut(Strict):
    code: str
    product: str
    name: str
    description: str
    trial_days: int
    grants: Grants
    active: bool
    # Every price the tier has had, newest first; `current` ones are for sale.
    prices: list[PriceOut]


class PublicTier(Strict):
    """A tier as a pricing page shows it (no Stripe ids)."""

    code: str
    product: str
    name: str
    description: str
    trial_days: int
    prices: TierPrices
    grants: Grants


# ---------------------------------------------------------------- the seed file


class SeedProduct(Strict):
    code: Code
    name: Name
    description: Description = ""
    active: bool = True
    one_time_prices: list[OneTimePriceSeed] = Field(default_factory=list, max_length=100)
    tiers: list[TierSeed] = Field(default_factory=list, max_length=100)


class OneTimePriceSeed(Strict):
    """A SKU in the seed file: its product is the one it is listed under."""

    sku: Code
    name: Name
    description: Description = ""
    unit_amount: Amount
    currency: Currency
    # A price made by hand in Stripe, used as is (optional).
    stripe_price_id: str | None = None
    policy: str = Field(min_length=1, max_length=100)
    seats_per_unit: int = Field(default=1, ge=1)
    max_quantity: int = Field(default=10, ge=1)
    active: bool = True
    allow_promotion_codes: bool = False


class TierSeed(Strict):
    code: Code
    name: Name
    description: Description = ""
    trial_days: int = Field(default=0, ge=0, le=730)
    prices: TierPrices
    grants: Grants = Field(default_factory=Grants)
    active: bool = True


class CatalogFile(Strict):
    products: list[SeedProduct]


SeedProduct.model_rebuild()


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
        return cls(**item.model_dump(exclude={"stripe_price_id", "allow_promotion_codes"}))
