"""The fold's order within one second (docs/billing.md, "The ordering rule"), on the events
Stripe sends for a failed renewal and its recovery: `invoice.payment_failed`, then
`customer.subscription.updated` to past_due (previous status active); later `invoice.paid`,
then the update back to active (previous status past_due). Any of these may share a second
with each other and with the renewal that started the period (a test clock makes that the
rule). For every prefix of Stripe's order, every permutation of the events received so far,
and shuffles of them doubled, fold to the one right state."""

from __future__ import annotations

import random
from itertools import permutations
from typing import Any

import pytest

from tessera.billing.subscriptions.state import Folded, Logged, fold

MONTH = 30 * 86400
P1 = 1_700_000_000
P2 = P1 + MONTH
UPDATED = "customer.subscription.updated"


def items(start: int) -> dict[str, Any]:
    return {"data": [{"id": "si_1", "price": {"id": "price_pro"},
                      "current_period_start": start, "current_period_end": start + MONTH}]}  # fmt: skip


def subscription(
    event_id: str,
    created: int,
    status: str,
    start: int,
    previous: dict[str, Any] | None = None,
    kind: str = UPDATED,
) -> Logged:
    """A `customer.subscription.*` event: the subscription as it is after the change."""
    snapshot = {"id": "sub_1", "object": "subscription", "status": status, "customer": "cus_1",
                "cancel_at_period_end": False, "start_date": P1, "items": items(start)}  # fmt: skip
    return Logged(event_id, kind, created, snapshot, previous)


def renewal(event_id: str, created: int, start: int, before: int) -> Logged:
    """The period that starts at `start` (Stripe's update names the old period's items)."""
    return subscription(event_id, created, "active", start, {"items": items(before)})


def invoice(event_id: str, kind: str, created: int, start: int, number: str) -> Logged:
    """`invoice.payment_failed` or `invoice.paid` for the invoice of the period at `start`."""
    paid = kind == "invoice.paid"
    snapshot = {"id": f"in_{number}", "object": "invoice", "status": "paid" if paid else "open",
                "attempt_count": 2 if paid else 1, "subscription": "sub_1",
                "period_start": start - MONTH, "period_end": start,
                "lines": {"data": [{"period": {"start": start, "end": start + MONTH}}]}}  # fmt: skip
    previous = {"status": "open", "attempt_count": 1} if paid else {"attempt_count": 0}
    return Logged(event_id, kind, created, snapshot, previous)


def failed(event_id: str, created: int, start: int, number: str) -> Logged:
    return invoice(event_id, "invoice.payment_failed", created, start, number)


def paid(event_id: str, created: int, start: int, number: str) -> Logged:
    return invoice(event_id, "invoice.paid", created, start, number)


def outcome(state: Folded) -> tuple[str | None, int | None, int | None]:
    return state.status, state.period_start, state.past_due_since


T = P2  # the renewal's second
# Each scenario: the events in the order Stripe made them, and the state after each one.
SCENARIOS: dict[str, list[tuple[Logged, tuple[str, int, int | None]]]] = {
    # The renewal a second earlier; the failure and the recovery inside one second.
    "recovery-within-one-second": [
        (subscription("evt_01", P1, "active", P1, kind="customer.subscription.created"),
         ("active", P1, None)),
        (renewal("evt_02", T - 1, P2, P1), ("active", P2, None)),
        (failed("evt_03", T, P2, "2"), ("past_due", P2, T)),
        (subscription("evt_04", T, "past_due", P2, {"status": "active"}), ("past_due", P2, T)),
        (paid("evt_05", T, P2, "2"), ("active", P2, None)),
        (subscription("evt_06", T, "active", P2, {"status": "past_due"}), ("active", P2, None)),
    ],
    # The renewal, its failed invoice and the recovery all in the same second.
    "renewal-failure-and-recovery-in-one-second": [
        (subscription("evt_11", P1, "active", P1, kind="customer.subscription.created"),
         ("active", P1, None)),
        (renewal("evt_12", T, P2, P1), ("active", P2, None)),
        (failed("evt_13", T, P2, "2"), ("past_due", P2, T)),
        (subscription("evt_14", T, "past_due", P2, {"status": "active"}), ("past_due", P2, T)),
        (paid("evt_15", T, P2, "2"), ("active", P2, None)),
        (subscription("evt_16", T, "active", P2, {"status": "past_due"}), ("active", P2, None)),
    ],
    # An invoice and the snapshot of its period in one second: the invoice speaks after.
    "invoice-and-snapshot-in-one-second": [
        (subscription("evt_21", P1, "active", P1, kind="customer.subscription.created"),
         ("active", P1, None)),
        (renewal("evt_22", T, P2, P1), ("active", P2, None)),
        (failed("evt_23", T, P2, "2"), ("past_due", P2, T)),
        (failed("evt_24", T + 3, P2, "2"), ("past_due", P2, T)),
        (subscription("evt_25", T + 3, "past_due", P2, {"status": "active"}), ("past_due", P2, T)),
    ],
    # At the period boundary, in one second: the old period's invoice paid on its last
    # retry and the subscription back to active, then the new period, whose invoice fails.
    "renewal-at-the-period-boundary": [
        (subscription("evt_31", P1, "active", P1, kind="customer.subscription.created"),
         ("active", P1, None)),
        (failed("evt_32", P1 + 10, P1, "1"), ("past_due", P1, P1 + 10)),
        (subscription("evt_33", P1 + 10, "past_due", P1, {"status": "active"}),
         ("past_due", P1, P1 + 10)),
        (paid("evt_34", T, P1, "1"), ("active", P1, None)),
        (subscription("evt_35", T, "active", P1, {"status": "past_due"}), ("active", P1, None)),
        (renewal("evt_36", T, P2, P1), ("active", P2, None)),
        (failed("evt_37", T, P2, "2"), ("past_due", P2, T)),
        (subscription("evt_38", T, "past_due", P2, {"status": "active"}), ("past_due", P2, T)),
    ],
}  # fmt: skip
CASES = [(name, upto) for name, steps in SCENARIOS.items() for upto in range(1, len(steps) + 1)]


@pytest.mark.parametrize(("name", "upto"), CASES, ids=[f"{n}-{u}" for n, u in CASES])
def test_every_order_of_the_events_so_far_folds_to_the_right_state(name: str, upto: int) -> None:
    steps = SCENARIOS[name][:upto]
    events = [event for event, _ in steps]
    expected = steps[-1][1]
    orders: list[list[Logged]] = []
    if len(events) <= 6:
        orders.extend(list(p) for p in permutations(events))
    for seed in range(40):
        shuffled = list(events)
        random.Random(seed).shuffle(shuffled)
        orders.append(shuffled)
        doubled = events * 2
        random.Random(seed).shuffle(doubled)
        orders.append(doubled)
    for order in orders:
        assert outcome(fold(order)) == expected, [e.event_id for e in order]


def test_a_failure_in_the_same_second_as_the_renewal_is_not_undone_by_it() -> None:
    """The renewal's update (active, the new period) and the new period's failed invoice in
    one second: the failure came after (it is the new period's invoice), so past due."""
    events = [renewal("evt_a", T, P2, P1), failed("evt_b", T, P2, "2")]
    for order in (events, events[::-1]):
        assert outcome(fold(order)) == ("past_due", P2, T)


def test_a_recovery_whose_invoice_is_not_in_yet_still_counts() -> None:
    """The update back to active arrives, its `invoice.paid` not yet: the failure of the
    same second is not news any more (the update shows it recovered from)."""
    events = [
        renewal("evt_a", T, P2, P1),
        failed("evt_b", T, P2, "2"),
        subscription("evt_c", T, "past_due", P2, {"status": "active"}),
        subscription("evt_d", T, "active", P2, {"status": "past_due"}),
    ]
    for order in permutations(events):
        assert outcome(fold(list(order))) == ("active", P2, None)


def test_a_pair_that_undo_each_other_is_untied_by_the_state_before_them() -> None:
    """past_due (previous active) and active (previous past_due) in one second follow each
    other both ways; the snapshot before the second decides which came first."""
    fell = subscription("evt_z_fell", T, "past_due", P2, {"status": "active"})
    rose = subscription("evt_a_rose", T, "active", P2, {"status": "past_due"})
    from_active = renewal("evt_0", T - 5, P2, P1)
    from_past_due = subscription("evt_0", T - 5, "past_due", P2, {"status": "active"})
    for order in ([fell, rose], [rose, fell]):
        assert fold([from_active, *order]).status == "active"
        assert fold([from_past_due, *order]).status == "past_due"
