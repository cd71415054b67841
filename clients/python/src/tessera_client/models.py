"""What the services answer, as frozen dataclasses. Fields a newer service adds are
ignored, so an older client keeps working."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from tessera_client.ratelimit import RateLimit


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Usage:
    """Where a customer stands on one feature in its current period."""

    customer: UUID
    feature: str
    tier: str
    source: Literal["subscription", "assigned"]
    used: int
    limit: int | None  # None: unlimited
    remaining: int | None
    period_start: datetime
    period_end: datetime
    rate_per_minute: int | None
    rate_limit: RateLimit = field(default_factory=RateLimit, compare=False)

    @staticmethod
    def _fields(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "customer": UUID(body["customer"]),
            "feature": body["feature"],
            "tier": body["tier"],
            "source": body["source"],
            "used": body["used"],
            "limit": body["limit"],
            "remaining": body["remaining"],
            "period_start": _when(body["period_start"]),
            "period_end": _when(body["period_end"]),
            "rate_per_minute": body.get("rate_per_minute"),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any], rate_limit: RateLimit | None = None) -> Usage:
        return cls(**cls._fields(body), rate_limit=rate_limit or RateLimit())


@dataclass(frozen=True, kw_only=True)
class UsageRecord(Usage):
    """A recorded amount and the standing it left; `replayed` when an earlier request with
    the same idempotency key counted it (this answer is that request's)."""

    record_id: UUID
    amount: int
    replayed: bool
    reverted: bool
    idempotency_key: str  # the key sent (made by the client when none was given)

    @classmethod
    def parse(cls, body: dict[str, Any], rate_limit: RateLimit, key: str) -> UsageRecord:
        return cls(
            **cls._fields(body),
            rate_limit=rate_limit,
            record_id=UUID(body["record_id"]),
            amount=body["amount"],
            replayed=body["replayed"],
            reverted=body["reverted"],
            idempotency_key=key,
        )


@dataclass(frozen=True, kw_only=True)
class UsageCheck(Usage):
    """Whether the amount would fit now (nothing counted)."""

    allowed: bool

    @classmethod
    def parse(cls, body: dict[str, Any], rate_limit: RateLimit) -> UsageCheck:
        return cls(**cls._fields(body), rate_limit=rate_limit, allowed=body["allowed"])


@dataclass(frozen=True)
class CustomerUsage:
    customer: UUID
    features: list[Usage]
    rate_limit: RateLimit = field(default_factory=RateLimit, compare=False)

    @classmethod
    def parse(cls, body: dict[str, Any], rate_limit: RateLimit) -> CustomerUsage:
        return cls(
            UUID(body["customer"]), [Usage.from_json(f) for f in body["features"]], rate_limit
        )

    def feature(self, code: str) -> Usage | None:
        return next((f for f in self.features if f.feature == code), None)


@dataclass(frozen=True)
class UsageRevert:
    record_id: UUID
    customer: UUID
    feature: str
    amount: int
    period_start: datetime
    period_end: datetime
    reverted_at: datetime
    used: int  # the record's period's counter after the revert

    @classmethod
    def parse(cls, body: dict[str, Any]) -> UsageRevert:
        return cls(
            UUID(body["record_id"]), UUID(body["customer"]), body["feature"], body["amount"],
            _when(body["period_start"]), _when(body["period_end"]), _when(body["reverted_at"]),
            body["used"],
        )  # fmt: skip


@dataclass(frozen=True)
class Customer:
    id: UUID  # the account id: billing's and licensing's customer_id, the token's `acc`
    email: str
    name: str | None
    metadata: dict[str, str]
    disabled: bool
    mode: Literal["test", "live"]
    created_at: datetime

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Customer:
        return cls(
            UUID(body["id"]), body["email"], body.get("name"), dict(body.get("metadata") or {}),
            bool(body.get("disabled")), body["mode"], _when(body["created_at"]),
        )  # fmt: skip


@dataclass(frozen=True)
class CustomerPage:
    data: list[Customer]
    has_more: bool
    next_cursor: str | None  # pass as `starting_after`

    @classmethod
    def parse(cls, body: dict[str, Any]) -> CustomerPage:
        return cls(
            [Customer.parse(c) for c in body["data"]],
            bool(body.get("has_more")),
            body.get("next_cursor"),
        )


@dataclass(frozen=True)
class Checkout:
    """A Stripe Checkout session: send the buyer to `url`."""

    id: str
    url: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Checkout:
        return cls(body["id"], body["url"])
