"""Builders for licensing tests: billing events, tokens, and a harness around the app."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from nats.js import JetStreamContext

from tessera.shared.events.billing import (
    OrderDisputeClosed,
    OrderDisputed,
    OrderPaid,
    OrderRefunded,
)
from tessera.shared.events.envelope import Event
from tessera.shared.events.topology import Namespace, stream_for_subject


def an_order_paid(**overrides: Any) -> OrderPaid:
    values: dict[str, Any] = {
        "order_id": uuid.uuid4(),
        "account_id": uuid.uuid4(),
        "email": "buyer@example.com",
        "sku": "chartgpt-lifetime",
        "quantity": 1,
        "amount_total": 9900,
        "currency": "usd",
        "product": "chartgpt",
        "policy": "chartgpt-lifetime",
        "seats": 1,
    }
    values.update(overrides)
    return OrderPaid(**values)


def a_refund(paid: OrderPaid, full: bool = True) -> OrderRefunded:
    return OrderRefunded(
        order_id=paid.order_id,
        account_id=paid.account_id,
        amount_refunded=paid.amount_total,
        currency=paid.currency,
        full=full,
    )


def a_dispute(paid: OrderPaid, dispute_id: str = "dp_1") -> OrderDisputed:
    return OrderDisputed(order_id=paid.order_id, account_id=paid.account_id, dispute_id=dispute_id)


def a_dispute_closed(paid: OrderPaid, outcome: str, dispute_id: str = "dp_1") -> OrderDisputeClosed:
    return OrderDisputeClosed(
        order_id=paid.order_id,
        account_id=paid.account_id,
        dispute_id=dispute_id,
        outcome=outcome,
    )


@dataclass
class TokenMint:
    """Stands in for auth: signs access tokens with its own Ed25519 key."""

    kid: str = "test-auth-key"
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.private.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "EdDSA"}]}

    def token(self, account_id: UUID, role: str = "customer", **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": "tessera-auth",
            "aud": "tessera",
            "sub": str(uuid.uuid4()),
            "acc": str(account_id),
            "role": role,
            "sid": "s1",
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 300,
        }
        body.update(claims)
        return jwt.encode(body, self.private, algorithm="EdDSA", headers={"kid": self.kid})

    def bearer(self, account_id: UUID, role: str = "customer") -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(account_id, role)}"}


@dataclass
class Harness:
    app: FastAPI
    http: httpx.AsyncClient
    js: JetStreamContext
    ns: Namespace
    database_url: str
    mint: TokenMint

    async def publish(self, event: Event, msg_id: str | None = None) -> None:
        await self.js.publish(
            self.ns.subject(event.subject),
            event.to_json(),
            stream=self.ns.stream(stream_for_subject(event.subject)),
            headers={"Nats-Msg-Id": msg_id or str(event.event_id)},
        )

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def fetchval(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return rows[0][0] if rows else None

    async def until(self, predicate: Any, timeout: float = 20.0) -> Any:
        """Poll an async predicate until truthy; fail after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = await predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s: {value!r}")
            await asyncio.sleep(0.05)

    async def issued(self, order_id: UUID, count: int = 1) -> list[str]:
        """Wait until the order has `count` licenses; their keys."""

        async def ready() -> bool:
            n = await self.fetchval("SELECT count(*) FROM licenses WHERE order_id = $1", order_id)
            return bool(n == count)

        await self.until(ready)
        return await self.license_keys(order_id)

    async def license_keys(self, order_id: UUID) -> list[str]:
        """The keys issued for an order, as their owner sees them."""
        from tessera.licensing.licenses.service import reveal_key

        rows = await self.fetch(
            "SELECT key_sealed FROM licenses WHERE order_id = $1 ORDER BY seat", order_id
        )
        sealer = self.app.state.context.sealer
        return [reveal_key(sealer, r) for r in rows]

    async def outbox_subjects(self) -> list[str]:
        rows = await self.fetch("SELECT subject FROM outbox ORDER BY created_at, id")
        return [r["subject"] for r in rows]

    async def statuses(self, order_id: UUID) -> list[str]:
        rows = await self.fetch(
            "SELECT status FROM licenses WHERE order_id = $1 ORDER BY seat", order_id
        )
        return [r["status"] for r in rows]
