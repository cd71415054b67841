"""A subscription's state as a fold of every Stripe event logged for it, in Stripe's order.

Why a fold: Stripe sends events at least once and in no promised order. Folding the whole
log, sorted by the event's `created` and a tie-break, makes the state a function of the
set of events received, never of the order they arrived in (docs/billing.md, "The
ordering rule"). Within one second: the earlier period first (periods never move
backwards); within one period, subscription snapshots before invoice events (an invoice
only nudges the status, and Stripe sends the subscription's own update with it); among
snapshots, the order their changes tell (`previous_attributes`), starting from the
snapshot folded last before that second; the status rank and the event id only for what
that chain cannot order."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Any

STATUS_RANK = {
    "incomplete": 0, "incomplete_expired": 1, "trialing": 2, "active": 3, "paused": 3,
    "past_due": 4, "unpaid": 5, "canceled": 6,
}  # fmt: skip
# Nothing comes back from these (a canceled subscription is never revived by Stripe).
FINAL = frozenset({"canceled", "incomplete_expired"})
SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.trial_will_end",
    }
)


@dataclass(frozen=True)
class Logged:
    """One logged event: Stripe's id, type, `created` and the object it carried."""

    event_id: str
    type: str
    created: int
    snapshot: dict[str, Any]
    # Stripe's `data.previous_attributes` (on `*.updated`), or None.
    previous: dict[str, Any] | None = None


@dataclass
class Folded:
    status: str | None = None
    customer: str | None = None
    item_id: str | None = None
    price_id: str | None = None
    interval: str | None = None
    period_start: int | None = None
    period_end: int | None = None
    cancel_at_period_end: bool = False
    trial_end: int | None = None
    past_due_since: int | None = None
    started_at: int | None = None
    ended_at: int | None = None
    metadata: dict[str, str] | None = None


def _id(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


def first_item(snapshot: dict[str, Any]) -> dict[str, Any]:
    items = (snapshot.get("items") or {}).get("data") or [{}]
    item: dict[str, Any] = items[0] or {}
    return item


def period_of(snapshot: dict[str, Any]) -> tuple[int | None, int | None]:
    """The current period: on the item (Stripe's API since 2025), or on the subscription."""
    item = first_item(snapshot)
    start = item.get("current_period_start", snapshot.get("current_period_start"))
    end = item.get("current_period_end", snapshot.get("current_period_end"))
    return start, end


def invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice bills: `parent.subscription_details` (Stripe's API since
    2025), or `subscription` (before)."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    found = _id(details.get("subscription")) or _id(invoice.get("subscription"))
    return found if isinstance(found, str) and found else None


def subscription_id_of(event_type: str, obj: dict[str, Any]) -> str | None:
    """The subscription a handled event is about."""
    if event_type in SUBSCRIPTION_EVENTS:
        found = obj.get("id")
    elif event_type.startswith("invoice."):
        found = invoice_subscription(obj)
    else:  # checkout.session.completed in subscription mode
        found = _id(obj.get("subscription"))
    return found if isinstance(found, str) and found else None


# The kinds of logged event, in the order they take within one second and period.
SNAPSHOT, INVOICE = 0, 1
# Between two events of one invoice in the same second: a failed attempt came before the
# payment (a paid invoice is never attempted again).
INVOICE_RANK = {"invoice.payment_failed": 0, "invoice.paid": 1}


def billed_period_start(invoice: dict[str, Any]) -> int:
    """The start of the period an invoice bills: the latest of its lines' periods (the
    subscription item's line; on a renewal's invoice, proration lines lie inside the period
    before, and on a change's they start later in the same period), else the
    invoice's own `period_end` (a subscription invoice's period looks back one period, so its
    end is the billed period's start)."""
    lines = (invoice.get("lines") or {}).get("data") or []
    starts = [(line.get("period") or {}).get("start") for line in lines if isinstance(line, dict)]
    found = [start for start in starts if isinstance(start, int)]
    if found:
        return max(found)
    end = invoice.get("period_end")
    return end if isinstance(end, int) else 0


def order_key(event: Logged) -> tuple[int, int, int]:
    """(second, period start, kind): events tied on it are ordered by `chained`."""
    if event.type in SUBSCRIPTION_EVENTS:
        start, _ = period_of(event.snapshot)
        return (event.created, start or 0, SNAPSHOT)
    return (event.created, billed_period_start(event.snapshot), INVOICE)


def tie_break(event: Logged) -> tuple[int, str]:
    """The last resort for events the chain of changes cannot order: the further status
    later (a snapshot), a payment after a failure (an invoice), then the event id, arbitrary
    but fixed so that even a true tie has one answer."""
    if event.type in SUBSCRIPTION_EVENTS:
        return STATUS_RANK.get(event.snapshot.get("status", ""), 0), event.event_id
    return INVOICE_RANK.get(event.type, 0), event.event_id


def follows(later: Logged, earlier: Logged) -> bool:
    """`later` changed what `earlier` left: its previous values are `earlier`'s new ones."""
    previous = later.previous
    if not previous:
        return False
    return all(earlier.snapshot.get(k) == v for k, v in previous.items())


def chained(tied: list[Logged], before: Logged | None = None) -> list[Logged]:
    """Events tied on `order_key`, in the order their changes tell, walking from `before`
    (the snapshot folded last before them): next is an event that changed what the last one
    left, preferring one that follows no other event still waiting; else one that follows
    none; the tie-break decides among those. Starting from `before` is what unties a pair
    that undo each other in one second: past_due (previous: active) and active (previous:
    past_due) came in the order that fits the state they started from."""
    remaining = sorted(tied, key=tie_break)
    ordered: list[Logged] = []
    last = before
    while remaining:
        heads = [e for e in remaining if not any(follows(e, o) for o in remaining if o is not e)]
        after = [e for e in remaining if last is not None and follows(e, last)]
        chosen = ([e for e in after if e in heads] or after or heads or remaining)[0]
        ordered.append(chosen)
        remaining.remove(chosen)
        last = chosen
    return ordered


def in_stripe_order(events: list[Logged]) -> list[Logged]:
    """The events (each id once: the log is a set) in the order Stripe made them."""
    unique = {e.event_id: e for e in events}.values()
    ordered: list[Logged] = []
    last_snapshot: Logged | None = None
    for key, tied in groupby(sorted(unique, key=order_key), key=order_key):
        if key[2] == SNAPSHOT:
            group = chained(list(tied), last_snapshot)
            last_snapshot = group[-1]
        else:  # an invoice's changes are the invoice's, never the subscription's
            group = chained(list(tied))
        ordered.extend(group)
    return ordered


def recoveries(events: list[Logged]) -> set[tuple[int, int]]:
    """(second, period start) of each snapshot that took the subscription out of past_due."""
    return {
        order_key(e)[:2]
        for e in events
        if e.type in SUBSCRIPTION_EVENTS
        and (e.previous or {}).get("status") == "past_due"
        and e.snapshot.get("status") in ("active", "trialing")
    }


def fold(events: list[Logged]) -> Folded:
    state = Folded()
    recovered = recoveries(events)
    for event in in_stripe_order(events):
        if event.type in SUBSCRIPTION_EVENTS:
            _apply_snapshot(state, event)
        elif event.type == "invoice.payment_failed":
            # Invoices fold after the snapshots of their second and period: a failure the
            # subscription's own update already shows recovered from is not news.
            if order_key(event)[:2] not in recovered:
                _payment_failed(state, event)
        elif event.type == "invoice.paid":
            _paid(state, event)
    return state


def _apply_snapshot(state: Folded, event: Logged) -> None:
    snap = event.snapshot
    if state.status in FINAL:
        return  # canceled is final
    start, end = period_of(snap)
    if start is not None and state.period_start is not None and start < state.period_start:
        return  # periods never move backwards
    status = snap.get("status") or state.status
    if status == "past_due" and state.status != "past_due":
        state.past_due_since = event.created
    elif status != "past_due":
        state.past_due_since = None
    state.status = status
    state.customer = _id(snap.get("customer")) or state.customer
    item = first_item(snap)
    price = item.get("price") or {}
    state.item_id = item.get("id") or state.item_id
    state.price_id = _id(price) or state.price_id
    if isinstance(price, dict):
        state.interval = (price.get("recurring") or {}).get("interval") or state.interval
    state.period_start, state.period_end = start, end
    state.cancel_at_period_end = bool(snap.get("cancel_at_period_end"))
    state.trial_end = snap.get("trial_end")
    state.started_at = snap.get("start_date") or snap.get("created") or state.started_at
    state.ended_at = snap.get("ended_at") or (event.created if status in FINAL else None)
    state.metadata = {str(k): str(v) for k, v in (snap.get("metadata") or {}).items()}


def _payment_failed(state: Folded, event: Logged) -> None:
    """A failed renewal makes an active subscription past due, if its own update has not
    said so (Stripe sends both; either is enough)."""
    if state.status == "active":
        state.status = "past_due"
        state.past_due_since = event.created


def _paid(state: Folded, event: Logged) -> None:
    """A paid invoice ends a past-due spell (again, Stripe's update says the same)."""
    if state.status == "past_due":
        state.status = "active"
        state.past_due_since = None
