"""Bus events translated into public events, and the catalogue's documentation.

Each public event's id is derived from the bus event's id (`evt_` + its hex), so a bus
event redelivered, or consumed again after a restore, yields the same `webhook-id`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

from tessera.shared.events import auth, billing, licensing
from tessera.shared.events.envelope import Event
from tessera.webhooks.catalogue import schemas as public


def public_id(event_id: UUID) -> str:
    return f"evt_{event_id.hex}"


def event_uuid(public_event_id: str) -> UUID:
    """The id a public event id carries (`evt_<hex>`); ValueError if it is not one."""
    if not public_event_id.startswith("evt_"):
        raise ValueError("not an event id")
    return UUID(hex=public_event_id.removeprefix("evt_"))


def _envelope(event: Event) -> dict[str, Any]:
    return {"id": public_id(event.event_id), "timestamp": event.occurred_at}


def _customer(event: auth.UserCreated) -> public.PublicEvent | None:
    if event.role != "customer":
        return None  # an operator's admin user is no seller's customer
    data = public.CustomerData(id=event.account_id, email=str(event.email))
    return public.CustomerCreated(**_envelope(event), data=data)


def _order_paid(event: billing.OrderPaid) -> public.PublicEvent:
    data = public.OrderData(
        id=event.order_id, customer=event.account_id, email=str(event.email), sku=event.sku,
        quantity=event.quantity, amount_total=event.amount_total, currency=event.currency,
        product=event.product, policy=event.policy, seats=event.seats, source=event.source,
    )  # fmt: skip
    return public.OrderPaid(**_envelope(event), data=data)


def _order_refunded(event: billing.OrderRefunded) -> public.PublicEvent:
    data = public.OrderRefundData(
        id=event.order_id, customer=event.account_id, amount_refunded=event.amount_refunded,
        currency=event.currency, full=event.full,
    )  # fmt: skip
    return public.OrderRefunded(**_envelope(event), data=data)


def _order_disputed(event: billing.OrderDisputed) -> public.PublicEvent:
    data = public.OrderDisputeData(
        id=event.order_id, customer=event.account_id, dispute_id=event.dispute_id,
        reason=event.reason,
    )  # fmt: skip
    return public.OrderDisputed(**_envelope(event), data=data)


def _order_dispute_closed(event: billing.OrderDisputeClosed) -> public.PublicEvent:
    data = public.OrderDisputeClosedData(
        id=event.order_id, customer=event.account_id, dispute_id=event.dispute_id,
        outcome=event.outcome,
    )  # fmt: skip
    return public.OrderDisputeClosed(**_envelope(event), data=data)


def _subscription_data(event: billing.SubscriptionEvent) -> public.SubscriptionData:
    return public.SubscriptionData(
        id=event.subscription_id, sequence=event.sequence, customer=event.account_id,
        product=event.product,
        tier=event.tier, interval=event.interval, status=event.status,
        features=list(event.grants.features), seats=event.grants.seats,
        current_period_start=event.current_period_start,
        current_period_end=event.current_period_end,
        cancel_at_period_end=event.cancel_at_period_end, trial_end=event.trial_end,
        grace_until=event.grace_until, started_at=event.started_at,
    )  # fmt: skip


def _subscription(
    model: type[public.PublicEvent],
) -> Callable[[billing.SubscriptionEvent], public.PublicEvent]:
    def translate(event: billing.SubscriptionEvent) -> public.PublicEvent:
        return model(**_envelope(event), data=_subscription_data(event))

    return translate


def _license_issued(event: licensing.LicenseIssued) -> public.PublicEvent:
    data = public.LicenseIssuedData(
        id=event.license_id, customer=event.account_id, product=event.product,
        order=event.order_id, policy=event.policy,
    )  # fmt: skip
    return public.LicenseIssued(**_envelope(event), data=data)


def _license_status(
    model: type[public.PublicEvent],
) -> Callable[[licensing.LicenseSuspended], public.PublicEvent]:
    def translate(event: Any) -> public.PublicEvent:
        data = public.LicenseStatusData(
            id=event.license_id, customer=event.account_id, product=event.product,
            order=event.order_id, reason=event.reason,
        )  # fmt: skip
        return model(**_envelope(event), data=data)

    return translate


def _usage_threshold(event: licensing.UsageThresholdReached) -> public.PublicEvent:
    data = public.UsageThresholdData(
        customer=event.account_id, feature=event.feature, threshold=event.threshold,
        used=event.used, limit=event.limit, tier=event.tier, period_start=event.period_start,
        period_end=event.period_end,
    )  # fmt: skip
    return public.UsageThresholdReached(**_envelope(event), data=data)


# Every bus event webhooks consumes, and its translation (None: nothing public to say).
TRANSLATIONS: dict[type[Event], Callable[[Any], public.PublicEvent | None]] = {
    auth.UserCreated: _customer,
    billing.OrderPaid: _order_paid,
    billing.OrderRefunded: _order_refunded,
    billing.OrderDisputed: _order_disputed,
    billing.OrderDisputeClosed: _order_dispute_closed,
    billing.SubscriptionStarted: _subscription(public.SubscriptionStarted),
    billing.SubscriptionChanged: _subscription(public.SubscriptionChanged),
    billing.SubscriptionRenewed: _subscription(public.SubscriptionRenewed),
    billing.SubscriptionEnded: _subscription(public.SubscriptionEnded),
    licensing.LicenseIssued: _license_issued,
    licensing.LicenseSuspended: _license_status(public.LicenseSuspended),
    licensing.LicenseReinstated: _license_status(public.LicenseReinstated),
    licensing.LicenseRevoked: _license_status(public.LicenseRevoked),
    licensing.UsageThresholdReached: _usage_threshold,
}


def translate(event: Event) -> public.PublicEvent | None:
    return TRANSLATIONS[type(event)](event)


def body_of(event: public.PublicEvent) -> str:
    """The bytes sent (as text): compact JSON, fixed once and kept, so every attempt signs
    the same body."""
    return event.model_dump_json()


# ------------------------------------------------------------------------ the docs


DOC_BEGIN = "<!-- catalogue:begin (generated by `./dev openapi`; do not edit) -->"
DOC_END = "<!-- catalogue:end -->"


def catalogue_markdown() -> str:
    """The catalogue section of docs/webhooks.md: each type, what it means, and its JSON
    Schema, generated from the models."""
    lines = [DOC_BEGIN, ""]
    for name, model in public.CATALOGUE.items():
        schema = model.model_json_schema(mode="serialization")
        lines += [
            f"### `{name}`",
            "",
            (model.__doc__ or "").strip(),
            "",
            "```json",
            json.dumps(schema, indent=2, sort_keys=True),
            "```",
            "",
        ]
    lines.append(DOC_END)
    return "\n".join(lines)


def with_catalogue(document: str) -> str:
    """`document` (docs/webhooks.md) with its generated section replaced by the current one."""
    head, found, rest = document.partition(DOC_BEGIN)
    if not found:
        raise ValueError("docs/webhooks.md has no catalogue markers")
    _, found, tail = rest.partition(DOC_END)
    if not found:
        raise ValueError("docs/webhooks.md has no catalogue end marker")
    return head + catalogue_markdown() + tail
