"""Stripe-shaped objects and events, as Stripe's API reference and its own fixtures show
them, for the built-in test checkout (and the tests) to send to billing's real ingress."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import stripe

API_VERSION = "2024-06-20"


def stripe_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


def event(event_type: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    return {
        "id": stripe_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created or int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": obj},
    }


def checkout_session(
    *,
    session_id: str,
    email: str,
    sku: str,
    quantity: int,
    amount_total: int,
    currency: str,
    customer: str,
    payment_intent: str,
    payment_status: str = "paid",
) -> dict[str, Any]:
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "currency": currency,
        "customer": customer,
        "customer_creation": "always",
        "customer_details": {"email": email, "name": None, "phone": None, "tax_exempt": "none"},
        "customer_email": None,
        "livemode": False,
        "metadata": {"sku": sku, "quantity": str(quantity)},
        "mode": "payment",
        "payment_intent": payment_intent,
        "payment_status": payment_status,
        "status": "complete" if payment_status == "paid" else "open",
        "success_url": "https://example.com/success",
        "cancel_url": "https://example.com/cancel",
    }


def charge(
    *,
    charge_id: str,
    amount: int,
    currency: str,
    customer: str,
    payment_intent: str,
    amount_refunded: int = 0,
    receipt_url: str | None = None,
) -> dict[str, Any]:
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": amount_refunded,
        "captured": True,
        "currency": currency,
        "customer": customer,
        "disputed": False,
        "livemode": False,
        "paid": True,
        "payment_intent": payment_intent,
        "receipt_url": receipt_url,
        "refunded": amount > 0 and amount_refunded >= amount,
        "status": "succeeded",
    }


def dispute(
    *,
    dispute_id: str,
    charge_id: str,
    payment_intent: str,
    amount: int,
    currency: str,
    status: str,
    reason: str = "fraudulent",
) -> dict[str, Any]:
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "charge": charge_id,
        "currency": currency,
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": payment_intent,
        "reason": reason,
        "status": status,
    }


def signed(payload: dict[str, Any], secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The body and `Stripe-Signature` header Stripe would send for `payload`."""
    body = json.dumps(payload, separators=(",", ":"))
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)
    return body.encode(), header
