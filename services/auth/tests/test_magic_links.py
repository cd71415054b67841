"""Magic links and one-time codes, driven over HTTP as the portal drives them, with the
mail read from a real SMTP server."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import asyncpg
import httpx
import pytest

from tessera.shared.sellers import HOME_LIVE

pytestmark = pytest.mark.integration


def without_request_id(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    body.pop("request_id", None)
    return body


async def test_a_link_signs_in_once_in_the_browser_that_asked(harness: Any) -> None:
    async with harness() as h:
        user_id, email = await h.user()
        browser = h.new_browser()
        asked = await h.request_link(email, browser, next="/licenses")
        assert asked.status_code == 202
        message = await h.link_mail(email)
        token = h.link_token(message)
        assert "<a href=" in message["HTML"] and token in message["HTML"]

        first = await h.client.post(
            "/v1/magic-links/verify", json={"token": token, "browser": browser}
        )
        again = await h.client.post(
            "/v1/magic-links/verify", json={"token": token, "browser": browser}
        )

    assert first.status_code == 200, first.text
    body = first.json()
    assert body["user"]["id"] == str(user_id)
    assert body["next"] == "/licenses"
    assert len(body["session_id"]) >= 43  # 256 bits, base64url
    assert again.status_code == 401
    assert again.json()["type"] == "urn:tessera:problem:sign-in-failed"


async def test_known_and_unknown_addresses_get_the_same_answer_in_the_same_time(
    harness: Any, database_url: str
) -> None:
    async with harness() as h:
        known = [(await h.user(welcome=False))[1] for _ in range(30)]
        unknown = [h.new_email() for _ in range(30)]
        timings: dict[str, list[float]] = {"known": [], "unknown": []}
        bodies: dict[str, set[str]] = {"known": set(), "unknown": set()}
        statuses: dict[str, set[int]] = {"known": set(), "unknown": set()}
        for _ in range(5):  # warm up both paths
            await h.request_link(h.new_email(), h.new_browser())
        for k, u in zip(known, unknown, strict=True):
            for kind, email in (("known", k), ("unknown", u)):
                started = time.perf_counter()
                response = await h.request_link(email, h.new_browser())
                timings[kind].append(time.perf_counter() - started)
                statuses[kind].add(response.status_code)
                bodies[kind].add(response.text)
        # Only the known addresses get mail; the unknown ones are dropped off the path.
        await h.link_mail(known[-1])
        conn = await asyncpg.connect(database_url)
        try:

            async def settled() -> bool:
                return not await conn.fetchval(
                    "SELECT count(*) FROM email_outbox WHERE status = 'pending'"
                )

            deadline = time.monotonic() + 15
            while not await settled():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            dropped = await conn.fetchval(
                "SELECT count(*) FROM email_outbox WHERE status = 'dropped' AND recipient = ANY($1)",
                unknown,
            )
        finally:
            await conn.close()
        unknown_mail = [m for m in await h.mailbox.messages() if m["To"][0]["Address"] in unknown]

    assert statuses == {"known": {202}, "unknown": {202}}
    assert bodies["known"] == bodies["unknown"] and len(bodies["known"]) == 1
    assert dropped == len(unknown) and unknown_mail == []
    # The request does the same work for both (the sender decides later), so the medians
    # differ by less than the spread of either sample (its interquartile range): noise.
    known_median = statistics.median(timings["known"])
    unknown_median = statistics.median(timings["unknown"])
    spread = max(iqr(timings["known"]), iqr(timings["unknown"]), 0.003)
    assert abs(known_median - unknown_median) < spread, timings


def iqr(samples: list[float]) -> float:
    quartiles = statistics.quantiles(samples, n=4)
    return quartiles[2] - quartiles[0]


async def test_a_get_of_the_link_changes_nothing(harness: Any) -> None:
    async with harness() as h:
        _, email = await h.user()
        browser = h.new_browser()
        await h.request_link(email, browser)
        token = h.link_token(await h.link_mail(email))
        fetched = [
            await h.client.get(f"/v1/magic-links/verify?token={token}"),
            await h.client.get(f"/sign-in/link?token={token}"),
            await h.client.head(f"/v1/magic-links/verify?token={token}"),
        ]
        after = await h.client.post(
            "/v1/magic-links/verify", json={"token": token, "browser": browser}
        )
    assert [r.status_code for r in fetched] == [405, 404, 405]
    assert after.status_code == 200


async def test_a_link_opened_in_another_browser_asks_for_the_code(harness: Any) -> None:
    async with harness() as h:
        _, email = await h.user()
        await h.request_link(email, h.new_browser())
        message = await h.link_mail(email)
        token, code = h.link_token(message), h.one_time_code(message)
        elsewhere = h.new_browser()
        asked = await h.client.post(
            "/v1/magic-links/verify", json={"token": token, "browser": elsewhere}
        )
        with_code = await h.client.post(
            "/v1/magic-links/verify", json={"token": token, "code": code, "browser": elsewhere}
        )
    assert asked.status_code == 409
    assert asked.json()["type"] == "urn:tessera:problem:code-required"
    assert with_code.status_code == 200


async def test_the_code_alone_signs_in_on_another_device(harness: Any) -> None:
    async with harness() as h:
        user_id, email = await h.user()
        await h.request_link(email, h.new_browser())
        code = h.one_time_code(await h.link_mail(email))
        signed = await h.client.post(
            "/v1/magic-links/verify",
            json={"email": email.upper(), "code": code, "browser": h.new_browser()},
        )
        reused = await h.client.post(
            "/v1/magic-links/verify",
            json={"email": email, "code": code, "browser": h.new_browser()},
        )
    assert signed.status_code == 200
    assert signed.json()["user"]["id"] == str(user_id)
    assert reused.status_code == 401


async def test_five_wrong_codes_kill_the_code(harness: Any) -> None:
    async with harness() as h:
        _, email = await h.user()
        await h.request_link(email, h.new_browser())
        code = h.one_time_code(await h.link_mail(email))
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        answers = [
            await h.client.post(
                "/v1/magic-links/verify",
                json={"email": email, "code": wrong, "browser": h.new_browser()},
            )
            for _ in range(5)
        ]
        right = await h.client.post(
            "/v1/magic-links/verify",
            json={"email": email, "code": code, "browser": h.new_browser()},
        )
    assert [a.status_code for a in answers] == [401] * 5
    assert right.status_code == 401


async def test_wrong_codes_per_account_are_capped_across_links(harness: Any) -> None:
    async with harness(rl_code_per_account="3/hour") as h:
        _, email = await h.user()
        for n in (1, 2):
            await h.request_link(email, h.new_browser())
            code = h.one_time_code(await h.link_mail(email, n))
            wrong = f"{(int(code) + 1) % 1_000_000:06d}"
            for _ in range(2):
                await h.client.post(
                    "/v1/magic-links/verify",
                    json={"email": email, "code": wrong, "browser": h.new_browser()},
                )
        right = await h.client.post(
            "/v1/magic-links/verify",
            json={"email": email, "code": code, "browser": h.new_browser()},
        )
    assert right.status_code == 401


async def test_a_newer_link_replaces_the_older(harness: Any) -> None:
    async with harness() as h:
        _, email = await h.user()
        browser = h.new_browser()
        await h.request_link(email, browser)
        old = h.link_token(await h.link_mail(email, 1))
        await h.request_link(email, browser)
        new = h.link_token(await h.link_mail(email, 2))
        old_answer = await h.client.post(
            "/v1/magic-links/verify", json={"token": old, "browser": browser}
        )
        new_answer = await h.client.post(
            "/v1/magic-links/verify", json={"token": new, "browser": browser}
        )
    assert old_answer.status_code == 401
    assert new_answer.status_code == 200


async def test_an_expired_or_tampered_link_fails_like_any_other(harness: Any) -> None:
    async with harness(link_ttl_seconds=1) as h:
        _, email = await h.user()
        browser = h.new_browser()
        await h.request_link(email, browser)
        token = h.link_token(await h.link_mail(email))
        tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
        answers = {
            "tampered": await h.client.post(
                "/v1/magic-links/verify", json={"token": tampered, "browser": browser}
            ),
            "unknown": await h.client.post(
                "/v1/magic-links/verify", json={"token": h.new_browser(), "browser": browser}
            ),
            "no link for address": await h.client.post(
                "/v1/magic-links/verify",
                json={"email": h.new_email(), "code": "123456", "browser": browser},
            ),
        }
        await asyncio.sleep(1.2)
        answers["expired"] = await h.client.post(
            "/v1/magic-links/verify", json={"token": token, "browser": browser}
        )
    bodies = {name: without_request_id(r) for name, r in answers.items()}
    assert {r.status_code for r in answers.values()} == {401}
    assert len({str(b) for b in bodies.values()}) == 1, bodies


async def test_concurrent_verifies_of_one_link_open_one_session(harness: Any) -> None:
    async with harness() as h:
        _, email = await h.user()
        browser = h.new_browser()
        await h.request_link(email, browser)
        token = h.link_token(await h.link_mail(email))
        answers = await asyncio.gather(
            *(
                h.client.post("/v1/magic-links/verify", json={"token": token, "browser": browser})
                for _ in range(10)
            )
        )
    assert sorted(a.status_code for a in answers) == [200] + [401] * 9


async def test_next_must_be_an_allowlisted_relative_path(harness: Any) -> None:
    async with harness() as h:
        answers = [
            await h.request_link(h.new_email(), h.new_browser(), next=path)
            for path in (
                "https://evil.test/",
                "//evil.test",
                "/\\evil",
                "/unknown",
                "/account/../x",
            )
        ]
        ok = await h.request_link(h.new_email(), h.new_browser(), next="/account/sessions")
    assert [a.status_code for a in answers] == [422] * 5
    assert ok.status_code == 202


async def test_a_sign_in_from_a_new_device_sends_a_notice(harness: Any) -> None:
    async with harness() as h:
        _, email = await h.user()
        laptop, phone = h.new_browser(), h.new_browser()
        await h.sign_in(email, laptop)
        await h.sign_in(email, laptop)
        await h.sign_in(email, phone)
        notice = await h.mailbox.wait_for(email, "New sign-in")
        notices = [m for m in await h.mailbox.messages(email) if "New sign-in" in m["Subject"]]
    assert len(notices) == 1
    assert "/account/sessions" in notice["Text"]


async def test_a_disabled_user_gets_no_link(harness: Any, database_url: str) -> None:
    async with harness() as h:
        user_id, email = await h.user()
        from tessera.auth.sessions import service as sessions
        from tessera.auth.users import service as users

        await users.disable(h.auth.pool, sessions.store(h.auth), HOME_LIVE, user_id)
        await h.request_link(email, h.new_browser())
        conn = await asyncpg.connect(database_url)
        try:
            for _ in range(100):
                status = await conn.fetchval(
                    "SELECT status FROM email_outbox WHERE kind = 'sign_in' AND recipient = $1",
                    email,
                )
                if status != "pending":
                    break
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
    assert status == "dropped"


async def test_signup_needs_the_operator_and_then_proof_of_the_address(
    harness: Any, database_url: str
) -> None:
    email = "newcomer@example.com"
    async with harness(allow_signup=True) as h:
        browser = h.new_browser()
        await h.request_link(email, browser)
        token = h.link_token(await h.link_mail(email))
        conn = await asyncpg.connect(database_url)
        try:
            before = await conn.fetchval("SELECT count(*) FROM users")
            signed = await h.client.post(
                "/v1/magic-links/verify", json={"token": token, "browser": browser}
            )
            after = await conn.fetchval("SELECT count(*) FROM users WHERE email = $1", email)
            events = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE subject = 'auth.user.created.v1'"
            )
        finally:
            await conn.close()
    assert before == 0 and after == 1 and events == 1
    assert signed.status_code == 200
    assert signed.json()["user"]["role"] == "customer"


async def test_a_sign_in_whose_session_cannot_be_written_leaves_the_link_usable(
    harness: Any, redis: Any
) -> None:
    async with harness() as h:
        user_id, email = await h.user()
        browser = h.new_browser()
        await h.request_link(email, browser)
        token = h.link_token(await h.link_mail(email))
        # Make the session write fail in Redis itself: the user's session index is a string.
        index = h.auth.keys("user-sessions", str(user_id))
        await redis.set(index, "not a hash")
        transport = httpx.ASGITransport(app=h.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://auth.test") as c:
            failed = await c.post(
                "/v1/magic-links/verify", json={"token": token, "browser": browser}
            )
        await redis.delete(index)
        retried = await h.client.post(
            "/v1/magic-links/verify", json={"token": token, "browser": browser}
        )
        again = await h.client.post(
            "/v1/magic-links/verify", json={"token": token, "browser": browser}
        )
    assert failed.status_code >= 500
    assert retried.status_code == 200, retried.text
    assert retried.json()["user"]["id"] == str(user_id)
    assert again.status_code == 401  # and once signed in, the link is used up


async def test_a_code_sign_in_that_fails_to_write_the_session_leaves_the_code_usable(
    harness: Any, redis: Any
) -> None:
    async with harness() as h:
        user_id, email = await h.user()
        await h.request_link(email, h.new_browser())
        code = h.one_time_code(await h.link_mail(email))
        index = h.auth.keys("user-sessions", str(user_id))
        await redis.set(index, "not a hash")
        body = {"email": email, "code": code, "browser": h.new_browser()}
        transport = httpx.ASGITransport(app=h.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://auth.test") as c:
            failed = await c.post("/v1/magic-links/verify", json=body)
        await redis.delete(index)
        retried = await h.client.post("/v1/magic-links/verify", json=body)
    assert failed.status_code >= 500
    assert retried.status_code == 200, retried.text
