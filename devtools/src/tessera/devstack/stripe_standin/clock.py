"""Test clocks: `/v1/test_helpers/test_clocks`. Advancing a clock walks every subscription
of its customers through what would have happened by then, in time order: trial warnings,
renewals (invoice paid, or payment_failed and past_due), payment retries, and the end of
the retry schedule (canceled or unpaid)."""

from __future__ import annotations

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.customers import new_clock
from tessera.devstack.stripe_standin.subscriptions import next_moment, step
from tessera.devstack.stripe_standin.wire import Obj, StripeApiError, invalid, page

KIND = "test_helpers.test_clock"
# A clock that would need more steps than this is advanced too far at once for a dev tool.
MAX_STEPS = 5000


def create_clock(call: Call) -> Obj:
    frozen = call.params.integer("frozen_time", required=True)
    assert frozen is not None
    return new_clock(call, frozen, call.params.text("name"))


def retrieve_clock(call: Call) -> Obj:
    return call.store.get(call.account, KIND, call.path["id"])


def list_clocks(call: Call) -> Obj:
    return page(call.store.all(call.account, KIND), call.params, "/v1/test_helpers/test_clocks")


def delete_clock(call: Call) -> Obj:
    """Deleting a clock deletes its customers and their subscriptions, as Stripe does."""
    clock = retrieve_clock(call)
    customers = [
        c for c in call.store.all(call.account, "customer") if c["test_clock"] == clock["id"]
    ]
    ids = {c["id"] for c in customers}
    for subscription in call.store.all(call.account, "subscription"):
        if subscription["customer"] in ids:
            call.store.remove(subscription["id"])
    for customer in customers:
        call.store.remove(customer["id"])
    call.store.remove(clock["id"])
    return {"id": clock["id"], "object": KIND, "deleted": True}


def _subscriptions(call: Call, clock_id: str) -> list[Obj]:
    return [s for s in call.store.all(call.account, "subscription") if s["test_clock"] == clock_id]


def advance_clock(call: Call) -> Obj:
    clock = retrieve_clock(call)
    target = call.params.integer("frozen_time", required=True)
    assert target is not None
    if target <= clock["frozen_time"]:
        raise invalid(
            "frozen_time",
            "The frozen_time must be after the test clock's current frozen_time.",
            "parameter_invalid_integer",
        )
    clock["status"] = "advancing"
    call.store.emit(
        call.account, "test_helpers.test_clock.advancing", clock, created=clock["frozen_time"]
    )
    for _ in range(MAX_STEPS):
        due = [
            (moment, subscription["id"], subscription)
            for subscription in _subscriptions(call, clock["id"])
            if (moment := next_moment(call, subscription)) is not None and moment[0] <= target
        ]
        if not due:
            break
        (at, action), _, subscription = min(due, key=lambda d: (d[0], d[1]))
        # Everything that happens at `at` sees the clock there.
        clock["frozen_time"] = at
        step(call, subscription, action, at)
    else:
        clock["status"] = "internal_failure"
        raise StripeApiError(
            400, "The test clock was advanced too far at once; advance in smaller steps."
        )
    clock["frozen_time"] = target
    clock["status"] = "ready"
    call.store.emit(call.account, "test_helpers.test_clock.ready", clock, created=target)
    return clock


ENDPOINTS = [
    Endpoint("POST", "/v1/test_helpers/test_clocks", create_clock, ("frozen_time", "name")),
    Endpoint("GET", "/v1/test_helpers/test_clocks", list_clocks),
    Endpoint("GET", "/v1/test_helpers/test_clocks/{id}", retrieve_clock),
    Endpoint("DELETE", "/v1/test_helpers/test_clocks/{id}", delete_clock),
    Endpoint("POST", "/v1/test_helpers/test_clocks/{id}/advance", advance_clock, ("frozen_time",)),
]
