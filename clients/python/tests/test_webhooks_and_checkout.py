"""Webhooks the webhooks service really delivers (signed with `standardwebhooks`), verified
and parsed by the client; a subscription checkout's refusal as a typed problem."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from client_stack import Delivery, Stack  # type: ignore[import-not-found]
from tessera_client import Conflict, InvalidWebhook, WebhookVerifier

pytestmark = pytest.mark.integration


async def an_endpoint(stack: Stack) -> tuple[str, str]:
    """The receiver registered with the seller's secret key: (endpoint id, secret)."""
    async with httpx.AsyncClient(base_url=stack.urls["webhooks"]) as http:
        made = await http.post(
            "/v1/webhook-endpoints",
            json={"url": stack.receiver.url},
            headers={"authorization": f"Bearer {stack.seller.secret_key}"},
        )
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["secret"]


async def seller_call(stack: Stack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.urls["webhooks"]) as http:
        answer = await http.post(
            path, json=body, headers={"authorization": f"Bearer {stack.seller.secret_key}"}
        )
    assert answer.is_success, answer.text
    out: dict[str, Any] = answer.json()
    return out


async def test_a_delivered_event_verifies_and_parses(stack: Stack) -> None:
    endpoint, secret = await an_endpoint(stack)
    await seller_call(stack, f"/v1/webhook-endpoints/{endpoint}/test", {})
    test = await stack.receiver.next("webhook.test")
    async with stack.client() as tessera:
        customer = await tessera.create_customer("hooked@example.com")
    created = await stack.receiver.next("customer.created")
    verifier = WebhookVerifier(secret)
    event = verifier.verify(test.body, test.headers)
    assert event.type == "webhook.test" and event.api_version == "v1"
    assert event.id == test.headers["webhook-id"] and event.test()["endpoint"] == endpoint
    customer_event = verifier.verify(created.body, created.headers)
    assert customer_event.customer()["id"] == str(customer.id)
    assert customer_event.customer()["email"] == "hooked@example.com"
    with pytest.raises(TypeError):
        customer_event.order()  # not an order event


def tampered(delivery: Delivery) -> list[tuple[str, bytes, dict[str, str], float | None]]:
    now = int(delivery.headers["webhook-timestamp"])
    body = delivery.body
    h = delivery.headers
    return [
        ("body", body.replace(b"webhook.test", b"webhook.tesT"), h, None),
        ("id", body, {**h, "webhook-id": "evt_" + "0" * 32}, None),
        ("timestamp", body, {**h, "webhook-timestamp": str(now + 1)}, None),
        ("old", body, h, now + 301.0),
        ("future", body, h, now - 301.0),
        ("no-signature", body, {k: v for k, v in h.items() if k != "webhook-signature"}, None),
        ("other-version", body, {**h, "webhook-signature": h["webhook-signature"].replace(
            "v1,", "v2,")}, None),
        ("superscript-timestamp", body, {**h, "webhook-timestamp": "²"}, None),
        ("huge-timestamp", body, {**h, "webhook-timestamp": "9" * 5000}, None),
    ]  # fmt: skip


async def test_a_tampered_stale_or_foreign_delivery_is_refused(stack: Stack) -> None:
    endpoint, secret = await an_endpoint(stack)
    await seller_call(stack, f"/v1/webhook-endpoints/{endpoint}/test", {})
    delivery = await stack.receiver.next("webhook.test")
    verifier = WebhookVerifier(secret)
    verifier.verify(delivery.body, delivery.headers)  # the control
    refused = []
    for name, body, headers, now in tampered(delivery):
        try:
            verifier.verify(body, headers, now=now)
        except InvalidWebhook:
            refused.append(name)
    foreign = "whsec_" + "QUJD" * 8
    with pytest.raises(InvalidWebhook):
        WebhookVerifier(foreign).verify(delivery.body, delivery.headers)
    assert refused == [name for name, *_ in tampered(delivery)]


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_QUJD"])
def test_an_empty_or_short_secret_is_refused_not_trusted(secret: str) -> None:
    """An unset secret would make every signature made over an empty key verify."""
    with pytest.raises(ValueError, match="at least 16 bytes"):
        WebhookVerifier(secret)


async def test_during_a_rotation_either_secret_verifies(stack: Stack) -> None:
    endpoint, old = await an_endpoint(stack)
    rotated = await seller_call(
        stack, f"/v1/webhook-endpoints/{endpoint}/rotate-secret", {"overlap_seconds": 600}
    )
    new = rotated["secret"]
    await seller_call(stack, f"/v1/webhook-endpoints/{endpoint}/test", {})
    delivery = await stack.receiver.next("webhook.test")
    assert len(delivery.headers["webhook-signature"].split()) == 2
    for secrets in ([old], [new], ["whsec_" + "QUJD" * 8, new]):
        assert WebhookVerifier(secrets).verify(delivery.body, delivery.headers).type == (
            "webhook.test"
        )
    assert time.time() - int(delivery.headers["webhook-timestamp"]) < 60


async def test_a_checkout_without_a_stripe_connection_is_a_typed_conflict(stack: Stack) -> None:
    async with stack.client() as tessera:
        with pytest.raises(Conflict) as refused:
            await tessera.start_subscription_checkout("pro", email="buyer@example.com")
    assert refused.value.status == 409 and refused.value.code == "not-connected"
