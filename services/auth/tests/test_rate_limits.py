"""Rate limits in Redis: hit, answered 429 with Retry-After, and reset when the window
passes; the same for known and unknown addresses."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def test_one_link_per_address_per_window_known_or_not(harness: Any) -> None:
    async with harness(rl_link_per_address_burst="1/2 seconds") as h:
        _, known = await h.user()
        unknown = h.new_email()
        first = [await h.request_link(e, h.new_browser()) for e in (known, unknown)]
        second = [await h.request_link(e, h.new_browser()) for e in (known, unknown)]
        await asyncio.sleep(2.1)
        after = [await h.request_link(e, h.new_browser()) for e in (known, unknown)]
    assert [r.status_code for r in first] == [202, 202]
    assert [r.status_code for r in second] == [429, 429]
    assert all(r.headers["retry-after"] in {"1", "2"} for r in second)
    assert (
        second[0].json()["type"] == second[1].json()["type"] == "urn:tessera:problem:rate-limited"
    )
    assert [r.status_code for r in after] == [202, 202]


async def test_link_requests_per_ip_and_the_global_ceiling(harness: Any) -> None:
    async with harness(rl_link_per_ip="3/hour", rl_link_global="5/hour") as h:
        one, two = h.client_from("198.51.100.1"), h.client_from("198.51.100.2")

        async def ask(client: Any) -> int:
            body = {"email": h.new_email(), "browser": h.new_browser()}
            status: int = (await client.post("/v1/magic-links", json=body)).status_code
            return status

        from_one = [await ask(one) for _ in range(4)]
        from_two = [await ask(two) for _ in range(3)]
    assert from_one == [202, 202, 202, 429]
    assert from_two == [202, 202, 429]  # the global ceiling (5) is reached


async def test_verify_attempts_per_ip(harness: Any) -> None:
    async with harness(rl_verify_per_ip="3/minute") as h:
        attacker, other = h.client_from("192.0.2.66"), h.client_from("192.0.2.67")
        body = {"email": h.new_email(), "code": "000000", "browser": h.new_browser()}
        answers = [
            (await attacker.post("/v1/magic-links/verify", json=body)).status_code for _ in range(4)
        ]
        elsewhere = (await other.post("/v1/magic-links/verify", json=body)).status_code
    assert answers == [401, 401, 401, 429]
    assert elsewhere == 401


async def test_bad_input_gets_a_clear_4xx(harness: Any) -> None:
    async with harness() as h:
        answers = [
            await h.client.post(
                "/v1/magic-links", json={"email": "nope", "browser": h.new_browser()}
            ),
            await h.client.post("/v1/magic-links", json={"email": h.new_email()}),
            await h.client.post(
                "/v1/magic-links", content=b"{", headers={"content-type": "application/json"}
            ),
            await h.client.post("/v1/magic-links/verify", json={"browser": h.new_browser()}),
            await h.client.post(
                "/v1/magic-links/verify",
                json={"browser": h.new_browser(), "email": h.new_email(), "code": "12"},
            ),
            await h.client.post("/v1/sessions/token", json={"session_id": "short"}),
            await h.client.post(
                "/v1/magic-links",
                content=b"x" * 70_000,
                headers={"content-type": "application/json"},
            ),
        ]
    assert [a.status_code for a in answers] == [422, 422, 400, 422, 422, 422, 413]
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
