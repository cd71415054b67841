"""Revenue over time as server-rendered SVG: no script, no inline style (the CSP allows
neither); colours come from classes in the stylesheet."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from tessera.portal.upstream.billing import Revenue

WIDTH, HEIGHT, PAD = 720, 220, 36


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: date
    net: int


@dataclass(frozen=True)
class Chart:
    currency: str
    bars: list[Bar]
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    pad: int = PAD


def net_by_day(revenue: Revenue, currency: str) -> dict[date, int]:
    days: dict[date, int] = defaultdict(int)
    for row in revenue.rows:
        if row.currency == currency:
            days[row.day] += row.net
    return days


def chart(revenue: Revenue) -> Chart | None:
    """Net per day in the main currency (the one with the most gross), every day shown."""
    if not revenue.currency_totals:
        return None
    currency = max(
        revenue.currency_totals, key=lambda c: revenue.currency_totals[c].get("gross", 0)
    )
    days = net_by_day(revenue, currency)
    span = (revenue.end - revenue.start).days + 1
    peak = max([1, *days.values()])
    slot = (WIDTH - 2 * PAD) / max(1, span)
    plot = HEIGHT - 2 * PAD
    bars = []
    for i in range(span):
        day = revenue.start + timedelta(days=i)
        net = max(0, days.get(day, 0))
        height = plot * net / peak
        bars.append(
            Bar(
                x=round(PAD + i * slot + slot * 0.1, 1),
                y=round(HEIGHT - PAD - height, 1),
                width=round(max(1.0, slot * 0.8), 1),
                height=round(height, 1),
                day=day,
                net=days.get(day, 0),
            )
        )
    return Chart(currency=currency, bars=bars, peak=peak)
