"""`AsyncTessera` (httpx.AsyncClient) and `Tessera` (httpx.Client): the same calls, the
same answers; each call is an `_ops.Op` both only send.

Retries: an op marked safe to repeat (`Op.retry`) is sent again after a network error or
a 5xx, up to `max_retries` times with exponential backoff and jitter; a usage record keeps
its idempotency key across the retries, so it counts once whatever happened to the first
answer. A 4xx is never retried (a 429 is raised with its Retry-After: the caller decides).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from uuid import UUID

import httpx

from tessera_client import _ops
from tessera_client._ops import Op, Service
from tessera_client.errors import problem_error
from tessera_client.models import (
    Checkout,
    Customer,
    CustomerPage,
    CustomerUsage,
    UsageCheck,
    UsageRecord,
    UsageRevert,
)
from tessera_client.tokens import CustomerToken, JwksCache, kid_of, verify

T = TypeVar("T")
USER_AGENT = "tessera-client-python/0.1.0"
# ./dev up's ports (devtools/src/tessera/devstack/stack.py).
DEV_URLS: dict[Service, str] = {
    "auth": "http://127.0.0.1:8083",
    "billing": "http://127.0.0.1:8082",
    "licensing": "http://127.0.0.1:8084",
    "webhooks": "http://127.0.0.1:8085",
}


@dataclass(frozen=True)
class Config:
    secret_key: str
    seller: str
    mode: Literal["test", "live"]
    urls: dict[Service, str]
    issuer: str
    audience: str
    max_retries: int
    backoff: float

    @classmethod
    def make(
        cls,
        secret_key: str,
        seller: str,
        urls: dict[Service, str | None],
        *,
        issuer: str,
        audience: str,
        max_retries: int,
        backoff: float,
    ) -> Config:
        if secret_key.startswith("sk_test_"):
            mode: Literal["test", "live"] = "test"
        elif secret_key.startswith("sk_live_"):
            mode = "live"
        else:
            # A publishable key here would be refused by every route; say so at once.
            raise ValueError("Tessera needs a secret key (sk_test_… or sk_live_…)")
        if not seller:
            raise ValueError("seller: the seller's slug, which its customers' tokens name")
        chosen = {s: (urls.get(s) or DEV_URLS[s]).rstrip("/") for s in DEV_URLS}
        return cls(secret_key, seller, mode, chosen, issuer, audience, max_retries, backoff)

    def url(self, op: Op[Any]) -> str:
        return self.urls[op.service] + op.path

    def delay(self, attempt: int) -> float:
        # Full jitter: many servers retrying after one outage do not return in step.
        return random.uniform(0, self.backoff * 2**attempt)  # noqa: S311

    def jwks_url(self) -> str:
        return self.urls["auth"] + "/.well-known/jwks.json"


def _retryable(op: Op[Any], attempt: int, config: Config, response: httpx.Response | None) -> bool:
    if not op.retry or attempt >= config.max_retries:
        return False
    return response is None or response.status_code >= 500


def _headers(config: Config) -> dict[str, str]:
    return {"authorization": f"Bearer {config.secret_key}", "user-agent": USER_AGENT}


class AsyncTessera:
    """Tessera's server API with a secret key, for asyncio code (FastAPI, …).

    `seller` is the seller's slug: `verify_token` accepts only its customers' tokens, in
    the key's mode. Use it as `async with AsyncTessera(...) as tessera:` or call `aclose()`.
    """

    def __init__(
        self,
        secret_key: str,
        *,
        seller: str,
        auth_url: str | None = None,
        billing_url: str | None = None,
        licensing_url: str | None = None,
        webhooks_url: str | None = None,
        issuer: str = "tessera-auth",
        audience: str = "tessera",
        max_retries: int = 3,
        backoff: float = 0.2,
        timeout: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = Config.make(
            secret_key, seller,
            {"auth": auth_url, "billing": billing_url, "licensing": licensing_url,
             "webhooks": webhooks_url},
            issuer=issuer, audience=audience, max_retries=max_retries, backoff=backoff,
        )  # fmt: skip
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(timeout=timeout)
        self.jwks = JwksCache()
        self._jwks_lock = asyncio.Lock()

    async def __aenter__(self) -> AsyncTessera:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def _send(self, op: Op[T]) -> T:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self.http.request(
                    op.method, self.config.url(op), json=op.json, params=op.params or None,
                    headers=_headers(self.config),
                )  # fmt: skip
            except httpx.TransportError:
                if not _retryable(op, attempt, self.config, None):
                    raise
            if response is not None and not _retryable(op, attempt, self.config, response):
                if response.is_success:
                    return op.parse(response)
                raise problem_error(response)
            await asyncio.sleep(self.config.delay(attempt))
            attempt += 1

    # Tokens ---------------------------------------------------------------------------

    async def verify_token(self, token: str) -> CustomerToken:
        """The claims of a customer's access token, verified locally; `InvalidToken` for
        any defect. Calls auth only to fetch its JWKS (at start, on a new kid, every 5 min)."""
        kid = kid_of(token)
        if self.jwks.needs_fetch(kid):
            async with self._jwks_lock:
                if self.jwks.needs_fetch(kid):  # another task may have fetched meanwhile
                    try:
                        answer = await self.http.get(self.config.jwks_url())
                        answer.raise_for_status()
                        self.jwks.load(answer.json())
                    except (httpx.HTTPError, ValueError):
                        self.jwks.failed()
        return verify(
            token, self.jwks.keys.get(kid), issuer=self.config.issuer,
            audience=self.config.audience, seller=self.config.seller, mode=self.config.mode,
        )  # fmt: skip

    # Usage ----------------------------------------------------------------------------

    async def record_usage(
        self, customer: UUID | str, feature: str, amount: int = 1, *,
        idempotency_key: str | None = None,
    ) -> UsageRecord:  # fmt: skip
        """Count `amount` of `feature` for the customer, once per `idempotency_key` (one
        is made when none is given, and kept across this call's retries)."""
        return await self._send(_ops.record_usage(customer, feature, amount, idempotency_key))

    async def check_usage(self, customer: UUID | str, feature: str, amount: int = 1) -> UsageCheck:
        """Whether `amount` would fit now; counts nothing."""
        return await self._send(_ops.check_usage(customer, feature, amount))

    async def get_usage(self, customer: UUID | str) -> CustomerUsage:
        return await self._send(_ops.customer_usage(customer))

    async def revert_usage(
        self, record_id: UUID | str | None = None, *, idempotency_key: str | None = None
    ) -> UsageRevert:
        return await self._send(_ops.revert_usage(record_id, idempotency_key))

    async def set_usage_plan(
        self, customer: UUID | str, tier: str, grants: dict[str, Any]
    ) -> dict[str, Any]:
        """Give a customer a tier of the seller's own (a free tier): `grants` as a tier's,
        `{"quotas": {"api_calls": {"limit": 500}}, "rate_per_minute": 60}`."""
        return await self._send(_ops.set_usage_plan(customer, tier, grants))

    async def remove_usage_plan(self, customer: UUID | str) -> None:
        await self._send(_ops.remove_usage_plan(customer))

    # Customers ------------------------------------------------------------------------

    async def create_customer(
        self, email: str, *, name: str | None = None, metadata: dict[str, str] | None = None
    ) -> Customer:
        return await self._send(_ops.create_customer(email, name, metadata))

    async def get_customer(self, customer: UUID | str) -> Customer:
        return await self._send(_ops.get_customer(customer))

    async def list_customers(
        self, *, limit: int | None = None, starting_after: UUID | str | None = None,
        email: str | None = None,
    ) -> CustomerPage:  # fmt: skip
        return await self._send(_ops.list_customers(limit, starting_after, email))

    # Billing --------------------------------------------------------------------------

    async def start_subscription_checkout(
        self, tier: str, *, interval: Literal["month", "year"] = "month",
        email: str | None = None, success_url: str | None = None, cancel_url: str | None = None,
    ) -> Checkout:  # fmt: skip
        """A Stripe Checkout for `tier`; send the buyer to `.url`."""
        return await self._send(
            _ops.subscription_checkout(tier, interval, email, success_url, cancel_url)
        )


class Tessera:
    """The same API as `AsyncTessera`, blocking (Flask, Django, scripts). Thread-safe."""

    def __init__(
        self,
        secret_key: str,
        *,
        seller: str,
        auth_url: str | None = None,
        billing_url: str | None = None,
        licensing_url: str | None = None,
        webhooks_url: str | None = None,
        issuer: str = "tessera-auth",
        audience: str = "tessera",
        max_retries: int = 3,
        backoff: float = 0.2,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.config = Config.make(
            secret_key, seller,
            {"auth": auth_url, "billing": billing_url, "licensing": licensing_url,
             "webhooks": webhooks_url},
            issuer=issuer, audience=audience, max_retries=max_retries, backoff=backoff,
        )  # fmt: skip
        self._owns_http = http is None
        self.http = http or httpx.Client(timeout=timeout)
        self.jwks = JwksCache()
        self._jwks_lock = threading.Lock()

    def __enter__(self) -> Tessera:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def _send(self, op: Op[T]) -> T:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = self.http.request(
                    op.method, self.config.url(op), json=op.json, params=op.params or None,
                    headers=_headers(self.config),
                )  # fmt: skip
            except httpx.TransportError:
                if not _retryable(op, attempt, self.config, None):
                    raise
            if response is not None and not _retryable(op, attempt, self.config, response):
                if response.is_success:
                    return op.parse(response)
                raise problem_error(response)
            time.sleep(self.config.delay(attempt))
            attempt += 1

    def verify_token(self, token: str) -> CustomerToken:
        kid = kid_of(token)
        if self.jwks.needs_fetch(kid):
            with self._jwks_lock:
                if self.jwks.needs_fetch(kid):
                    try:
                        answer = self.http.get(self.config.jwks_url())
                        answer.raise_for_status()
                        self.jwks.load(answer.json())
                    except (httpx.HTTPError, ValueError):
                        self.jwks.failed()
        return verify(
            token, self.jwks.keys.get(kid), issuer=self.config.issuer,
            audience=self.config.audience, seller=self.config.seller, mode=self.config.mode,
        )  # fmt: skip

    def record_usage(
        self, customer: UUID | str, feature: str, amount: int = 1, *,
        idempotency_key: str | None = None,
    ) -> UsageRecord:  # fmt: skip
        return self._send(_ops.record_usage(customer, feature, amount, idempotency_key))

    def check_usage(self, customer: UUID | str, feature: str, amount: int = 1) -> UsageCheck:
        return self._send(_ops.check_usage(customer, feature, amount))

    def get_usage(self, customer: UUID | str) -> CustomerUsage:
        return self._send(_ops.customer_usage(customer))

    def revert_usage(
        self, record_id: UUID | str | None = None, *, idempotency_key: str | None = None
    ) -> UsageRevert:
        return self._send(_ops.revert_usage(record_id, idempotency_key))

    def set_usage_plan(
        self, customer: UUID | str, tier: str, grants: dict[str, Any]
    ) -> dict[str, Any]:
        return self._send(_ops.set_usage_plan(customer, tier, grants))

    def remove_usage_plan(self, customer: UUID | str) -> None:
        self._send(_ops.remove_usage_plan(customer))

    def create_customer(
        self, email: str, *, name: str | None = None, metadata: dict[str, str] | None = None
    ) -> Customer:
        return self._send(_ops.create_customer(email, name, metadata))

    def get_customer(self, customer: UUID | str) -> Customer:
        return self._send(_ops.get_customer(customer))

    def list_customers(
        self, *, limit: int | None = None, starting_after: UUID | str | None = None,
        email: str | None = None,
    ) -> CustomerPage:  # fmt: skip
        return self._send(_ops.list_customers(limit, starting_after, email))

    def start_subscription_checkout(
        self, tier: str, *, interval: Literal["month", "year"] = "month",
        email: str | None = None, success_url: str | None = None, cancel_url: str | None = None,
    ) -> Checkout:  # fmt: skip
        return self._send(
            _ops.subscription_checkout(tier, interval, email, success_url, cancel_url)
        )
