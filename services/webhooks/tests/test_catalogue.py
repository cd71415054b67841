"""The public catalogue: every consumed bus event has a translation into a valid public
event, the translations keep internal fields out, and docs/webhooks.md shows the schemas
the models generate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tessera.shared.events import auth, billing, licensing
from tessera.shared.events.envelope import Event
from tessera.shared.events.topology import subscriptions_of
from tessera.webhooks.catalogue import schemas as public
from tessera.webhooks.catalogue.service import TRANSLATIONS, translate, with_catalogue

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "webhooks.md"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SELLER = uuid.UUID("00000000-0000-4000-8000-00000000000a")

SUBSCRIPTION: dict[str, Any] = {
    "subscription_id": "sub_1", "sequence": 7, "account_id": uuid.uuid4(), "product": "tool",
    "tier": "pro", "grants": {"features": ["sync"], "seats": 3}, "interval": "month",
    "status": "active", "current_period_start": NOW, "current_period_end": NOW,
    "started_at": NOW, "stripe_customer_id": "cus_secret", "platform_for": uuid.uuid4(),
}  # fmt: skip
LICENSE: dict[str, Any] = {
    "license_id": uuid.uuid4(), "account_id": uuid.uuid4(), "product": "tool",
    "order_id": uuid.uuid4(),
}  # fmt: skip
ORDER: dict[str, Any] = {"order_id": uuid.uuid4(), "account_id": uuid.uuid4()}
STRIPE = billing.StripeRefs(charge_id="ch_secret", customer_id="cus_secret")

SAMPLES: dict[type[Event], dict[str, Any]] = {
    auth.UserCreated: {"user_id": uuid.uuid4(), "account_id": uuid.uuid4(), "email": "c@example.com"},
    billing.OrderPaid: {
        **ORDER, "email": "c@example.com", "sku": "tool-1y", "quantity": 2, "amount_total": 9800,
        "currency": "usd", "product": "tool", "policy": "tool-year", "seats": 2, "stripe": STRIPE,
    },
    billing.OrderRefunded: {**ORDER, "amount_refunded": 100, "currency": "usd", "full": False, "stripe": STRIPE},
    billing.OrderDisputed: {**ORDER, "dispute_id": "dp_1", "reason": "fraudulent", "stripe": STRIPE},
    billing.OrderDisputeClosed: {**ORDER, "dispute_id": "dp_1", "outcome": "won", "stripe": STRIPE},
    billing.SubscriptionStarted: SUBSCRIPTION,
    billing.SubscriptionChanged: SUBSCRIPTION,
    billing.SubscriptionRenewed: SUBSCRIPTION,
    billing.SubscriptionEnded: SUBSCRIPTION,
    licensing.LicenseIssued: {**LICENSE, "policy": "tool-year"},
    licensing.LicenseSuspended: {**LICENSE, "reason": "dispute"},
    licensing.LicenseReinstated: {**LICENSE, "reason": "won"},
    licensing.LicenseRevoked: {**LICENSE, "reason": "refund"},
    licensing.UsageThresholdReached: {
        "account_id": uuid.uuid4(), "feature": "api_calls", "threshold": 80, "used": 400,
        "limit": 500, "tier": "pro", "period_start": NOW, "period_end": NOW,
    },
}  # fmt: skip


def test_webhooks_consumes_exactly_the_events_it_translates() -> None:
    consumed = {sub.event for sub in subscriptions_of("webhooks")}
    assert consumed == set(TRANSLATIONS) == set(SAMPLES)


@pytest.mark.parametrize("event_type", list(SAMPLES), ids=lambda t: t.subject)
def test_each_bus_event_becomes_a_valid_public_event(event_type: type[Event]) -> None:
    event = event_type(**SAMPLES[event_type], seller_id=SELLER, occurred_at=NOW)
    out = translate(event)
    assert out is not None
    assert out.id == f"evt_{event.event_id.hex}"  # stable: derived from the bus event
    assert out.timestamp == NOW
    model = public.CATALOGUE[out.type]
    body = out.model_dump_json()
    assert model.model_validate_json(body) == out  # the body is what its schema describes
    # Internal details stay inside: Stripe's ids, the platform plan, the producer, the seller.
    for secret in ("cus_secret", "ch_secret", "platform_for", "producer", str(SELLER)):
        assert secret not in body


def test_a_subscription_event_says_where_it_stands_in_its_sequence() -> None:
    event = billing.SubscriptionRenewed(**SUBSCRIPTION, seller_id=SELLER, occurred_at=NOW)
    out = translate(event)
    assert isinstance(out, public.SubscriptionRenewed)
    assert out.data.sequence == 7  # receivers order out-of-order deliveries by it
    assert out.data.features == ["sync"] and out.data.seats == 3


def test_an_admin_user_is_no_customer_event() -> None:
    admin = auth.UserCreated(
        user_id=uuid.uuid4(), account_id=uuid.uuid4(), email="ops@example.com", role="admin"
    )
    assert translate(admin) is None


def test_the_docs_show_the_schemas_the_models_generate() -> None:
    document = DOC.read_text(encoding="utf-8")
    assert with_catalogue(document) == document, (
        "run `./dev openapi` to regenerate docs/webhooks.md"
    )
    for event_type in public.EVENT_TYPES:
        assert f"### `{event_type}`" in document
