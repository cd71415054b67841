"""A member's seller-session token (the dashboard's, docs/sellers.md "Dashboard sessions")
at licensing's seller API: it resolves the same tenant the seller's secret key would, and
only that one; each change is audited with the member who made it. A member of A is
refused on B's licenses, test and live stay apart, live needs the plan, and a customer
token, an expired or a forged session are refused. The tokens are signed by the harness's
stand-in for auth (the same key the app verifies customer tokens with)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from licensing_factories import Harness, TokenMint  # type: ignore[import-not-found]
from test_seller_api import (  # type: ignore[import-not-found]
    A_LIVE,
    A_TEST,
    B_LIVE,
    SELLER_A,
    SELLER_B,
    Keys,
    catalog,
    customer,
    grant_body,
    keys_for,
)

from tessera.shared.events.auth import SellerChanged
from tessera.shared.events.topology import SELLERS
from tessera.shared.sellers import Tenant

pytestmark = pytest.mark.integration

SELLER_C = UUID("00000000-0000-4000-8000-0000000000c3")  # in the directory, no plan


@pytest.fixture
async def keys(harness: Harness) -> AsyncIterator[Keys]:
    async with keys_for(harness) as made:
        yield made


SLUGS = {SELLER_A: "seller-a", SELLER_B: "seller-b", SELLER_C: "seller-c"}


def slug(seller: UUID) -> str:
    return SLUGS[seller]


@pytest.fixture
async def directory(harness: Harness, keys: Keys) -> None:
    """Each seller's directory record under a slug of its own (the keys fixture's records
    name A and B alike), as auth would publish it: A and B paid, C without a plan."""
    book = harness.app.state.context.sellers
    for seller, name in SLUGS.items():
        record = SellerChanged(
            seller_id=seller, mode="live", slug=name, name=name, signup_policy="closed",
            status="active", version=2, plan_status="none" if seller == SELLER_C else "active",
        )  # fmt: skip
        await harness.js.publish(
            harness.ns.subject(record.publish_subject()),
            record.to_json(),
            stream=harness.ns.stream(SELLERS),
        )
    await harness.until(lambda: _named(book))


async def _named(book: Any) -> bool:
    return all(book.by_slug(name) is not None for name in SLUGS.values())


def session(h: Harness, tenant: Tenant, member: UUID, role: str = "owner", **over: Any) -> str:
    claims = {
        "role": "seller_member",
        "aud": "tessera-seller",
        "sub": str(member),
        "mrl": role,
        "sel": slug(tenant.seller_id),
        "mod": tenant.mode,
        **over,
    }
    token: str = h.mint.token(uuid.uuid4(), **claims)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_a_member_s_session_is_its_seller_s_tenant_and_audited_by_member(
    harness: Harness, keys: Keys, directory: None
) -> None:
    for tenant in (A_LIVE, A_TEST, B_LIVE):
        await catalog(harness, tenant)
    buyer = await customer(harness, A_LIVE, "buyer@a.example")
    member = uuid.uuid4()
    a_live = bearer(session(harness, A_LIVE, member))

    granted = await harness.http.post("/v1/licenses", json=grant_body(buyer), headers=a_live)
    assert granted.status_code == 201, granted.text
    license_id = granted.json()[0]["id"]
    # What the session made is what A's secret key sees.
    by_key = await harness.http.get(f"/v1/licenses/{license_id}", headers=keys.bearer(A_LIVE))
    assert by_key.status_code == 200

    # B's member, and A's member in test mode, find nothing of A's live tenant.
    for other in (
        session(harness, B_LIVE, uuid.uuid4()),
        session(harness, A_TEST, member),
    ):
        assert (
            await harness.http.get(f"/v1/licenses/{license_id}", headers=bearer(other))
        ).status_code == 404
        assert (
            await harness.http.post(
                f"/v1/licenses/{license_id}/revoke", json={"reason": "x"}, headers=bearer(other)
            )
        ).status_code == 404
        assert (
            await harness.http.post("/v1/licenses", json=grant_body(buyer), headers=bearer(other))
        ).status_code == 404

    # A developer acts too (owner-only is spending the seller's money, at billing).
    developer = uuid.uuid4()
    revoked = await harness.http.post(
        f"/v1/licenses/{license_id}/revoke",
        json={"reason": "abuse"},
        headers=bearer(session(harness, A_LIVE, developer, "developer")),
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    audit = await harness.fetch(
        "SELECT actor_id, actor_role, action FROM audit_log WHERE license_id = $1 ORDER BY id",
        UUID(license_id),
    )
    assert [tuple(r) for r in audit] == [
        (member, "seller_owner", "license.granted"),
        (developer, "seller_developer", "license.revoked"),
    ]


async def test_sessions_are_refused_when_they_are_not_a_live_member_s(
    harness: Harness, keys: Keys, directory: None
) -> None:
    await catalog(harness, A_LIVE)
    buyer = await customer(harness, A_LIVE)
    url = f"/v1/customers/{buyer}/licenses"
    member = uuid.uuid4()
    assert (
        await harness.http.get(url, headers=bearer(session(harness, A_LIVE, member)))
    ).status_code == 200
    now = int(time.time())
    for over in (
        {"iat": now - 600, "exp": now - 120},  # expired past the leeway
        {"aud": "tessera"},  # a customer token's audience
        {"role": "customer"},
        {"mrl": "admin"},
        {"mod": "prod"},
    ):
        token = session(harness, A_LIVE, member, **over)
        assert (await harness.http.get(url, headers=bearer(token))).status_code == 401, over
    # A customer's own access token of seller A is not a seller credential.
    customer_token = harness.mint.token(buyer, sel=slug(SELLER_A), mod="live")
    assert (await harness.http.get(url, headers=bearer(customer_token))).status_code == 401
    # Signed by another key than auth's (under auth's key id): refused.
    stranger = TokenMint(kid="test-auth-key")
    forged = stranger.token(
        uuid.uuid4(), role="seller_member", aud="tessera-seller", sub=str(member), mrl="owner",
        sel=slug(SELLER_A), mod="live",
    )  # fmt: skip
    assert (await harness.http.get(url, headers=bearer(forged))).status_code == 401


async def test_live_sessions_need_the_plan_and_test_sessions_do_not(
    harness: Harness, keys: Keys, directory: None
) -> None:
    c_test, c_live = Tenant(SELLER_C, "test"), Tenant(SELLER_C, "live")
    await catalog(harness, c_test)
    buyer = await customer(harness, c_test)
    member = uuid.uuid4()
    test_answer = await harness.http.get(
        f"/v1/customers/{buyer}/licenses", headers=bearer(session(harness, c_test, member))
    )
    assert test_answer.status_code == 200
    live_answer = await harness.http.get(
        f"/v1/customers/{buyer}/licenses", headers=bearer(session(harness, c_live, member))
    )
    assert live_answer.status_code == 402
    assert live_answer.json()["type"].endswith("platform-plan-inactive")
