"""The webhook event catalogue (docs/webhooks.md, `api_version` v1) as types.

`WebhookEvent.data` is a TypedDict per `type`; narrow on `event.type` (or use the typed
accessors) to read it. Types this client does not know yet still parse (their `data` is a
plain dict): within a version Tessera only adds fields and types.
`clients/python/tests/test_events.py` fails when these drift from the service's catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypedDict, cast

from tessera_client.errors import InvalidWebhook


class CustomerData(TypedDict):
    id: str
    email: str


class OrderData(TypedDict):
    id: str
    customer: str
    email: str
    sku: str
    quantity: int
    amount_total: int
    currency: str
    product: str
    policy: str
    seats: int
    source: Literal["purchase", "admin"]


class OrderRefundData(TypedDict):
    id: str
    customer: str
    amount_refunded: int
    currency: str
    full: bool


class OrderDisputeData(TypedDict):
    id: str
    customer: str
    dispute_id: str
    reason: str | None


class OrderDisputeClosedData(TypedDict):
    id: str
    customer: str
    dispute_id: str
    outcome: Literal["won", "lost"]


class SubscriptionData(TypedDict):
    id: str
    sequence: int
    customer: str
    product: str
    tier: str
    interval: Literal["month", "year"]
    status: str
    features: list[str]
    seats: int
    current_period_start: str
    current_period_end: str
    cancel_at_period_end: bool
    trial_end: str | None
    grace_until: str | None
    started_at: str


class LicenseIssuedData(TypedDict):
    id: str
    customer: str
    product: str
    order: str | None
    policy: str


class LicenseStatusData(TypedDict):
    id: str
    customer: str
    product: str
    order: str | None
    reason: str


class UsageThresholdData(TypedDict):
    customer: str
    feature: str
    threshold: int
    used: int
    limit: int
    tier: str
    period_start: str
    period_end: str


class TestData(TypedDict):
    endpoint: str
    message: str


# Each event type and the shape of its `data`.
DATA_TYPES: dict[str, type] = {
    "customer.created": CustomerData,
    "order.paid": OrderData,
    "order.refunded": OrderRefundData,
    "order.disputed": OrderDisputeData,
    "order.dispute_closed": OrderDisputeClosedData,
    "subscription.started": SubscriptionData,
    "subscription.changed": SubscriptionData,
    "subscription.renewed": SubscriptionData,
    "subscription.ended": SubscriptionData,
    "license.issued": LicenseIssuedData,
    "license.suspended": LicenseStatusData,
    "license.reinstated": LicenseStatusData,
    "license.revoked": LicenseStatusData,
    "usage.threshold_reached": UsageThresholdData,
    "webhook.test": TestData,
}


@dataclass(frozen=True)
class WebhookEvent:
    id: str  # the `webhook-id`: the same on every retry and replay; drop what you have seen
    type: str
    api_version: str
    timestamp: datetime
    data: dict[str, Any]

    @classmethod
    def parse(cls, payload: Any) -> WebhookEvent:
        try:
            return cls(
                id=str(payload["id"]),
                type=str(payload["type"]),
                api_version=str(payload.get("api_version", "v1")),
                timestamp=datetime.fromisoformat(str(payload["timestamp"]).replace("Z", "+00:00")),
                data=dict(payload["data"]),
            )
        except (KeyError, TypeError, ValueError):
            raise InvalidWebhook("not a Tessera event") from None

    # Typed views of `data`, one per shape; each refuses an event of another type rather
    # than lying about its shape.
    def _as(self, types: tuple[str, ...]) -> Any:
        if self.type not in types:
            raise TypeError(f"a {self.type} event, not {' or '.join(types)}")
        return self.data

    def customer(self) -> CustomerData:
        return cast(CustomerData, self._as(("customer.created",)))

    def order(self) -> OrderData:
        return cast(OrderData, self._as(("order.paid",)))

    def order_refund(self) -> OrderRefundData:
        return cast(OrderRefundData, self._as(("order.refunded",)))

    def order_dispute(self) -> OrderDisputeData:
        return cast(OrderDisputeData, self._as(("order.disputed",)))

    def order_dispute_closed(self) -> OrderDisputeClosedData:
        return cast(OrderDisputeClosedData, self._as(("order.dispute_closed",)))

    def subscription(self) -> SubscriptionData:
        return cast(
            SubscriptionData,
            self._as(tuple(t for t, d in DATA_TYPES.items() if d is SubscriptionData)),
        )

    def license_issued(self) -> LicenseIssuedData:
        return cast(LicenseIssuedData, self._as(("license.issued",)))

    def license_status(self) -> LicenseStatusData:
        return cast(
            LicenseStatusData,
            self._as(tuple(t for t, d in DATA_TYPES.items() if d is LicenseStatusData)),
        )

    def usage_threshold(self) -> UsageThresholdData:
        return cast(UsageThresholdData, self._as(("usage.threshold_reached",)))

    def test(self) -> TestData:
        return cast(TestData, self._as(("webhook.test",)))
