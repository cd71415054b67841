"""Usage bodies."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from tessera.shared.events.billing import SubscriptionGrants

# A feature code goes into the RateLimit headers as a structured-field string: no quotes or
# backslashes, so it never needs escaping.
FEATURE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
Feature = Annotated[str, StringConstraints(pattern=FEATURE_PATTERN)]
_FEATURE = re.compile(FEATURE_PATTERN)
IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,255}$")]
# Large enough for any real batch, small enough that a sum of them stays far from bigint's end.
Amount = Annotated[int, Field(ge=1, le=1_000_000_000)]


class RecordRequest(BaseModel):
    customer: UUID | None = Field(
        default=None,
        description="The customer (account id). Required with a secret key; with a customer's "
        "access token it may be left out, and must be the token's own account if given.",
    )
    feature: Feature
    amount: Amount = 1
    idempotency_key: IdempotencyKey = Field(
        description="Unique per seller and mode among the seller's secret-key calls, and "
        "per customer among a customer token's: a retry with the same key counts once and "
        "gets the first answer again."
    )


class CheckRequest(BaseModel):
    customer: UUID | None = None
    feature: Feature
    amount: Amount = 1


class RevertRequest(BaseModel):
    idempotency_key: IdempotencyKey


class UsageOut(BaseModel):
    """Where a customer stands on one feature in its current period."""

    customer: UUID
    feature: str
    tier: str
    source: Literal["subscription", "assigned"] = Field(
        description="A subscription's tier, or a tier the seller assigned (calendar months)"
    )
    used: int
    limit: int | None = Field(description="Per period; null: unlimited")
    remaining: int | None = Field(description="null: unlimited")
    period_start: datetime
    period_end: datetime
    rate_per_minute: int | None


class RecordOut(UsageOut):
    """A recorded amount and the standing it left (replayed as first given for its key)."""

    record_id: UUID
    amount: int
    replayed: bool = Field(description="An earlier request with this idempotency key counted it")
    reverted: bool


class CheckOut(UsageOut):
    allowed: bool = Field(description="Recording `amount` now would be within the limit")


class RevertOut(BaseModel):
    record_id: UUID
    customer: UUID
    feature: str
    amount: int
    period_start: datetime
    period_end: datetime
    reverted_at: datetime
    used: int = Field(description="The record's period's counter after the revert")


class CustomerUsageOut(BaseModel):
    customer: UUID
    features: list[UsageOut]


class PlanIn(BaseModel):
    """A tier the seller assigns to a customer without a subscription (a free tier)."""

    model_config = ConfigDict(extra="forbid")

    tier: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    grants: SubscriptionGrants

    @field_validator("grants")
    @classmethod
    def _quotas_sane(cls, grants: SubscriptionGrants) -> SubscriptionGrants:
        for feature, quota in grants.quotas.items():
            if not _FEATURE.match(feature):
                raise ValueError(f"feature code {feature!r} is not valid")
            if quota.limit is not None and not 0 <= quota.limit <= 10**15:
                raise ValueError("a quota's limit is between 0 and 10^15, or null")
        if grants.rate_per_minute is not None and grants.rate_per_minute < 1:
            raise ValueError("rate_per_minute is at least 1, or null")
        return grants


class PlanOut(PlanIn):
    customer: UUID
    assigned_at: datetime
