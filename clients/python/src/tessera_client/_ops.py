"""Each call as data (sans-IO): the request to send and how to read its answer. The sync
and async clients only send; so the two can never disagree on a path, a body or a parse."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

import httpx

from tessera_client.models import (
    Checkout,
    Customer,
    CustomerPage,
    CustomerUsage,
    UsageCheck,
    UsageRecord,
    UsageRevert,
)
from tessera_client.ratelimit import RateLimit

T = TypeVar("T")
Service = Literal["auth", "billing", "licensing", "webhooks"]


@dataclass(frozen=True)
class Op(Generic[T]):
    service: Service
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # Safe to send again after a network error or a 5xx: the server counts it once (an
    # idempotency key, a read, a create idempotent by address, a revert).
    retry: bool = False


def new_idempotency_key() -> str:
    # 128 random bits, URL-safe: well inside the 1-255 visible ASCII the usage API takes.
    return "tc_" + secrets.token_urlsafe(16)


def _body(response: httpx.Response) -> Any:
    return response.json()


def _rate(response: httpx.Response) -> RateLimit:
    return RateLimit.from_headers(response.headers)


def record_usage(
    customer: UUID | str, feature: str, amount: int, idempotency_key: str | None
) -> Op[UsageRecord]:
    key = idempotency_key or new_idempotency_key()
    return Op(
        "licensing", "POST", "/v1/usage",
        lambda r: UsageRecord.parse(_body(r), _rate(r), key),
        json={"customer": str(customer), "feature": feature, "amount": amount,
              "idempotency_key": key},
        retry=True,
    )  # fmt: skip


def check_usage(customer: UUID | str, feature: str, amount: int) -> Op[UsageCheck]:
    return Op(
        "licensing", "POST", "/v1/usage/check",
        lambda r: UsageCheck.parse(_body(r), _rate(r)),
        json={"customer": str(customer), "feature": feature, "amount": amount},
        retry=True,
    )  # fmt: skip


def customer_usage(customer: UUID | str) -> Op[CustomerUsage]:
    return Op(
        "licensing", "GET", f"/v1/customers/{_id(customer)}/usage",
        lambda r: CustomerUsage.parse(_body(r), _rate(r)), retry=True,
    )  # fmt: skip


def revert_usage(
    record_id: UUID | str | None = None, idempotency_key: str | None = None
) -> Op[UsageRevert]:
    if (record_id is None) == (idempotency_key is None):
        raise ValueError("revert by record_id or by idempotency_key (one of them)")
    if record_id is not None:
        return Op(
            "licensing", "POST", f"/v1/usage/{_id(record_id)}/revert",
            lambda r: UsageRevert.parse(_body(r)), retry=True,
        )  # fmt: skip
    return Op(
        "licensing", "POST", "/v1/usage/revert", lambda r: UsageRevert.parse(_body(r)),
        json={"idempotency_key": idempotency_key}, retry=True,
    )  # fmt: skip


def set_usage_plan(customer: UUID | str, tier: str, grants: dict[str, Any]) -> Op[dict[str, Any]]:
    return Op(
        "licensing", "PUT", f"/v1/customers/{_id(customer)}/usage-plan", _body,
        json={"tier": tier, "grants": grants}, retry=True,
    )  # fmt: skip


def remove_usage_plan(customer: UUID | str) -> Op[None]:
    return Op(
        "licensing", "DELETE", f"/v1/customers/{_id(customer)}/usage-plan", lambda r: None,
        retry=True,
    )  # fmt: skip


def create_customer(email: str, name: str | None, metadata: dict[str, str] | None) -> Op[Customer]:
    body: dict[str, Any] = {"email": email}
    if name is not None:
        body["name"] = name
    if metadata is not None:
        body["metadata"] = metadata
    # The same address again answers the existing customer: a retry cannot make two.
    return Op(
        "auth", "POST", "/v1/customers", lambda r: Customer.parse(_body(r)), json=body, retry=True
    )


def get_customer(customer: UUID | str) -> Op[Customer]:
    return Op(
        "auth", "GET", f"/v1/customers/{_id(customer)}",
        lambda r: Customer.parse(_body(r)), retry=True,
    )  # fmt: skip


def list_customers(
    limit: int | None, starting_after: UUID | str | None, email: str | None
) -> Op[CustomerPage]:
    params: dict[str, Any] = {}
    if limit is not None:
        params["limit"] = limit
    if starting_after is not None:
        params["starting_after"] = str(starting_after)
    if email is not None:
        params["email"] = email
    return Op(
        "auth", "GET", "/v1/customers", lambda r: CustomerPage.parse(_body(r)),
        params=params, retry=True,
    )  # fmt: skip


def subscription_checkout(
    tier: str,
    interval: Literal["month", "year"],
    email: str | None,
    success_url: str | None,
    cancel_url: str | None,
) -> Op[Checkout]:
    body: dict[str, Any] = {"tier": tier, "interval": interval}
    for name, value in (("email", email), ("success_url", success_url), ("cancel_url", cancel_url)):
        if value is not None:
            body[name] = value
    # Not retried: a second session would be harmless but is a second Stripe call.
    return Op("billing", "POST", "/v1/checkout/subscriptions", lambda r: Checkout.parse(_body(r)),
              json=body)  # fmt: skip


def _id(value: UUID | str) -> str:
    # A path segment: a customer or record id is a UUID; refuse anything that could
    # change the path rather than send it.
    return str(UUID(str(value)))
