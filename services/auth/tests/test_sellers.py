"""Sellers in auth: the home seller made once, seller sign-up, members and invites, the
seller a token may act for, and customers per seller (signup policy, the same address at
two sellers). Real Postgres, Redis, NATS and SMTP (the mail catcher)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import jwt
import pytest

from tessera.auth.app import MIGRATIONS, create_app
from tessera.auth.sellers import service as sellers
from tessera.auth.users import service as users
from tessera.shared.db.migrate import apply_migrations
from tessera.shared.events.billing import AccountCreated
from tessera.shared.events.envelope import new_event_id
from tessera.shared.sellers import HOME_LIVE, HOME_SELLER_ID, Tenant

pytestmark = pytest.mark.integration

JOIN_LINK = re.compile(r"/sellers/join\?token=([A-Za-z0-9_\-]+)")
SIGN_UP_LINK = re.compile(r"/sellers/sign-up/link\?token=([A-Za-z0-9_\-]+)")


def sign_up_token(message: dict[str, Any]) -> str:
    found = SIGN_UP_LINK.search(message["Text"])
    assert found, message["Text"]
    return found.group(1)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def sign_up_seller(h: Any, email: str, slug: str, name: str = "Acme") -> dict[str, Any]:
    """A developer signs a seller up and verifies the mailed link; the signed-in answer."""
    browser = h.new_browser()
    asked = await h.client.post(
        "/v1/sellers/sign-up",
        json={"email": email, "name": name, "slug": slug, "browser": browser},
    )
    assert asked.status_code == 202, asked.text
    message = await h.mailbox.wait_for(email, f"Create {name}")
    verified = await h.client.post(
        "/v1/sellers/sign-up/verify", json={"token": sign_up_token(message), "browser": browser}
    )
    assert verified.status_code == 200, verified.text
    result: dict[str, Any] = verified.json()
    return result


async def developer_token(h: Any, email: str, slug: str) -> str:
    signed = await sign_up_seller(h, email, slug)
    token: str = await h.access_token(signed["session_id"])
    return token


async def audit_actions(h: Any, seller_id: UUID) -> list[str]:
    rows = await h.auth.pool.fetch(
        "SELECT action FROM audit_events WHERE seller_id = $1 ORDER BY at", seller_id
    )
    return [r["action"] for r in rows]


async def seller_id_of(h: Any, slug: str) -> UUID:
    seller = await sellers.by_slug(h.auth.pool, slug)
    assert seller is not None
    return seller.id


# --- the home seller ------------------------------------------------------------------


async def test_the_home_seller_is_made_once_when_two_replicas_start_at_once(
    auth_settings: Any, infra_settings: Any, running: Any, database_url: str
) -> None:
    settings = auth_settings(home_seller_slug="chartgpt", home_seller_name="ChartGPT Inc")
    apps = [create_app(settings, infra_settings) for _ in range(2)]
    async with contextlib.AsyncExitStack() as stack:
        await asyncio.gather(*(stack.enter_async_context(running(app)) for app in apps))
        contexts = [app.state.context for app in apps]
        pool = contexts[0].pool
        rows = await pool.fetch("SELECT id, slug, name, signup_policy FROM sellers")
        published = await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = $1", f"sellers.{HOME_SELLER_ID}"
        )
        assert [tuple(r) for r in rows] == [(HOME_SELLER_ID, "chartgpt", "ChartGPT Inc", "closed")]
        assert published == 1
        # The race itself, many times over: start from no home row and let both replicas
        # make it at once, five times each.
        for _ in range(3):
            await pool.execute("DELETE FROM sellers")
            await pool.execute("DELETE FROM outbox WHERE subject LIKE 'sellers.%'")
            made = await asyncio.gather(
                *(sellers.ensure_home(c) for c in contexts for _ in range(5))
            )
            assert {s.id for s in made} == {HOME_SELLER_ID}
            assert await pool.fetchval("SELECT count(*) FROM sellers") == 1
            assert (
                await pool.fetchval("SELECT count(*) FROM outbox WHERE subject LIKE 'sellers.%'")
                == 1
            )
        # Both replicas' directories hold it.
        assert all(c.sellers.by_slug("chartgpt") is not None for c in contexts)


async def test_the_home_signup_policy_follows_allow_signup_at_every_start(harness: Any) -> None:
    async with harness() as h:
        assert (await sellers.by_id(h.auth.pool, HOME_SELLER_ID)).signup_policy == "closed"  # type: ignore[union-attr]
    async with harness(allow_signup=True) as h:
        home = await sellers.by_id(h.auth.pool, HOME_SELLER_ID)
        assert home is not None and home.signup_policy == "open" and home.version == 2
        subjects = await h.auth.pool.fetch(
            "SELECT payload->>'version' AS v FROM outbox WHERE subject LIKE 'sellers.%' ORDER BY created_at"
        )
        assert [r["v"] for r in subjects] == ["1", "2"]


# --- the migration, on a populated database ------------------------------------------


async def test_the_sellers_migration_keeps_every_row_as_the_home_seller_s_live(
    database_url: str, tmp_path: Path
) -> None:
    before = tmp_path / "migrations"
    before.mkdir()
    for path in MIGRATIONS.glob("*.sql"):
        if path.name < "auth_0003":
            shutil.copy(path, before / path.name)
    apply_migrations(database_url, before)
    conn = await asyncpg.connect(database_url)
    try:
        users_before = []
        for n in range(25):
            user_id, account_id = new_event_id(), new_event_id()
            await conn.execute(
                "INSERT INTO users (id, account_id, email, role) VALUES ($1, $2, $3, $4)",
                user_id, account_id, f"Person{n}@Example.com", "admin" if n == 0 else "customer",
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO known_devices (user_id, device_hash) VALUES ($1, $2)", user_id, f"d{n}"
            )
            await conn.execute(
                "INSERT INTO audit_events (id, action, user_id, detail) VALUES ($1, 'sign_in', $2, '{}')",
                new_event_id(), user_id,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO email_outbox (id, kind, recipient) VALUES ($1, 'welcome', $2)",
                new_event_id(), f"person{n}@example.com",
            )  # fmt: skip
            users_before.append((user_id, account_id, f"Person{n}@Example.com"))
        tables = ("users", "known_devices", "audit_events", "email_outbox")
        counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables}  # noqa: S608
    finally:
        await conn.close()

    apply_migrations(database_url, MIGRATIONS)

    conn = await asyncpg.connect(database_url)
    try:
        for table in tables:
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == counts[table]  # noqa: S608
            tenants = await conn.fetch(f"SELECT DISTINCT seller_id, mode FROM {table}")  # noqa: S608
            assert [tuple(r) for r in tenants] == [(HOME_SELLER_ID, "live")], table
        after = await conn.fetch("SELECT id, account_id, email FROM users ORDER BY email")
        assert sorted(tuple(r) for r in after) == sorted(users_before)
        # The default is gone: a row that forgets its tenant is refused.
        with pytest.raises(asyncpg.NotNullViolationError):
            await conn.execute(
                "INSERT INTO users (id, account_id, email) VALUES ($1, $2, 'x@example.com')",
                new_event_id(), new_event_id(),
            )  # fmt: skip
        # The same address is one customer per seller and mode, case-insensitively.
        other = new_event_id()
        await conn.execute(
            "INSERT INTO users (id, account_id, email, seller_id, mode) VALUES ($1, $2, $3, $4, 'test')",
            new_event_id(), new_event_id(), "person1@example.com", HOME_SELLER_ID,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO users (id, account_id, email, seller_id, mode) VALUES ($1, $2, $3, $4, 'live')",
            new_event_id(), new_event_id(), "person1@example.com", other,
        )  # fmt: skip
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO users (id, account_id, email, seller_id, mode) VALUES ($1, $2, $3, $4, 'live')",
                new_event_id(), new_event_id(), "PERSON1@example.com", HOME_SELLER_ID,
            )  # fmt: skip
    finally:
        await conn.close()


# --- seller sign-up -------------------------------------------------------------------


async def test_a_developer_signs_a_seller_up_and_owns_it(harness: Any) -> None:
    async with harness() as h:
        email = h.new_email()
        signed = await sign_up_seller(h, email, "acme-tools", "Acme Tools")
        token = await h.access_token(signed["session_id"])
        mine = await h.client.get("/v1/sellers/mine", headers=bearer(token))
        seller_id = await seller_id_of(h, "acme-tools")
        home_user = await users.get_by_email(h.auth.pool, HOME_LIVE, email)
        actions = await audit_actions(h, seller_id)
        record = h.auth.sellers.by_slug("acme-tools")
        claims = jwt.decode(token, options={"verify_signature": False})
    assert mine.status_code == 200
    [membership] = mine.json()["sellers"]
    assert membership["slug"] == "acme-tools" and membership["role"] == "owner"
    assert membership["name"] == "Acme Tools" and membership["signup_policy"] == "closed"
    # The developer is a home-seller user, and their token says so.
    assert signed["user"]["id"] == str(home_user.id)
    assert claims["sel"] == "home" and claims["mod"] == "live"
    assert actions == ["seller.created", "member.added"]
    assert record is not None and record.seller_id == seller_id and record.version == 1


async def test_sign_up_answers_the_same_for_a_known_and_an_unknown_address(harness: Any) -> None:
    async with harness() as h:
        _, known = await h.user()
        answers = []
        for email, slug in ((known, "known-one"), (h.new_email(), "unknown-one")):
            response = await h.client.post(
                "/v1/sellers/sign-up",
                json={"email": email, "name": "X", "slug": slug, "browser": h.new_browser()},
            )
            answers.append((response.status_code, response.json()))
            await h.mailbox.wait_for(email, "Create X")
    assert answers[0] == answers[1] and answers[0][0] == 202


async def test_a_taken_slug_is_refused_at_request_and_again_at_verification(
    harness: Any,
) -> None:
    async with harness() as h:
        first, second = h.new_email(), h.new_email()
        browsers = [h.new_browser(), h.new_browser()]
        for email, browser in zip((first, second), browsers, strict=True):
            asked = await h.client.post(
                "/v1/sellers/sign-up",
                json={"email": email, "name": "Dup", "slug": "dup-slug", "browser": browser},
            )
            assert asked.status_code == 202
        links = [await h.mailbox.wait_for(e, "Create Dup") for e in (first, second)]
        won = await h.client.post(
            "/v1/sellers/sign-up/verify",
            json={"token": sign_up_token(links[0]), "browser": browsers[0]},
        )
        lost = await h.client.post(
            "/v1/sellers/sign-up/verify",
            json={"token": sign_up_token(links[1]), "browser": browsers[1]},
        )
        now_taken = await h.client.post(
            "/v1/sellers/sign-up",
            json={"email": h.new_email(), "name": "D", "slug": "dup-slug", "browser": browsers[0]},
        )
        reserved = await h.client.post(
            "/v1/sellers/sign-up",
            json={"email": h.new_email(), "name": "D", "slug": "mine", "browser": browsers[0]},
        )
        bad = await h.client.post(
            "/v1/sellers/sign-up",
            json={"email": h.new_email(), "name": "D", "slug": "No Way", "browser": browsers[0]},
        )
        owners = await h.auth.pool.fetchval("SELECT count(*) FROM seller_members")
        second_user = await h.auth.pool.fetchval(
            "SELECT count(*) FROM users WHERE lower(email) = $1", second
        )
    assert won.status_code == 200
    assert lost.status_code == 409 and lost.json()["type"] == "urn:tessera:problem:slug-taken"
    assert now_taken.status_code == 409 and reserved.status_code == 409
    assert bad.status_code == 422
    # Nothing of the lost sign-up was written: no member, no user.
    assert owners == 1 and second_user == 0


async def test_a_sign_in_link_does_not_sign_a_seller_up_nor_the_other_way(harness: Any) -> None:
    async with harness() as h:
        _, email = await h.user()
        browser = h.new_browser()
        await h.request_link(email, browser)
        sign_in = await h.link_mail(email)
        wrong_door = await h.client.post(
            "/v1/sellers/sign-up/verify",
            json={"token": h.link_token(sign_in), "browser": browser},
        )
        right_door = await h.client.post(
            "/v1/magic-links/verify", json={"token": h.link_token(sign_in), "browser": browser}
        )
    assert wrong_door.status_code == 401
    assert right_door.status_code == 200  # the link was put back untouched


# --- members and invites --------------------------------------------------------------


async def test_an_owner_invites_and_the_invitee_joins_by_the_mailed_link(harness: Any) -> None:
    async with harness() as h:
        owner = await developer_token(h, h.new_email(), "team-co")
        invitee = h.new_email()
        invited = await h.client.post(
            "/v1/sellers/team-co/invites",
            json={"email": invitee, "role": "developer"},
            headers=bearer(owner),
        )
        assert invited.status_code == 201, invited.text
        listed = (await h.client.get("/v1/sellers/team-co/members", headers=bearer(owner))).json()
        message = await h.mailbox.wait_for(invitee, "Join Acme on")  # the seller's name
        token = JOIN_LINK.search(message["Text"])
        assert token is not None
        joined = await h.client.post(
            "/v1/sellers/invites/accept",
            json={"token": token.group(1), "browser": h.new_browser()},
        )
        again = await h.client.post(
            "/v1/sellers/invites/accept",
            json={"token": token.group(1), "browser": h.new_browser()},
        )
        assert joined.status_code == 200, joined.text
        dev = await h.access_token(joined.json()["session_id"])
        dev_mine = (await h.client.get("/v1/sellers/mine", headers=bearer(dev))).json()
        dev_invites = await h.client.post(
            "/v1/sellers/team-co/invites", json={"email": h.new_email()}, headers=bearer(dev)
        )
        after = (await h.client.get("/v1/sellers/team-co/members", headers=bearer(dev))).json()
        actions = await audit_actions(h, await seller_id_of(h, "team-co"))
    assert [i["email"] for i in listed["invites"]] == [invitee]
    assert again.status_code == 401  # an invite is used once
    assert [(s["slug"], s["role"]) for s in dev_mine["sellers"]] == [("team-co", "developer")]
    assert dev_invites.status_code == 403
    assert dev_invites.json()["type"] == "urn:tessera:problem:owner-required"
    assert sorted(m["role"] for m in after["members"]) == ["developer", "owner"]
    assert after["invites"] == []
    assert actions == ["seller.created", "member.added", "member.invited", "member.added"]


async def test_owners_remove_members_and_revoke_invites_but_keep_one_owner(harness: Any) -> None:
    async with harness() as h:
        owner_email = h.new_email()
        owner = await developer_token(h, owner_email, "keep-one")
        owner_id = (await users.get_by_email(h.auth.pool, HOME_LIVE, owner_email)).id
        invited = await h.client.post(
            "/v1/sellers/keep-one/invites", json={"email": h.new_email()}, headers=bearer(owner)
        )
        invite_id = invited.json()["id"]
        message = await h.mailbox.wait_for(invited.json()["email"], "Join")
        revoked = await h.client.delete(
            f"/v1/sellers/keep-one/invites/{invite_id}", headers=bearer(owner)
        )
        token = JOIN_LINK.search(message["Text"])
        assert token is not None
        late = await h.client.post(
            "/v1/sellers/invites/accept",
            json={"token": token.group(1), "browser": h.new_browser()},
        )
        last = await h.client.delete(
            f"/v1/sellers/keep-one/members/{owner_id}", headers=bearer(owner)
        )
        members = await h.auth.pool.fetchval("SELECT count(*) FROM seller_members")
        actions = await audit_actions(h, await seller_id_of(h, "keep-one"))
    assert revoked.status_code == 204 and late.status_code == 401
    assert last.status_code == 409 and last.json()["type"] == "urn:tessera:problem:last-owner"
    assert members == 1
    assert actions[-1] == "member.invite_revoked"


async def test_a_token_for_seller_a_is_refused_for_seller_b_s_member_routes(
    harness: Any,
) -> None:
    async with harness() as h:
        a_owner = await developer_token(h, h.new_email(), "seller-a")
        b_owner = await developer_token(h, h.new_email(), "seller-b")
        victim = h.new_email()
        b_id = await seller_id_of(h, "seller-b")
        tries = {
            "invite": await h.client.post(
                "/v1/sellers/seller-b/invites", json={"email": victim}, headers=bearer(a_owner)
            ),
            "members": await h.client.get("/v1/sellers/seller-b/members", headers=bearer(a_owner)),
            "patch": await h.client.patch(
                "/v1/sellers/seller-b", json={"signup_policy": "open"}, headers=bearer(a_owner)
            ),
            "remove": await h.client.delete(
                f"/v1/sellers/seller-b/members/{new_event_id()}", headers=bearer(a_owner)
            ),
        }
        b_members = (
            await h.client.get("/v1/sellers/seller-b/members", headers=bearer(b_owner))
        ).json()
        b_seller = await sellers.by_id(h.auth.pool, b_id)
        invites = await h.auth.pool.fetchval("SELECT count(*) FROM seller_invites")
    for name, response in tries.items():
        assert response.status_code == 404, name
        assert response.json()["type"] == "urn:tessera:problem:unknown-seller", name
    assert len(b_members["members"]) == 1 and b_members["invites"] == []
    assert b_seller is not None and b_seller.signup_policy == "closed" and b_seller.version == 1
    assert invites == 0


# --- customers per seller ---------------------------------------------------------------


async def open_seller(h: Any, slug: str) -> tuple[str, UUID]:
    owner = await developer_token(h, h.new_email(), slug)
    opened = await h.client.patch(
        f"/v1/sellers/{slug}", json={"signup_policy": "open"}, headers=bearer(owner)
    )
    assert opened.status_code == 200 and opened.json()["signup_policy"] == "open"
    return owner, await seller_id_of(h, slug)


async def test_the_same_address_at_two_sellers_is_two_customers(harness: Any) -> None:
    async with harness() as h:
        _, seller_id = await open_seller(h, "open-shop")
        home_user, email = await h.user()
        browser = h.new_browser()
        asked = await h.client.post(
            "/v1/sellers/open-shop/sign-in/links", json={"email": email, "browser": browser}
        )
        message = await h.mailbox.wait_for(email, "Sign in to Acme")  # the seller's name
        verified = await h.client.post(
            "/v1/magic-links/verify", json={"token": h.link_token(message), "browser": browser}
        )
        assert verified.status_code == 200, verified.text
        token = await h.access_token(verified.json()["session_id"])
        principal = await h.auth.token_verifier.verify(token)
        claims = jwt.decode(token, options={"verify_signature": False})
        rows = await h.auth.pool.fetch(
            "SELECT id, seller_id, mode FROM users WHERE lower(email) = $1 ORDER BY created_at",
            email,
        )
        created = await h.auth.pool.fetchrow(
            "SELECT payload FROM outbox WHERE subject = 'auth.user.created.v1' "
            "AND payload->>'user_id' = $1",
            verified.json()["user"]["id"],
        )
    assert asked.status_code == 202
    assert [(r["seller_id"], r["mode"]) for r in rows] == [
        (HOME_SELLER_ID, "live"),
        (seller_id, "live"),
    ]
    assert rows[0]["id"] == home_user and verified.json()["user"]["id"] == str(rows[1]["id"])
    assert claims["sel"] == "open-shop" and claims["mod"] == "live"
    assert str(seller_id) not in token  # the internal id never reaches a customer
    assert principal.tenant == Tenant(seller_id, "live")
    assert created is not None and str(seller_id) in created["payload"]


async def test_a_closed_seller_mails_nothing_to_an_unknown_address(harness: Any) -> None:
    async with harness() as h:
        await developer_token(h, h.new_email(), "closed-shop")
        email = h.new_email()
        unknown = await h.client.post(
            "/v1/sellers/closed-shop/sign-in/links",
            json={"email": email, "browser": h.new_browser()},
        )
        home = await h.request_link(h.new_email(), h.new_browser())
        nowhere = await h.client.post(
            "/v1/sellers/no-such-shop/sign-in/links",
            json={"email": email, "browser": h.new_browser()},
        )
        await asyncio.sleep(1.0)  # the sender's turn
        dropped = await h.auth.pool.fetchval(
            "SELECT count(*) FROM email_outbox WHERE recipient = $1 AND status = 'dropped'", email
        )
        mails = await h.mailbox.messages(email)
    assert (unknown.status_code, unknown.json()) == (home.status_code, home.json())
    assert nowhere.status_code == 404
    assert dropped == 1 and mails == []


async def test_an_account_event_of_another_seller_makes_that_seller_s_customer(
    harness: Any,
) -> None:
    async with harness() as h:
        _, seller_id = await open_seller(h, "event-shop")
        email = h.new_email()
        event = AccountCreated(
            account_id=new_event_id(), email=email, seller_id=seller_id, mode="test"
        )
        user_id = await users.create_user_for_account(h.auth.pool, event, [])
        again = await users.create_user_for_account(h.auth.pool, event, [])
        at_home = await h.auth.pool.fetchval(
            "SELECT count(*) FROM users WHERE lower(email) = $1 AND seller_id = $2",
            email,
            HOME_SELLER_ID,
        )
        row = await h.auth.pool.fetchrow("SELECT seller_id, mode FROM users WHERE id = $1", user_id)
    assert user_id is not None and again is None
    assert tuple(row) == (seller_id, "test") and at_home == 0


async def test_a_suspended_seller_s_customers_are_refused_until_it_is_reinstated(
    harness: Any,
) -> None:
    async with harness() as h:
        await open_seller(h, "paused-shop")
        email, browser = h.new_email(), h.new_browser()
        await h.client.post(
            "/v1/sellers/paused-shop/sign-in/links", json={"email": email, "browser": browser}
        )
        message = await h.mailbox.wait_for(email, "Sign in to Acme")
        signed = await h.client.post(
            "/v1/magic-links/verify", json={"token": h.link_token(message), "browser": browser}
        )
        token = await h.access_token(signed.json()["session_id"])
        before = await h.client.get("/v1/sessions", headers=bearer(token))
        suspended = await sellers.set_status(h.auth.pool, "paused-shop", "suspended", actor="t")
        assert suspended is not None
        # Another replica hears of it through the directory; this one as soon as it is
        # published, so wait for the record.
        await wait_for_record(h, "paused-shop", suspended.version)
        during = await h.client.get("/v1/sessions", headers=bearer(token))
        page = await h.client.post(
            "/v1/sellers/paused-shop/sign-in/links",
            json={"email": email, "browser": h.new_browser()},
        )
        with pytest.raises(ValueError, match="home seller"):
            await sellers.set_status(h.auth.pool, "home", "suspended", actor="t")
        home = await sellers.by_id(h.auth.pool, HOME_SELLER_ID)
        reinstated = await sellers.set_status(h.auth.pool, "paused-shop", "active", actor="t")
        assert reinstated is not None
        await wait_for_record(h, "paused-shop", reinstated.version)
        after = await h.client.get("/v1/sessions", headers=bearer(token))
    assert before.status_code == 200
    assert during.status_code == 401 and page.status_code == 404
    assert home is not None and home.status == "active"  # never suspended
    assert after.status_code == 200


async def wait_for_record(h: Any, slug: str, version: int) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while (entry := h.auth.sellers.by_slug(slug)) is None or entry.version < version:
        assert asyncio.get_running_loop().time() < deadline, "the record never arrived"
        await asyncio.sleep(0.02)
