"""The seller's licensing API with secret keys: a key's seller grants (idempotently), reads,
lists and changes its own customers' licenses, in its key's mode; another seller's ids, a
test key against live rows, a publishable key and no key are all refused with nothing
changed. Keys are real records on the APIKEYS stream, which the app's own KeyBook follows."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from licensing_factories import Harness  # type: ignore[import-not-found]

from tessera.devstack.seller_keys import publish_seller_keys
from tessera.shared.api_keys.format import Kind
from tessera.shared.events.billing import AccountCreated
from tessera.shared.sellers import Tenant

pytestmark = pytest.mark.integration

SELLER_A = UUID("00000000-0000-4000-8000-0000000000a1")
SELLER_B = UUID("00000000-0000-4000-8000-0000000000b2")
A_LIVE, A_TEST, B_LIVE = (
    Tenant(SELLER_A, "live"),
    Tenant(SELLER_A, "test"),
    Tenant(SELLER_B, "live"),
)
SELLER_TABLES = ("customers", "licenses", "activations", "audit_log", "seller_grants")


@dataclass
class Keys:
    """Plaintext keys per (tenant, kind), each published as a record the app's book follows."""

    by: dict[tuple[Tenant, Kind], str]

    def bearer(self, tenant: Tenant, kind: Kind = "secret") -> dict[str, str]:
        return {"authorization": f"Bearer {self.by[(tenant, kind)]}"}


@pytest.fixture
async def keys(harness: Harness) -> AsyncIterator[Keys]:
    async with keys_for(harness) as k:
        yield k


@asynccontextmanager
async def keys_for(harness: Harness) -> AsyncIterator[Keys]:
    context = harness.app.state.context
    wanted: list[tuple[Tenant, Kind]] = [
        (tenant, kind) for tenant in (A_LIVE, A_TEST, B_LIVE) for kind in ("secret", "publishable")
    ]
    texts = await publish_seller_keys(
        harness.js, harness.ns, context.key_book, context.sellers, wanted
    )
    yield Keys(texts)


async def catalog(h: Harness, tenant: Tenant) -> None:
    await h.fetch(
        "INSERT INTO products (code, name, seller_id, mode) VALUES ('tool', 'Tool', $1, $2)"
        " ON CONFLICT DO NOTHING",
        tenant.seller_id,
        tenant.mode,
    )
    await h.fetch(
        "INSERT INTO policies (code, product_code, max_machines, lease_seconds, grace_seconds,"
        " seller_id, mode) VALUES ('tool-year', 'tool', 2, 3600, 60, $1, $2)"
        " ON CONFLICT DO NOTHING",
        tenant.seller_id,
        tenant.mode,
    )


async def customer(h: Harness, tenant: Tenant, email: str = "c@example.com") -> UUID:
    account = uuid.uuid4()
    await h.publish(
        AccountCreated(
            account_id=account, email=email, seller_id=tenant.seller_id, mode=tenant.mode
        )
    )
    await h.until(lambda: h.fetchval("SELECT 1 FROM customers WHERE account_id = $1", account))
    return account


def grant_body(customer_id: UUID, **over: Any) -> dict[str, Any]:
    return {"customer_id": str(customer_id), "product": "tool", "policy": "tool-year", **over}


async def snapshot(h: Harness, tenant: Tenant) -> dict[str, str]:
    """A hash of every seller-owned row of `tenant`, table by table."""
    out = {}
    for table in SELLER_TABLES:
        rows = await h.fetch(
            f"SELECT t::text FROM {table} t WHERE seller_id = $1 AND mode = $2 ORDER BY 1",  # noqa: S608
            tenant.seller_id,
            tenant.mode,
        )
        out[table] = hashlib.sha256("\n".join(r[0] for r in rows).encode()).hexdigest()
    return out


async def test_grant_list_read_and_change_status_with_a_secret_key(
    harness: Harness, keys: Keys
) -> None:
    await catalog(harness, A_LIVE)
    buyer = await customer(harness, A_LIVE, "buyer@example.com")
    sk = keys.bearer(A_LIVE)

    granted = await harness.http.post("/v1/licenses", json=grant_body(buyer, seats=2), headers=sk)
    assert granted.status_code == 201, granted.text
    licenses = granted.json()
    assert [(x["email"], x["product"], x["policy"]) for x in licenses] == [
        ("buyer@example.com", "tool", "tool-year")
    ] * 2
    first = licenses[0]["id"]

    listed = await harness.http.get(f"/v1/customers/{buyer}/licenses", headers=sk)
    assert listed.status_code == 200
    assert sorted(x["id"] for x in listed.json()) == sorted(x["id"] for x in licenses)
    assert all(x["activations"] == [] for x in listed.json())

    suspended = await harness.http.post(
        f"/v1/licenses/{first}/suspend", json={"reason": "chargeback"}, headers=sk
    )
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    reinstated = await harness.http.post(
        f"/v1/licenses/{first}/reinstate", json={"reason": "resolved"}, headers=sk
    )
    assert reinstated.json()["status"] == "active"
    revoked = await harness.http.post(
        f"/v1/licenses/{first}/revoke", json={"reason": "abuse"}, headers=sk
    )
    assert revoked.json()["status"] == "revoked"
    again = await harness.http.post(
        f"/v1/licenses/{first}/reinstate", json={"reason": "oops"}, headers=sk
    )
    assert again.status_code == 409
    read = await harness.http.get(f"/v1/licenses/{first}", headers=sk)
    assert read.status_code == 200 and read.json()["status"] == "revoked"

    audit = await harness.fetch(
        "SELECT actor_role, action FROM audit_log WHERE license_id = $1 ORDER BY id", UUID(first)
    )
    assert [tuple(r) for r in audit] == [
        ("seller_key", "license.granted"),
        ("seller_key", "license.suspended"),
        ("seller_key", "license.reinstated"),
        ("seller_key", "license.revoked"),
    ]
    subjects = await harness.fetch(
        "SELECT subject FROM outbox WHERE payload->>'license_id' = $1 ORDER BY id", first
    )
    assert [r[0] for r in subjects][-3:] == [
        "licensing.license.suspended.v1",
        "licensing.license.reinstated.v1",
        "licensing.license.revoked.v1",
    ]


async def test_a_reason_is_required_and_bad_input_is_a_4xx(harness: Harness, keys: Keys) -> None:
    await catalog(harness, A_LIVE)
    buyer = await customer(harness, A_LIVE)
    sk = keys.bearer(A_LIVE)
    granted = (await harness.http.post("/v1/licenses", json=grant_body(buyer), headers=sk)).json()
    for body in ({}, {"reason": "   "}):
        answer = await harness.http.post(
            f"/v1/licenses/{granted[0]['id']}/revoke", json=body, headers=sk
        )
        assert answer.status_code == 422
        assert answer.headers["content-type"].startswith("application/problem+json")
    for body, status in (
        (grant_body(buyer, policy="nope"), 422),
        (grant_body(buyer, product="other"), 422),
        (grant_body(uuid.uuid4()), 404),
        (grant_body(buyer, seats=0), 422),
        ({"customer_id": "x"}, 422),
    ):
        answer = await harness.http.post("/v1/licenses", json=body, headers=sk)
        assert answer.status_code == status, (body, answer.text)
    count = await harness.fetchval("SELECT count(*) FROM licenses WHERE account_id = $1", buyer)
    assert count == 1


async def test_an_idempotency_key_grants_once_even_concurrently(
    harness: Harness, keys: Keys
) -> None:
    await catalog(harness, A_LIVE)
    buyer = await customer(harness, A_LIVE)
    headers = {**keys.bearer(A_LIVE), "idempotency-key": "order-42"}
    answers = await asyncio.gather(
        *(
            harness.http.post("/v1/licenses", json=grant_body(buyer), headers=headers)
            for _ in range(6)
        )
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()[0]["id"] for a in answers}) == 1
    assert await harness.fetchval("SELECT count(*) FROM licenses WHERE account_id = $1", buyer) == 1

    other = await harness.http.post(
        "/v1/licenses", json=grant_body(buyer, seats=2), headers=headers
    )
    assert other.status_code == 422
    assert other.json()["type"].endswith("idempotency-key-reused")
    # The same key text is the other mode's own: a test key does not see live grants.
    await catalog(harness, A_TEST)
    test_buyer = await customer(harness, A_TEST)
    test_headers = {**keys.bearer(A_TEST), "idempotency-key": "order-42"}
    fresh = await harness.http.post(
        "/v1/licenses", json=grant_body(test_buyer), headers=test_headers
    )
    assert fresh.status_code == 201
    assert fresh.json()[0]["id"] != answers[0].json()[0]["id"]


async def test_another_sellers_keys_and_test_keys_see_nothing_and_change_nothing(
    harness: Harness, keys: Keys
) -> None:
    await catalog(harness, B_LIVE)
    await catalog(harness, A_LIVE)
    await catalog(harness, A_TEST)
    b_customer = await customer(harness, B_LIVE)
    b_license = (
        await harness.http.post(
            "/v1/licenses", json=grant_body(b_customer), headers=keys.bearer(B_LIVE)
        )
    ).json()[0]["id"]
    a_customer = await customer(harness, A_LIVE)
    a_license = (
        await harness.http.post(
            "/v1/licenses", json=grant_body(a_customer), headers=keys.bearer(A_LIVE)
        )
    ).json()[0]["id"]
    before = {t: await snapshot(harness, t) for t in (A_LIVE, B_LIVE)}

    for intruder, customer_id, license_id in (
        (A_LIVE, b_customer, b_license),  # seller A against B's rows
        (A_TEST, a_customer, a_license),  # A's test key against A's live rows
    ):
        sk = keys.bearer(intruder)
        calls = [
            harness.http.get(f"/v1/licenses/{license_id}", headers=sk),
            harness.http.get(f"/v1/customers/{customer_id}/licenses", headers=sk),
            harness.http.post("/v1/licenses", json=grant_body(customer_id), headers=sk),
        ] + [
            harness.http.post(f"/v1/licenses/{license_id}/{verb}", json={"reason": "x"}, headers=sk)
            for verb in ("suspend", "reinstate", "revoke")
        ]
        for answer in await asyncio.gather(*calls):
            assert answer.status_code == 404, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")

    assert {t: await snapshot(harness, t) for t in (A_LIVE, B_LIVE)} == before


async def test_publishable_keys_are_forbidden_and_no_key_is_401(
    harness: Harness, keys: Keys
) -> None:
    some = uuid.uuid4()
    for headers, status in (
        (keys.bearer(A_LIVE, "publishable"), 403),
        ({}, 401),
        ({"authorization": "Bearer sk_live_notakey"}, 401),
    ):
        for answer in await asyncio.gather(
            harness.http.get(f"/v1/licenses/{some}", headers=headers),
            harness.http.get(f"/v1/customers/{some}/licenses", headers=headers),
            harness.http.post("/v1/licenses", json=grant_body(some), headers=headers),
            harness.http.post(f"/v1/licenses/{some}/revoke", json={"reason": "x"}, headers=headers),
        ):
            assert answer.status_code == status, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")


async def test_each_key_has_its_own_rate_budget(start_licensing: Any) -> None:
    async with start_licensing(rate_per_seller_key=3) as h, keys_for(h) as k:
        some = uuid.uuid4()

        async def read(tenant: Tenant) -> int:
            answer = await h.http.get(f"/v1/customers/{some}/licenses", headers=k.bearer(tenant))
            return int(answer.status_code)

        assert [await read(A_LIVE) for _ in range(4)] == [404, 404, 404, 429]
        # Another key (another seller's, or the same seller's test key) has its own budget.
        assert await read(B_LIVE) == 404
        assert await read(A_TEST) == 404
