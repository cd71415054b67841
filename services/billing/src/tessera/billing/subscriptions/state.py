"""A subscription's state as a fold of every Stripe event logged for it, in Stripe's order.

Why a fold: Stripe sends events at least once and in no promised order. Folding the whole
log, sorted by the event's `created` and a tie-break, makes the state a function of the
set of events received, never of the order they arrived in (docs/billing.md, "The
ordering rule"). The tie-break for events of the same second: the later period first
(periods never move backwards), then the further status (`incomplete` < `trialing` <
`active` < `past_due` < `unpaid` < `canceled`), then subscription snapshots before invoices,
then, among changes still tied, the order the changes themselves tell: a change whose
`previous_attributes` are another's new values came after it (a cancellation at period end
taken back in the same second); and last the event id (arbitrary but fixed, so the result
is still one)."""

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


def order_key(event: Logged) -> tuple[int, int, int, int]:
    snap = event.snapshot
    if event.type in SUBSCRIPTION_EVENTS:
        start, _ = period_of(snap)
        return (event.created, start or 0, STATUS_RANK.get(snap.get("status", ""), 0), 0)
    return (event.created, 0, 0, 1)


def follows(later: Logged, earlier: Logged) -> bool:
    """`later` changed what `earlier` left: its previous values are `earlier`'s new ones."""
    previous = later.previous
    if not previous:
        return False
    return all(earlier.snapshot.get(k) == v for k, v in previous.items())


def chained(tied: list[Logged]) -> list[Logged]:
    """Events tied on `order_key`, in the order their changes tell (then by event id): the
    order depends only on the set, never on arrival."""
    remaining = sorted(tied, key=lambda e: e.event_id)
    ordered: list[Logged] = []
    while remaining:
        last = ordered[-1] if ordered else None
        after = [e for e in remaining if last is not None and follows(e, last)]
        heads = [e for e in remaining if not any(follows(e, o) for o in remaining if o is not e)]
        chosen = (after or heads or remaining)[0]
        ordered.append(chosen)
        remaining.remove(chosen)
    return ordered


def in_stripe_order(events: list[Logged]) -> list[Logged]:
    ordered: list[Logged] = []
    for _, tied in groupby(sorted(events, key=order_key), key=order_key):
        ordered.extend(chained(list(tied)))
    return ordered


def fold(events: list[Logged]) -> Folded:
    state = Folded()
    for event in in_stripe_order(events):
        if event.type in SUBSCRIPTION_EVENTS:
            _apply_snapshot(state, event)
        elif event.type == "invoice.payment_failed":
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
