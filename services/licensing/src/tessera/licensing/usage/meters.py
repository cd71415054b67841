"""What a customer may use, per metered feature: from the grants they hold (their
subscriptions' tiers and a tier the seller assigned), the limit per period, the period it
counts in, and the rate per minute. Pure functions of the grants and the time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from tessera.licensing.entitlements.service import is_valid
from tessera.shared.events.billing import SubscriptionGrants

Source = Literal["subscription", "assigned"]


@dataclass(frozen=True, slots=True)
class Meter:
    feature: str
    tier: str
    source: Source
    limit: int | None  # None: unlimited
    period_start: datetime
    period_end: datetime
    rate_per_minute: int | None  # None: no rate of the tier's own

    @property
    def period_seconds(self) -> int:
        return int((self.period_end - self.period_start).total_seconds())


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` that many calendar months later, the day clamped to the month's last."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    days = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return moment.replace(year=year, month=month, day=min(moment.day, days))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def calendar_month(now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month holding `now`: an assigned tier's period."""
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, add_months(start, 1)


def subscription_period(row: Mapping[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """The subscription's current period; past its end (the renewal's event not in yet,
    within `PERIOD_LAPSE`) the next one, begun exactly where the last ended, as Stripe
    begins it, so the renewal's event names the same period start."""
    start: datetime = row["current_period_start"]
    end: datetime = row["current_period_end"]
    months = 12 if row["interval"] == "year" else 1
    while now >= end:
        start, end = end, add_months(end, months)
    return start, end


def meters(rows: Iterable[Mapping[str, Any]], now: datetime) -> dict[str, Meter]:
    """Per metered feature, the meter of the grant that governs it now: a valid
    subscription's before an assigned tier's; among several valid subscriptions the highest
    limit (unlimited highest), then the latest started."""
    best: dict[str, tuple[tuple[int, int, datetime], Meter]] = {}
    for row in rows:
        subscription = row["source"] == "subscription"
        if subscription and not is_valid(row, now):
            continue
        grants = SubscriptionGrants.model_validate_json(row["grants"])
        period = subscription_period(row, now) if subscription else calendar_month(now)
        for feature, quota in grants.quotas.items():
            meter = Meter(
                feature=feature, tier=row["tier"], source=row["source"], limit=quota.limit,
                period_start=period[0], period_end=period[1],
                rate_per_minute=grants.rate_per_minute,
            )  # fmt: skip
            rank = (int(subscription), _size(quota.limit), row["started_at"])
            held = best.get(feature)
            if held is None or rank > held[0]:
                best[feature] = (rank, meter)
    return {feature: meter for feature, (_, meter) in best.items()}


def _size(limit: int | None) -> int:
    return 2**62 if limit is None else limit
