"""The customer API with a seller's secret key: create (idempotent by address), get, find,
list by cursor, update; the seller and mode come from the key alone, so another seller's
customer or the other mode's is a 404 and nothing changes. Real Postgres, Redis, NATS."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from uuid import UUID, uuid4

import pytest
from test_api_keys import new_pair  # type: ignore[import-not-found]
from test_sellers import bearer, developer_token, seller_id_of  # type: ignore[import-not-found]

from tessera.auth.api_keys import service as api_keys
from tessera.auth.sellers import service as sellers
from tessera.auth.users import service as users
from tessera.shared.accounts import account_id_for
from tessera.shared.api_keys import UnknownKey
from tessera.shared.events.billing import AccountCreated
from tessera.shared.sellers import HOME_LIVE, HOME_SELLER_ID, Tenant

pytestmark = pytest.mark.integration


async def seller_keys(h: Any, slug: str) -> dict[str, Any]:
    """A new seller's live and test pairs: {"live": {...}, "test": {...}}."""
    await asyncio.wait_for(h.auth.key_book.wait_ready(), 20)
    token = await developer_token(h, h.new_email(), slug)
    await h.pay_plan(await seller_id_of(h, slug))
    return {mode: await new_pair(h, token, slug, mode, mode) for mode in ("live", "test")}


def sk(keys: dict[str, Any], mode: str = "live") -> dict[str, str]:
    headers: dict[str, str] = bearer(keys[mode]["secret"]["key"])
    return headers


async def outbox_events(h: Any, subject: str) -> list[dict[str, Any]]:
    rows = await h.auth.pool.fetch("SELECT payload FROM outbox WHERE subject = $1", subject)
    return [json.loads(r["payload"]) for r in rows]


async def test_create_is_idempotent_by_address_and_publishes_user_created(harness: Any) -> None:
    async with harness() as h:
        keys = await seller_keys(h, "cust-make")
        first = await h.client.post(
            "/v1/customers",
            json={"email": "Ada@Example.com", "name": "Ada", "metadata": {"plan": "pro"}},
            headers=sk(keys),
        )
        again = await h.client.post(
            "/v1/customers", json={"email": "ada@example.com"}, headers=sk(keys)
        )
        seller_id = await seller_id_of(h, "cust-make")
        created = [
            e
            for e in await outbox_events(h, "auth.user.created.v1")
            if e["seller_id"] == str(seller_id)
        ]
    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.json() == first.json()
    body = first.json()
    assert body["email"] == "ada@example.com" and body["name"] == "Ada"
    assert body["metadata"] == {"plan": "pro"} and body["mode"] == "live"
    assert body["disabled"] is False
    [event] = created
    # The public id is the account id, derived from the tenant and the address (the id a
    # purchase of the address in billing would give), and auth's user id stays inside.
    assert body["id"] == event["account_id"] != event["user_id"] and "account_id" not in body
    assert body["id"] == str(account_id_for(Tenant(seller_id, "live"), "ada@example.com"))
    assert event["mode"] == "live" and event["email"] == "ada@example.com"


async def test_racing_creates_of_one_address_make_one_customer(harness: Any) -> None:
    async with harness() as h:
        keys = await seller_keys(h, "cust-race")
        answers = await asyncio.gather(
            *(
                h.client.post("/v1/customers", json={"email": "race@example.com"}, headers=sk(keys))
                for _ in range(8)
            )
        )
        rows = await h.auth.pool.fetchval(
            "SELECT count(*) FROM users WHERE seller_id = $1",
            await seller_id_of(h, "cust-race"),
        )
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert rows == 1


async def test_get_find_and_list_by_cursor(harness: Any) -> None:
    async with harness() as h:
        keys = await seller_keys(h, "cust-list")
        made = []
        for n in range(5):
            answer = await h.client.post(
                "/v1/customers", json={"email": f"c{n}@example.com"}, headers=sk(keys)
            )
            made.append(answer.json()["id"])
        got = await h.client.get(f"/v1/customers/{made[2]}", headers=sk(keys))
        found = await h.client.get("/v1/customers?email=C3@example.com", headers=sk(keys))
        missing = await h.client.get("/v1/customers?email=nobody@example.com", headers=sk(keys))
        seen, cursor, pages = [], None, 0
        while True:
            query = f"?limit=2&starting_after={cursor}" if cursor else "?limit=2"
            page = (await h.client.get(f"/v1/customers{query}", headers=sk(keys))).json()
            seen += [c["id"] for c in page["data"]]
            pages += 1
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
        too_big = await h.client.get("/v1/customers?limit=101", headers=sk(keys))
    assert got.status_code == 200 and got.json()["email"] == "c2@example.com"
    assert [c["id"] for c in found.json()["data"]] == [made[3]]
    assert missing.json()["data"] == []
    assert seen == made and pages == 3
    assert too_big.status_code == 422


async def test_seller_a_s_secret_key_cannot_read_or_change_b_s_customer(harness: Any) -> None:
    async with harness() as h:
        a = await seller_keys(h, "cust-a")
        b = await seller_keys(h, "cust-b")
        theirs = (
            await h.client.post(
                "/v1/customers", json={"email": "b@example.com", "name": "B"}, headers=sk(b)
            )
        ).json()
        before = await h.auth.pool.fetchrow(
            "SELECT * FROM users WHERE account_id = $1", UUID(theirs["id"])
        )
        read = await h.client.get(f"/v1/customers/{theirs['id']}", headers=sk(a))
        patched = await h.client.patch(
            f"/v1/customers/{theirs['id']}",
            json={"name": "taken", "disabled": True},
            headers=sk(a),
        )
        found = await h.client.get("/v1/customers?email=b@example.com", headers=sk(a))
        listed = await h.client.get("/v1/customers", headers=sk(a))
        # A's create of the same address makes A's own customer, not B's.
        own = await h.client.post("/v1/customers", json={"email": "b@example.com"}, headers=sk(a))
        after = await h.auth.pool.fetchrow(
            "SELECT * FROM users WHERE account_id = $1", UUID(theirs["id"])
        )
    assert read.status_code == patched.status_code == 404
    assert found.json()["data"] == [] and listed.json()["data"] == []
    assert own.status_code == 201 and own.json()["id"] != theirs["id"]
    assert dict(after) == dict(before)


async def test_a_test_key_sees_no_live_customer(harness: Any) -> None:
    async with harness() as h:
        keys = await seller_keys(h, "cust-modes")
        live = (
            await h.client.post("/v1/customers", json={"email": "m@example.com"}, headers=sk(keys))
        ).json()
        read = await h.client.get(f"/v1/customers/{live['id']}", headers=sk(keys, "test"))
        patched = await h.client.patch(
            f"/v1/customers/{live['id']}", json={"name": "x"}, headers=sk(keys, "test")
        )
        listed = await h.client.get("/v1/customers", headers=sk(keys, "test"))
        twin = await h.client.post(
            "/v1/customers", json={"email": "m@example.com"}, headers=sk(keys, "test")
        )
        name = await h.auth.pool.fetchval(
            "SELECT name FROM users WHERE account_id = $1", UUID(live["id"])
        )
    assert read.status_code == patched.status_code == 404
    assert listed.json()["data"] == []
    assert twin.status_code == 201 and twin.json()["mode"] == "test"
    assert twin.json()["id"] != live["id"]
    assert name is None


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/v1/customers"), ("get", "/v1/customers"), ("get", "/v1/customers/ID"),
     ("patch", "/v1/customers/ID")],
    ids=["create", "list", "get", "update"],
)  # fmt: skip
async def test_only_a_secret_key_reaches_the_customer_api(
    harness: Any, method: str, path: str
) -> None:
    async with harness() as h:
        keys = await seller_keys(h, "cust-pk")
        made = await h.client.post(
            "/v1/customers", json={"email": "k@example.com"}, headers=sk(keys)
        )
        url = path.replace("ID", made.json()["id"])
        body = {"json": {"email": "new@example.com"}} if method != "get" else {}
        publishable = bearer(keys["live"]["publishable"]["key"])
        with_pk = await h.client.request(method.upper(), url, headers=publishable, **body)
        without = await h.client.request(method.upper(), url, **body)
        forged = await h.client.request(
            method.upper(), url, headers=bearer("sk_live_" + "A" * 38), **body
        )
        count = await h.auth.pool.fetchval(
            "SELECT count(*) FROM users WHERE email = $1", "new@example.com"
        )
    assert with_pk.status_code == 403
    assert without.status_code == forged.status_code == 401
    assert count == 0


async def test_update_changes_name_metadata_and_disables(harness: Any) -> None:
    async with harness() as h:
        keys = await seller_keys(h, "cust-patch")
        made = (
            await h.client.post(
                "/v1/customers",
                json={"email": "p@example.com", "metadata": {"a": "1"}},
                headers=sk(keys),
            )
        ).json()
        url = f"/v1/customers/{made['id']}"
        too_much = await h.client.patch(
            url,
            json={"name": "Pat", "metadata": {f"k{n}": "v" for n in range(21)}},
            headers=sk(keys),
        )
        unchanged = (await h.client.get(url, headers=sk(keys))).json()
        renamed = await h.client.patch(
            url, json={"name": "Pat", "metadata": {"b": "2"}}, headers=sk(keys)
        )
        disabled = await h.client.patch(url, json={"disabled": True}, headers=sk(keys))
        events = await outbox_events(h, "auth.user.disabled.v1")
        enabled = await h.client.patch(url, json={"disabled": False}, headers=sk(keys))
    assert too_much.status_code == 422 and unchanged == made
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Pat" and renamed.json()["metadata"] == {"b": "2"}
    assert disabled.json()["disabled"] is True and disabled.json()["name"] == "Pat"
    assert [e["account_id"] for e in events] == [made["id"]]
    assert enabled.json()["disabled"] is False


async def test_a_suspended_seller_s_key_is_refused_until_it_is_reinstated(harness: Any) -> None:
    async with harness() as h:
        keys = await seller_keys(h, "cust-suspend")
        before = await h.client.get("/v1/customers", headers=sk(keys))

        async def status_once(expected: int) -> int:
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                answer = await h.client.get("/v1/customers", headers=sk(keys))
                if answer.status_code == expected:
                    return expected
                assert asyncio.get_running_loop().time() < deadline, answer.text
                await asyncio.sleep(0.05)

        await sellers.set_status(h.auth.pool, "cust-suspend", "suspended", actor="test")
        suspended = await status_once(401)
        created = await h.client.post(
            "/v1/customers", json={"email": "s@example.com"}, headers=sk(keys)
        )
        await sellers.set_status(h.auth.pool, "cust-suspend", "active", actor="test")
        reinstated = await status_once(200)
        count = await h.auth.pool.fetchval(
            "SELECT count(*) FROM users WHERE email = 's@example.com'"
        )
    assert before.status_code == 200
    assert suspended == 401 and created.status_code == 401 and reinstated == 200
    assert count == 0


async def test_a_customer_born_of_a_purchase_is_found_by_its_account_id(harness: Any) -> None:
    """A purchase made the account in billing (an id made before ids were derived, say):
    the customer API names the customer by that id, as billing and licensing do."""
    async with harness() as h:
        keys = await seller_keys(h, "cust-bought")
        tenant = Tenant(await seller_id_of(h, "cust-bought"), "live")
        legacy = uuid4()
        bought = AccountCreated(
            account_id=legacy, email="bought@example.com", seller_id=tenant.seller_id, mode="live"
        )
        await users.create_user_for_account(h.auth.pool, bought)
        got = await h.client.get(f"/v1/customers/{legacy}", headers=sk(keys))
        patched = await h.client.patch(
            f"/v1/customers/{legacy}", json={"name": "Buyer"}, headers=sk(keys)
        )
        again = await h.client.post(
            "/v1/customers", json={"email": "Bought@example.com"}, headers=sk(keys)
        )
    assert got.status_code == 200 and got.json()["id"] == str(legacy)
    assert patched.json()["name"] == "Buyer"
    assert again.status_code == 200 and again.json()["id"] == str(legacy)


async def test_a_purchase_racing_a_create_names_the_same_account(harness: Any, logged: Any) -> None:
    """The seller created the customer while billing made the account of its purchase:
    both derived one id, so billing's event finds the customer it names (no second user,
    no warning). An older account with another id leaves the customer's as it is, with a
    warning."""
    async with harness() as h:
        keys = await seller_keys(h, "cust-racing")
        tenant = Tenant(await seller_id_of(h, "cust-racing"), "live")
        made = (
            await h.client.post("/v1/customers", json={"email": "r@example.com"}, headers=sk(keys))
        ).json()
        same = AccountCreated(
            account_id=account_id_for(tenant, "r@example.com"), email="r@example.com",
            seller_id=tenant.seller_id, mode="live",
        )  # fmt: skip
        legacy = AccountCreated(
            account_id=uuid4(), email="r@example.com", seller_id=tenant.seller_id, mode="live"
        )
        with logged("tessera.auth.users") as records:
            from_same = await users.create_user_for_account(h.auth.pool, same)
            from_legacy = await users.create_user_for_account(h.auth.pool, legacy)
        rows = await h.auth.pool.fetch(
            "SELECT account_id FROM users WHERE seller_id = $1", tenant.seller_id
        )
    assert made["id"] == str(same.account_id)
    assert from_same is None and from_legacy is None
    assert [r["account_id"] for r in rows] == [same.account_id]
    levels = {r.getMessage(): r.levelno for r in records}
    assert levels == {
        "auth.user.create.exists": logging.INFO,
        "auth.user.create.account_conflict": logging.WARNING,
    }


async def test_a_sign_up_derives_the_account_id(harness: Any) -> None:
    async with harness() as h:
        email = h.new_email()
        await developer_token(h, email, "cust-signup")
        account = await h.auth.pool.fetchval(
            "SELECT account_id FROM users WHERE seller_id = $1 AND mode = 'live' AND email = $2",
            HOME_SELLER_ID, email.lower(),
        )  # fmt: skip
    assert account == account_id_for(HOME_LIVE, email)


async def test_the_home_sellers_customer_api_never_shows_or_changes_an_operator(
    harness: Any,
) -> None:
    """The home seller's tenant also holds the platform's admins: its key (or a member's
    session) finds customers only, so it can neither list an admin nor disable one."""
    async with harness() as h:
        await asyncio.wait_for(h.auth.key_book.wait_ready(), 20)
        pair = await api_keys.issue_pair(h.auth, HOME_SELLER_ID, "ops", "live", None)
        home = bearer(pair.secret.key)
        await asyncio.wait_for(_known(h, pair.secret.key), 20)
        buyer = await h.client.post("/v1/customers", json={"email": "buyer@home.example"},
                                    headers=home)  # fmt: skip
        operator = await h.client.post("/v1/customers", json={"email": "ops@home.example"},
                                       headers=home)  # fmt: skip
        assert buyer.status_code == operator.status_code == 201
        await users.set_role(h.auth.pool, "ops@home.example", "admin")
        admin_id = operator.json()["id"]
        listed = (await h.client.get("/v1/customers", headers=home)).json()["data"]
        found = await h.client.get(
            "/v1/customers", params={"email": "ops@home.example"}, headers=home
        )
        got = await h.client.get(f"/v1/customers/{admin_id}", headers=home)
        disabled = await h.client.patch(
            f"/v1/customers/{admin_id}", json={"disabled": True}, headers=home
        )
        again = await h.client.post(
            "/v1/customers", json={"email": "ops@home.example"}, headers=home
        )
        still = await h.auth.pool.fetchval(
            "SELECT disabled_at FROM users WHERE account_id = $1", UUID(admin_id)
        )
    assert [c["email"] for c in listed if c["email"].endswith("@home.example")] == [
        "buyer@home.example"
    ]
    assert found.json()["data"] == []
    assert got.status_code == disabled.status_code == 404
    assert again.status_code == 409 and again.json()["type"].endswith("not-a-customer")
    assert still is None


async def _known(h: Any, key: str) -> None:
    while True:
        try:
            h.auth.key_book.check(key)
            return
        except UnknownKey:
            await asyncio.sleep(0.02)
