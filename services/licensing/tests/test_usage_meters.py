"""Meters from grants, without I/O: periods (a subscription's, rolled on past its end until
the renewal arrives; a calendar month for an assigned tier) and which grant governs a
feature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tessera.licensing.usage.meters import add_months, calendar_month, meters, subscription_period
from tessera.licensing.usage.service import quick_ceiling, ratelimit_headers, reached

T = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (datetime(2027, 1, 31, tzinfo=UTC), 1, datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2028, 1, 31, tzinfo=UTC), 1, datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2027, 12, 15, 9, tzinfo=UTC), 1, datetime(2028, 1, 15, 9, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), 12, datetime(2029, 2, 28, tzinfo=UTC)),
    ],
    ids=["jan-31-to-feb-28", "leap-feb-29", "over-new-year", "leap-day-a-year-on"],
)
def test_add_months_clamps_to_the_month_end(start: datetime, months: int, end: datetime) -> None:
    assert add_months(start, months) == end


def test_a_calendar_month_begins_at_its_first_microsecond() -> None:
    first = datetime(2027, 2, 1, tzinfo=UTC)
    assert calendar_month(first) == (first, datetime(2027, 3, 1, tzinfo=UTC))
    assert calendar_month(first - timedelta(microseconds=1)) == (
        datetime(2027, 1, 1, tzinfo=UTC), first,
    )  # fmt: skip


def row(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "source": "subscription", "tier": "pro",
        "grants": '{"quotas": {"api_calls": {"limit": 500}}, "rate_per_minute": 60}',
        "interval": "month", "status": "active", "current_period_start": T - timedelta(days=10),
        "current_period_end": T + timedelta(days=20), "grace_until": None, "ended": False,
        "started_at": T - timedelta(days=40),
    }  # fmt: skip
    return {**base, **values}


def test_past_its_end_a_period_rolls_on_from_exactly_where_it_ended() -> None:
    sub = row()
    end = sub["current_period_end"]
    assert subscription_period(sub, end - timedelta(microseconds=1))[1] == end
    assert subscription_period(sub, end) == (end, add_months(end, 1))
    yearly = row(interval="year")
    assert subscription_period(yearly, end + timedelta(days=1)) == (end, add_months(end, 12))


def test_a_valid_subscription_governs_before_an_assigned_tier_and_the_highest_limit_wins() -> None:
    assigned = row(source="assigned", tier="free",
                   grants='{"quotas": {"api_calls": {"limit": 5}, "exports": {"limit": 1}}}')  # fmt: skip
    small = row(tier="small", grants='{"quotas": {"api_calls": {"limit": 50}}}')
    unlimited = row(tier="max", grants='{"quotas": {"api_calls": {"limit": null}}}')
    ended = row(tier="gone", ended=True, grants='{"quotas": {"api_calls": {"limit": null}}}')
    found = meters([assigned, small, ended], T)
    assert (found["api_calls"].tier, found["api_calls"].limit) == ("small", 50)
    assert (found["exports"].tier, found["exports"].period_start) == (
        "free", datetime(2027, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    assert meters([small, unlimited, assigned], T)["api_calls"].tier == "max"
    assert meters([ended], T) == {}


def test_ratelimit_fields_name_each_limited_feature_and_the_rate() -> None:
    found = meters([row()], T)["api_calls"]
    headers = ratelimit_headers([(found, 497)], (found, (59, 42)), T)
    assert headers["RateLimit-Policy"] == '"api_calls";q=500;w=2592000, "rate_per_minute";q=60;w=60'
    assert headers["RateLimit"] == '"api_calls";r=3;t=1728000, "rate_per_minute";r=59;t=42'
    unlimited = meters([row(grants='{"quotas": {"api_calls": {"limit": null}}}')], T)["api_calls"]
    assert ratelimit_headers([(unlimited, 9)], None, T) == {}


@pytest.mark.parametrize(
    ("thresholds", "limit", "ceiling"),
    [
        ((80, 100), 10, 7),
        ((80, 100), 5, 3),
        ((80, 100), 1, 0),
        ((50,), 3, 1),
        ((), 10, 10),
        ((80, 100), None, None),
        ((80, 100), 0, 0),
        ((1,), 1000, 9),
    ],
    ids=["ten", "five", "one", "half-of-three", "no-thresholds", "unlimited", "zero", "one-pct"],
)
def test_the_one_statement_path_stops_just_below_the_first_threshold(
    thresholds: tuple[int, ...], limit: int | None, ceiling: int | None
) -> None:
    """A record that reaches a threshold must take the full transaction (it announces it):
    the quick path's ceiling is the highest total that reaches none, and never the limit's
    far side."""
    assert quick_ceiling(thresholds, limit) == ceiling
    if limit:
        assert ceiling is not None
        assert reached(thresholds, ceiling, limit) == []
        assert ceiling == limit or reached(thresholds, ceiling + 1, limit) != []
