"""MRR over time, from each subscription's event log (docs/billing.md, "Revenue").

Why from the log and not a table of MRR changes: the log already holds every Stripe event
about a subscription with the object it carried, and `fold` turns any prefix of it into the
state billing would have had then. Replaying prefixes gives each subscription's MRR at every
event, in Stripe's order, whatever order the events arrived in; a separate table would be a
second copy of the same facts that could disagree with the fold (and a write on the
subscription path). The cost is reading the tenant's log per report, bounded by the range.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from tessera.billing.revenue import queries
from tessera.billing.subscriptions.state import (
    SUBSCRIPTION_EVENTS,
    Logged,
    first_item,
    fold,
    in_stripe_order,
)
from tessera.shared.sellers import Tenant

# Months in an interval: MRR is the price per month (a yearly price / 12).
MONTHS = {"month": 1, "year": 12}


@dataclass(frozen=True)
class Change:
    """From `at` (unix seconds) on, the subscription's MRR is `mrr` in `currency`."""

    at: int
    mrr: int
    currency: str | None
    tier: str | None


@dataclass
class Timeline:
    subscription_id: str
    customer: str
    changes: list[Change]

    def at(self, instant: int) -> Change | None:
        """The state in force at `instant` (changes strictly before it)."""
        index = bisect_left(self.changes, instant, key=lambda c: c.at)
        return self.changes[index - 1] if index else None

    def mrr_at(self, instant: int, currency: str) -> int:
        found = self.at(instant)
        return found.mrr if found and found.currency == currency else 0


def monthly(snapshot: dict[str, Any]) -> tuple[int, str | None, str | None]:
    """The subscription's price per month times the quantity (minor units), its currency and price id."""
    item = first_item(snapshot)
    price = item.get("price") or {}
    if not isinstance(price, dict):
        return 0, None, None
    recurring = price.get("recurring") or {}
    months = MONTHS.get(recurring.get("interval", ""), 0) * int(
        recurring.get("interval_count") or 1
    )
    amount = int(price.get("unit_amount") or 0) * int(item.get("quantity") or 1)
    currency = price.get("currency")
    # Rounded half up to a whole minor unit: yearly 10000 is 833 a month.
    mrr = (amount * 2 + months) // (2 * months) if months else 0
    return mrr, currency.lower() if isinstance(currency, str) else None, price.get("id")


def timeline(
    subscription_id: str, customer: str, events: list[Logged], tiers: dict[str, str]
) -> Timeline:
    """The subscription's MRR after each of its events (in Stripe's order): only `active`
    counts; trialing, past_due, unpaid, paused, incomplete and canceled are 0."""
    ordered = in_stripe_order(events)
    changes: list[Change] = []
    snapshot: dict[str, Any] = {}
    for i, event in enumerate(ordered):
        state = fold(ordered[: i + 1])
        # The price is the last snapshot's the fold took (it skips stale ones).
        if event.type in SUBSCRIPTION_EVENTS and monthly(event.snapshot)[2] == state.price_id:
            snapshot = event.snapshot
        mrr, currency, price_id = monthly(snapshot)
        if state.status != "active":
            mrr = 0
        tier = tiers.get(price_id or "") or (snapshot.get("metadata") or {}).get("tessera_tier")
        change = Change(event.created, mrr, currency, tier)
        last = changes[-1] if changes else None
        if last is None or (last.mrr, last.currency, last.tier) != (mrr, currency, tier):
            changes.append(change)
    return Timeline(subscription_id, customer, changes)


async def timelines(conn: asyncpg.Connection, tenant: Tenant, until: int) -> list[Timeline]:
    logs = await queries.subscription_logs(conn, tenant, until)
    tiers = await queries.tiers_by_stripe_price(conn, tenant)
    return [timeline(sid, customer, events, tiers) for sid, (customer, events) in logs.items()]


def currencies(found: Iterable[Timeline]) -> list[str]:
    return sorted({c.currency for t in found for c in t.changes if c.currency})


# ---------------------------------------------------------------- the summary


@dataclass
class Movements:
    new: int = 0
    expansion: int = 0
    contraction: int = 0
    churned: int = 0
    reactivation: int = 0


def classify(moves: Movements, before: int, after: int, had_mrr: bool) -> None:
    """One change of a subscription's MRR (in one currency) into its movement."""
    if before == 0 and after > 0:
        if had_mrr:
            moves.reactivation += after
        else:
            moves.new += after
    elif before > 0 and after == 0:
        moves.churned += before
    elif after > before:
        moves.expansion += after - before
    elif after < before:
        moves.contraction += before - after


def movements(found: list[Timeline], currency: str, start: int, end: int) -> Movements:
    moves = Movements()
    for line in found:
        before, had_mrr = 0, False
        for change in line.changes:
            after = change.mrr if change.currency == currency else 0
            if start <= change.at < end:
                classify(moves, before, after, had_mrr)
            had_mrr = had_mrr or after > 0
            before = after
            if change.at >= end:
                break
    return moves


def paying(found: list[Timeline], currency: str, instant: int) -> dict[str, int]:
    """Customer -> MRR at `instant`, for the customers paying something."""
    by: dict[str, int] = defaultdict(int)
    for line in found:
        mrr = line.mrr_at(instant, currency)
        if mrr:
            by[line.customer] += mrr
    return dict(by)


def by_tier(found: list[Timeline], currency: str, instant: int) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for line in found:
        change = line.at(instant)
        if change and change.mrr and change.currency == currency:
            counts[change.tier or "unknown"] += 1
    return dict(sorted(counts.items()))


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class CurrencySummary:
    currency: str
    mrr_start: int
    mrr_end: int
    moves: Movements
    customers_start: int
    customers_end: int
    customers_churned: int
    customer_churn_rate: float | None
    revenue_churn_rate: float | None
    arpu: int | None
    subscribers_by_tier: dict[str, int]
    gross: int = 0
    orders_gross: int = 0
    invoices_gross: int = 0
    refunds: int = 0
    order_refunds: int = 0
    invoice_refunds: int = 0
    fees: int | None = None
    fees_recorded: int = 0
    payments_without_fee: int = 0
    net: int = 0
    notes: list[str] = field(default_factory=list)


def summarise(found: list[Timeline], currency: str, start: int, end: int) -> CurrencySummary:
    at_start = paying(found, currency, start)
    at_end = paying(found, currency, end)
    moves = movements(found, currency, start, end)
    mrr_start, mrr_end = sum(at_start.values()), sum(at_end.values())
    lost = len(set(at_start) - set(at_end))
    return CurrencySummary(
        currency=currency,
        mrr_start=mrr_start,
        mrr_end=mrr_end,
        moves=moves,
        customers_start=len(at_start),
        customers_end=len(at_end),
        customers_churned=lost,
        customer_churn_rate=ratio(lost, len(at_start)),
        revenue_churn_rate=ratio(moves.churned + moves.contraction, mrr_start),
        arpu=round(mrr_end / len(at_end)) if at_end else None,
        subscribers_by_tier=by_tier(found, currency, end),
    )


def invoices_paid(logs: Iterable[list[Logged]], start: int, end: int) -> dict[str, dict[str, int]]:
    """Per currency, per invoice: subscription invoices paid in [start, end) (Stripe's
    `amount_paid`), each once however often its event came."""
    paid: dict[str, dict[str, int]] = defaultdict(dict)
    for events in logs:
        for event in events:
            invoice = event.snapshot
            key = str(invoice.get("id") or event.event_id)
            currency = str(invoice.get("currency") or "").lower()
            if event.type == "invoice.paid" and start <= event.created < end and currency:
                paid[currency].setdefault(key, int(invoice.get("amount_paid") or 0))
    return dict(paid)


def fees_unknown_note(count: int) -> str:
    return (
        f"{count} payment(s) of the period have no known Stripe fee (not fetched from Stripe"
        " yet, or Stripe has no balance transaction billing can reach): `fees` is null,"
        " `fees_recorded` leaves them out, and `net` is before their fees."
    )


def held_refunds_note(count: int) -> str:
    return (
        f"{count} charge(s) refunded in the period wait for billing to learn what they paid"
        " (held): their refunds are not counted yet."
    )


@dataclass
class Money:
    """The period's payments, refunds and fees per currency, as the database has them."""

    orders: dict[str, int]
    order_refunds: dict[str, int]
    invoices: dict[str, dict[str, int]]
    invoice_refunds: dict[str, dict[str, int]]
    fees: dict[str, int]
    # Per currency: the payments paid or refunded in the period (invoice or payment intent).
    payments: dict[str, set[str]]
    fee_known: set[str]
    held_refunds: dict[str, int]

    def currencies(self) -> set[str]:
        found = (self.orders, self.order_refunds, self.invoices, self.invoice_refunds,
                 self.fees, self.held_refunds)  # fmt: skip
        return set().union(*found)


async def money(conn: asyncpg.Connection, tenant: Tenant, start: int, end: int,
                logs: Iterable[list[Logged]]) -> Money:  # fmt: skip
    start_at, end_at = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    invoices = invoices_paid(logs, start, end)
    invoice_refunds: dict[str, dict[str, int]] = defaultdict(dict)
    for r in await queries.invoice_refunds(conn, tenant, start_at, end_at):
        invoice_refunds[r["currency"]][r["source"]] = r["amount"]
    payments: dict[str, set[str]] = defaultdict(set)
    for name, paid in invoices.items():
        payments[name] |= {source for source, amount in paid.items() if amount > 0}
    for name, refunded in invoice_refunds.items():
        payments[name] |= set(refunded)
    for r in await queries.order_payments(conn, tenant, start_at, end_at):
        payments[r["currency"].lower()].add(r["source"])
    every = sorted(set().union(*payments.values())) if payments else []
    return Money(
        orders={
            r["currency"].lower(): int(r["amount"] or 0)
            for r in await queries.paid_orders(conn, tenant, start_at, end_at)
        },
        order_refunds={
            r["currency"].lower(): int(r["amount"] or 0)
            for r in await queries.refunds(conn, tenant, start_at, end_at)
        },
        invoices=invoices,
        invoice_refunds=dict(invoice_refunds),
        fees={
            r["currency"]: int(r["fees"])
            for r in await queries.fees(conn, tenant, start_at, end_at)
        },
        payments=dict(payments),
        fee_known=await queries.fee_known(conn, tenant, every),
        held_refunds=await queries.held_refunds(conn, tenant, start_at, end_at),
    )


def add_money(block: CurrencySummary, found: Money) -> None:
    """Gross, refunds, Stripe's fees and net of one currency (docs/billing.md, "Revenue")."""
    name = block.currency
    block.orders_gross = found.orders.get(name, 0)
    block.invoices_gross = sum(found.invoices.get(name, {}).values())
    block.gross = block.orders_gross + block.invoices_gross
    block.order_refunds = found.order_refunds.get(name, 0)
    block.invoice_refunds = sum(found.invoice_refunds.get(name, {}).values())
    block.refunds = block.order_refunds + block.invoice_refunds
    block.fees_recorded = found.fees.get(name, 0)
    block.payments_without_fee = len(found.payments.get(name, set()) - found.fee_known)
    # A fee never known is never taken as 0: the total is given only when it is whole.
    block.fees = None if block.payments_without_fee else block.fees_recorded
    block.net = block.gross - block.refunds - block.fees_recorded
    held = found.held_refunds.get(name, 0)
    block.notes = (
        [fees_unknown_note(block.payments_without_fee)] if block.payments_without_fee else []
    )
    block.notes += [held_refunds_note(held)] if held else []


def instant(day: date) -> int:
    """The start of `day` (UTC), in unix seconds."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


async def summary(
    pool: asyncpg.Pool, tenant: Tenant, first: date, last: date, currency: str | None
) -> list[CurrencySummary]:
    """The period from the start of `first` to the end of `last` (UTC), per currency."""
    start, end = instant(first), instant(last + timedelta(days=1))
    async with pool.acquire() as conn:
        logs = await queries.subscription_logs(conn, tenant, end)
        tiers = await queries.tiers_by_stripe_price(conn, tenant)
        found_money = await money(conn, tenant, start, end, (e for _, e in logs.values()))
    found = [timeline(sid, customer, events, tiers) for sid, (customer, events) in logs.items()]
    names = set(currencies(found)) | found_money.currencies()
    wanted = sorted(names if currency is None else {currency} & names or {currency})
    out = []
    for name in wanted:
        block = summarise(found, name, start, end)
        add_money(block, found_money)
        out.append(block)
    return out


# ---------------------------------------------------------------- the series


def periods(first: date, last: date, interval: str) -> list[tuple[date, date]]:
    """The days (or calendar months, cut to the range) from `first` to `last`: each a point
    of the series, as (first day, last day)."""
    out: list[tuple[date, date]] = []
    day = first
    while day <= last:
        if interval == "day":
            following = day + timedelta(days=1)
        else:
            following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        out.append((day, min(following - timedelta(days=1), last)))
        day = following
    return out


@dataclass(frozen=True)
class Point:
    start: date
    end: date
    currency: str
    mrr: int
    subscribers: int


async def series(
    pool: asyncpg.Pool, tenant: Tenant, first: date, last: date, interval: str,
    currency: str | None,
) -> list[Point]:  # fmt: skip
    """MRR at the end of each day (or month) in the range, per currency."""
    points = periods(first, last, interval)
    async with pool.acquire() as conn:
        found = await timelines(conn, tenant, instant(last + timedelta(days=1)))
    names = currencies(found) if currency is None else [currency]
    out = []
    for start, end in points:
        moment = instant(end + timedelta(days=1))
        for name in names:
            values = [line.mrr_at(moment, name) for line in found]
            out.append(Point(start, end, name, sum(values), sum(1 for v in values if v)))
    return out
