"""A customer a seller creates at auth (`POST /v1/customers`) is known at once to billing's
and licensing's seller routes, by the id auth answered: auth, billing and licensing each on
its own database, real Postgres, Redis and NATS; the customer travels only as auth's
`auth.user.created.v1` (outbox, relay, the AUTH stream, each consumer's inbox)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from tessera.auth.api_keys import service as api_keys
from tessera.auth.app import create_app as create_auth
from tessera.auth.sellers import service as sellers
from tessera.auth.settings import AuthSettings
from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.devstack.infra import free_port
from tessera.devstack.platform_plan import pay_platform_plans
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.settings import LicensingSettings
from tessera.shared.accounts import account_id_for
from tessera.shared.api_keys import UnknownKey
from tessera.shared.events.envelope import new_event_id
from tessera.shared.sellers import Tenant
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration


def knows(app: FastAPI, key: str, seller_id: UUID) -> bool:
    """The app's key book holds the key and its seller directory the seller."""
    context = app.state.context
    try:
        context.key_book.check(key)
    except UnknownKey:
        return False
    return context.sellers.by_id(seller_id) is not None


async def until(seconds: float, condition: Any) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"not within {seconds} s"
        await asyncio.sleep(0.05)


async def a_catalog(licensing: FastAPI, tenant: Tenant) -> None:
    # No seller route makes products yet: the seller's catalog, as the operator seeds it.
    async with licensing.state.context.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO products (code, name, seller_id, mode) VALUES ('tool', 'Tool', $1, $2)",
            tenant.seller_id, tenant.mode,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO policies (code, product_code, max_machines, lease_seconds,"
            " grace_seconds, seller_id, mode) VALUES ('tool-year', 'tool', 2, 3600, 60, $1, $2)",
            tenant.seller_id, tenant.mode,
        )  # fmt: skip


async def test_a_customer_created_at_auth_is_granted_a_license_and_has_no_orders(
    database_factory: Any, infra_settings: InfraSettings, running: Any, all_streams: None
) -> None:
    apps = {
        # Welcome mails go nowhere (a closed port); none is sent for an API-made customer.
        "auth": create_auth(
            AuthSettings(database_url=await database_factory("auth"), smtp_port=free_port()),
            infra_settings,
        ),
        "billing": create_billing(
            BillingSettings(database_url=await database_factory("billing")), infra_settings
        ),
        "licensing": create_licensing(
            LicensingSettings(database_url=await database_factory("licensing")), infra_settings
        ),
    }
    async with AsyncExitStack() as stack:
        http = {}
        for name, app in apps.items():
            await stack.enter_async_context(running(app))
            transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 5000))
            http[name] = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=f"http://{name}")
            )
        for app in apps.values():
            await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
        auth = apps["auth"].state.context
        async with auth.pool.acquire() as conn, conn.transaction():
            seller = await sellers.create(conn, new_event_id(), "everywhere", "Everywhere")
        tenant = Tenant(seller.id, "test")
        pair = await api_keys.issue_pair(auth, seller.id, "prod", "test", None)
        sk = {"authorization": f"Bearer {pair.secret.key}"}
        for app in apps.values():

            async def ready(app: FastAPI = app) -> bool:
                return knows(app, pair.secret.key, seller.id)

            await until(15, ready)
        await a_catalog(apps["licensing"], tenant)

        created = await http["auth"].post(
            "/v1/customers", json={"email": "Everywhere@Example.com"}, headers=sk
        )
        customer = created.json()["id"]

        answers: list[httpx.Response] = []

        async def granted() -> bool:
            # A seller's retry: until the customer's event has reached licensing, a 404.
            answers.append(
                await http["licensing"].post(
                    "/v1/licenses",
                    json={"customer_id": customer, "product": "tool", "policy": "tool-year"},
                    headers={**sk, "idempotency-key": "first-grant"},
                )
            )
            return answers[-1].status_code != 404

        async def billing_knows() -> bool:
            answer = await http["billing"].get(f"/v1/customers/{customer}/orders", headers=sk)
            return answer.status_code != 404

        await until(15, granted)
        grant = answers[-1]
        await until(15, billing_knows)
        orders = await http["billing"].get(f"/v1/customers/{customer}/orders", headers=sk)
        licenses = await http["licensing"].get(f"/v1/customers/{customer}/licenses", headers=sk)
        # The other mode's key does not see the customer (no such account in live).
        live = await api_keys.issue_pair(auth, seller.id, "prod", "live", None)
        live_sk = {"authorization": f"Bearer {live.secret.key}"}
        books = [app.state.context.sellers for app in apps.values()]
        await pay_platform_plans(
            str(infra_settings.nats_url), infra_settings.namespace, [seller.id], books
        )

        async def live_ready() -> bool:
            return knows(apps["billing"], live.secret.key, seller.id)

        await until(15, live_ready)
        other_mode = await http["billing"].get(f"/v1/customers/{customer}/orders", headers=live_sk)
    assert created.status_code == 201, created.text
    assert customer == str(account_id_for(tenant, "everywhere@example.com"))
    assert grant.status_code == 201, grant.text
    assert orders.status_code == 200 and orders.json() == [], orders.text
    assert [lic["id"] for lic in licenses.json()] == [lic["id"] for lic in grant.json()]
    assert other_mode.status_code == 404
