"""Dashboard sessions (docs/sellers.md): a member of a seller gets a short-lived
seller-session token for one mode, and auth's own seller routes (the customer API) take it
as they take that tenant's secret key. A member of A is A's and only A's; test and live are
two tenants; live needs the plan; a customer, a plain access token, a session token at a
customer route and an expired token are all refused."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from test_seller_settings import join_as_developer  # type: ignore[import-not-found]
from test_sellers import bearer, developer_token, seller_id_of  # type: ignore[import-not-found]

from tessera.auth.secrets import new_token

pytestmark = pytest.mark.integration


async def session_of(h: Any, member: str, slug: str, mode: str) -> str:
    answer = await h.client.post(
        f"/v1/sellers/{slug}/dashboard-token", json={"mode": mode}, headers=bearer(member)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["mode"] == mode and answer.json()["slug"] == slug
    token: str = answer.json()["access_token"]
    return token


async def test_a_member_acts_for_its_own_seller_and_mode_only(harness: Any) -> None:
    async with harness() as h:
        owner_a = await developer_token(h, h.new_email(), "dash-a")
        owner_b = await developer_token(h, h.new_email(), "dash-b")
        a_test = await session_of(h, owner_a, "dash-a", "test")
        made = await h.client.post(
            "/v1/customers", json={"email": "buyer@dash.example"}, headers=bearer(a_test)
        )
        assert made.status_code == 201, made.text
        assert made.json()["mode"] == "test"
        customer = made.json()["id"]
        assert (await h.client.get(f"/v1/customers/{customer}", headers=bearer(a_test))).json()[
            "email"
        ] == "buyer@dash.example"

        # Seller B's member, with B's session: A's customer does not exist for them.
        b_test = await session_of(h, owner_b, "dash-b", "test")
        assert (
            await h.client.get(f"/v1/customers/{customer}", headers=bearer(b_test))
        ).status_code == 404
        # And A's member cannot ask for a session at B at all.
        foreign = await h.client.post(
            "/v1/sellers/dash-b/dashboard-token", json={"mode": "test"}, headers=bearer(owner_a)
        )
        assert foreign.status_code == 404

        # Live only while the plan is in force, as for live keys; then live is its own tenant.
        unpaid = await h.client.post(
            "/v1/sellers/dash-a/dashboard-token", json={"mode": "live"}, headers=bearer(owner_a)
        )
        assert unpaid.status_code == 402, unpaid.text
        assert unpaid.json()["type"].endswith("platform-plan-inactive")
        await h.pay_plan(await seller_id_of(h, "dash-a"))
        a_live = await session_of(h, owner_a, "dash-a", "live")
        assert (
            await h.client.get(f"/v1/customers/{customer}", headers=bearer(a_live))
        ).status_code == 404
        found = await h.client.get(
            "/v1/customers", params={"email": "buyer@dash.example"}, headers=bearer(a_live)
        )
        assert found.status_code == 200 and found.json()["data"] == []

        # A developer (not an owner) gets a session too: developers read everything.
        developer = await join_as_developer(h, owner_a, "dash-a")
        d_test = await session_of(h, developer, "dash-a", "test")
        assert (
            await h.client.get(f"/v1/customers/{customer}", headers=bearer(d_test))
        ).status_code == 200

        # Each session is audited in the seller's tenant, naming the member who opened it.
        rows = await h.auth.pool.fetch(
            "SELECT mode, actor_id, detail FROM audit_events WHERE seller_id = $1"
            " AND action = 'seller.dashboard_session' ORDER BY at",
            await seller_id_of(h, "dash-a"),
        )
        assert [(r["mode"], json.loads(r["detail"])["role"]) for r in rows] == [
            ("test", "owner"),
            ("live", "owner"),
            ("test", "developer"),
        ]
        assert len({r["actor_id"] for r in rows}) == 2
        # What a session does is audited as the member's, not as a key's.
        [created] = await h.auth.pool.fetch(
            "SELECT actor_id, detail FROM audit_events WHERE seller_id = $1 AND mode = 'test'"
            " AND action = 'user.created'",
            await seller_id_of(h, "dash-a"),
        )
        assert created["actor_id"] == rows[0]["actor_id"]
        assert json.loads(created["detail"])["member_role"] == "owner"
        assert "key_id" not in json.loads(created["detail"])


async def test_what_is_not_a_member_s_live_session_is_refused(harness: Any) -> None:
    async with harness() as h:
        owner = await developer_token(h, h.new_email(), "dash-c")
        session = await session_of(h, owner, "dash-c", "test")

        # The member's own access token is not a key: the seller API refuses it.
        assert (await h.client.get("/v1/customers", headers=bearer(owner))).status_code == 401
        # A session token is not a customer's token: its audience keeps it out.
        assert (await h.client.get("/v1/sessions", headers=bearer(session))).status_code == 401
        # A customer of the home seller is a member of nothing: 404 for any slug.
        _, email = await h.user()
        customer, _ = await h.signed_in_token(email)
        assert (
            await h.client.post(
                "/v1/sellers/dash-c/dashboard-token",
                json={"mode": "test"},
                headers=bearer(customer),
            )
        ).status_code == 404
        # A mode that is not one, or any other field: 422, nothing minted.
        for body in ({"mode": "prod"}, {"mode": "test", "slug": "x"}, {}):
            refused = await h.client.post(
                "/v1/sellers/dash-c/dashboard-token", json=body, headers=bearer(owner)
            )
            assert refused.status_code == 422, body

        # Signed with auth's own key, but expired, or claiming what a session never is.
        key = await h.auth.keyring.active()
        now = int(time.time())
        good = {
            "iss": h.auth.settings.token_issuer,
            "aud": h.auth.infra.seller_session_audience,
            "sub": "00000000-0000-4000-8000-000000000001",
            "role": "seller_member",
            "mrl": "owner",
            "sid": "s",
            "sel": "dash-c",
            "mod": "test",
            "jti": new_token(16),
            "iat": now,
            "exp": now + 60,
        }
        assert (
            await h.client.get("/v1/customers", headers=bearer(key.jws(good)))
        ).status_code == 200
        for forged in (
            {"iat": now - 600, "exp": now - 120},  # expired, past the leeway
            {"role": "customer"},
            {"mrl": "admin"},
            {"aud": h.auth.settings.token_audience},
            {"mod": None},
            {"sel": None},
        ):
            token = key.jws({**good, **forged})
            answer = await h.client.get("/v1/customers", headers=bearer(token))
            assert answer.status_code == 401, forged


async def test_only_an_owner_makes_or_rotates_a_live_key(harness: Any) -> None:
    """A live secret key acts for the seller in full (it connects the Stripe account the
    customers pay into), so a developer makes test keys only; an owner makes live ones."""
    async with harness() as h:
        owner = await developer_token(h, h.new_email(), "dash-keys")
        developer = await join_as_developer(h, owner, "dash-keys")
        await h.pay_plan(await seller_id_of(h, "dash-keys"))
        path = "/v1/sellers/dash-keys/keys"
        live = await h.client.post(
            path, json={"name": "prod", "mode": "live"}, headers=bearer(developer)
        )
        assert live.status_code == 403 and live.json()["type"].endswith("owner-required")
        test = await h.client.post(
            path, json={"name": "dev", "mode": "test"}, headers=bearer(developer)
        )
        assert test.status_code == 201, test.text
        owners = await h.client.post(
            path, json={"name": "prod", "mode": "live"}, headers=bearer(owner)
        )
        assert owners.status_code == 201, owners.text
        rotated = await h.client.post(
            f"{path}/{owners.json()['pair_id']}/rotate", json={"overlap_seconds": 0},
            headers=bearer(developer),
        )  # fmt: skip
        assert rotated.status_code == 403
        listed = (await h.client.get(path, headers=bearer(owner))).json()["keys"]
        assert {(k["mode"], k["status"]) for k in listed} == {
            ("test", "active"),
            ("live", "active"),
        }
