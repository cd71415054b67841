"""Heartbeats and floating seats: exact seat counts under 50 racing machines, seats given
back at check-in or when their heartbeat lapses, the sweeper's deactivation (event, audit,
the app told at its next call), heartbeats answered from memory and written in batches."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from licensing_factories import Harness, an_order_paid  # type: ignore[import-not-found]
from test_desktop import jwks, verify_lease, verify_response  # type: ignore[import-not-found]
from test_fast_path import chunked  # type: ignore[import-not-found]

from tessera.licensing.desktop.fast_path import HeartbeatFastPath, ValidateFastPath
from tessera.licensing.licenses import keyformat

pytestmark = pytest.mark.integration

# Test policies: a floating one (3 seats held at once, a seat lasts the heartbeat and its
# grace: 2 s) and one that requires a heartbeat every second, with a second of grace.
POLICIES = """
INSERT INTO policies (code, product_code, max_machines, duration_seconds, lease_seconds,
                      grace_seconds, heartbeat_seconds, heartbeat_grace_seconds, floating,
                      seller_id, mode)
VALUES ('chartgpt-floating', 'chartgpt', 3, NULL, 3600, 0, 1, 1, true, '00000000-0000-4000-8000-000000000001', 'live'),
       ('chartgpt-heartbeat', 'chartgpt', 3, NULL, 3600, 0, 1, 1, false, '00000000-0000-4000-8000-000000000001', 'live')
"""


@pytest.fixture
async def quick(start_licensing: Any) -> AsyncIterator[Harness]:
    """Licensing with heartbeats written every 50 ms and swept every 100 ms."""
    async with start_licensing(heartbeat_flush_seconds=0.05, heartbeat_sweep_seconds=0.1) as h:
        await h.fetch(POLICIES)
        yield h


async def a_license(harness: Harness, policy: str) -> str:
    paid = an_order_paid(policy=policy)
    await harness.publish(paid)
    (key,) = await harness.issued(paid.order_id)
    return str(key)


async def call(harness: Harness, verb: str, key: str, fingerprint: str) -> dict[str, Any]:
    r = await harness.http.post(
        f"/v1/licenses/{verb}", json={"key": key, "fingerprint": fingerprint}
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def seats_held(harness: Harness) -> int:
    return int(
        await harness.fetchval(
            "SELECT count(*) FROM activations WHERE seat_until > clock_timestamp()"
        )
    )


async def test_fifty_machines_racing_never_hold_more_than_the_floating_seats(
    quick: Harness,
) -> None:
    key = await a_license(quick, "chartgpt-floating")
    machines = [f"floating-{i:04d}" for i in range(50)]
    answers = await asyncio.gather(*(call(quick, "checkout", key, m) for m in machines))
    codes = [a["code"] for a in answers]
    assert (codes.count("VALID"), codes.count("NO_FREE_SEAT")) == (3, 47)
    # Any number of machines may be activated: all 50 are; 3 hold a seat.
    assert await quick.fetchval("SELECT count(*) FROM activations") == 50
    assert await seats_held(quick) == 3

    # The 3 holders check in while the other 47 race again, and a watcher counts the seats
    # held all along: only the 3 freed seats can change hands, never more at once.
    holders = {m for m, a in zip(machines, answers, strict=True) if a["code"] == "VALID"}
    others = [m for m in machines if m not in holders]
    counts: list[int] = []
    racing = asyncio.gather(
        *(call(quick, "checkin", key, m) for m in holders),
        *(call(quick, "checkout", key, m) for m in others),
    )
    while not racing.done():
        counts.append(await seats_held(quick))
    second = await racing
    assert [a["code"] for a in second[:3]] == ["CHECKED_IN"] * 3
    taken = [a["code"] for a in second[3:]].count("VALID")
    assert taken <= 3
    assert await seats_held(quick) == taken
    assert counts and max(counts) <= 3
    assert (await call(quick, "checkin", key, "never-activated-01"))["code"] == "NOT_ACTIVATED"


async def test_a_floating_seat_is_a_lease_of_its_own(quick: Harness) -> None:
    key = await a_license(quick, "chartgpt-floating")
    out = await call(quick, "checkout", key, "floating-a-0001")
    assert out["code"] == "VALID"
    claims = jwt.decode(out["lease"], options={"verify_signature": False})
    seat_end = time.mktime(time.strptime(out["seat_expires_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    # The lease ends with the seat (2 s), not after the policy's hour.
    assert claims["exp"] - claims["iat"] <= 3
    assert abs(claims["exp"] - (seat_end - time.timezone)) <= 1
    assert out["next_heartbeat_at"]
    assert (await call(quick, "validate", key, "floating-a-0001"))["code"] == "VALID"
    await call(quick, "checkin", key, "floating-a-0001")
    # Activated, holding no seat: validate and heartbeat say to check one out.
    assert (await call(quick, "validate", key, "floating-a-0001"))["code"] == "CHECKOUT_REQUIRED"
    assert (await call(quick, "heartbeat", key, "floating-a-0001"))["code"] == "CHECKOUT_REQUIRED"


async def test_heartbeats_keep_a_seat_and_a_crashed_machines_seat_returns(quick: Harness) -> None:
    key = await a_license(quick, "chartgpt-floating")
    for i in range(3):
        assert (await call(quick, "checkout", key, f"holder-{i:04d}"))["code"] == "VALID"
    assert (await call(quick, "checkout", key, "waiting-0001"))["code"] == "NO_FREE_SEAT"
    # Two holders keep heartbeating for 3 s (past the 2 s a seat lasts unrenewed); the
    # third crashed and says nothing.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for i in range(2):
            beat = await call(quick, "heartbeat", key, f"holder-{i:04d}")
            assert beat["code"] == "VALID", beat
        await asyncio.sleep(0.3)
    assert await seats_held(quick) == 2
    assert (await call(quick, "checkout", key, "waiting-0001"))["code"] == "VALID"
    assert (await call(quick, "checkout", key, "waiting-0002"))["code"] == "NO_FREE_SEAT"


async def test_a_silent_machine_is_deactivated_with_an_event_and_an_audit_entry(
    quick: Harness,
) -> None:
    key = await a_license(quick, "chartgpt-heartbeat")
    assert (await call(quick, "activate", key, "silent-0001"))["code"] == "VALID"
    alive = await call(quick, "activate", key, "alive-0001")
    assert alive["next_heartbeat_at"]

    async def swept() -> bool:
        beat = await call(quick, "heartbeat", key, "alive-0001")
        assert beat["code"] == "VALID", beat
        await asyncio.sleep(0.2)
        n = await quick.fetchval("SELECT count(*) FROM activations")
        return bool(n == 1)

    await quick.until(swept, timeout=10)
    # The app learns it at its next call, and its seat is free again.
    assert (await call(quick, "heartbeat", key, "silent-0001"))["code"] == "NOT_ACTIVATED"
    assert (await call(quick, "validate", key, "silent-0001"))["code"] == "NOT_ACTIVATED"
    assert (await call(quick, "validate", key, "alive-0001"))["code"] == "VALID"
    [event] = await quick.fetch(
        "SELECT payload FROM outbox WHERE subject = 'licensing.activation.removed.v1'"
    )
    assert json.loads(event["payload"])["by"] == "heartbeat"
    [entry] = await quick.fetch(
        "SELECT actor_role, detail FROM audit_log WHERE action = 'machine.heartbeat_lapsed'"
    )
    assert entry["actor_role"] == "system"
    assert json.loads(entry["detail"])["machine_name"] is None


async def test_a_heartbeat_is_answered_from_memory_and_written_in_a_batch(
    start_licensing: Any,
) -> None:
    # A flush a minute: nothing writes the heartbeat but the batch at shutdown.
    async with start_licensing(heartbeat_flush_seconds=60) as h:
        (key,) = await h.issued(await published(h))
        assert (await call(h, "activate", key, "beating-0001"))["code"] == "VALID"
        before = await h.fetchval("SELECT last_heartbeat_at FROM activations")
        cache = h.app.state.context.cache
        entry = keyformat.lookup_hash(key)

        async def cached() -> bool:
            assert (await call(h, "heartbeat", key, "beating-0001"))["code"] == "VALID"
            return cache.lookup(entry)[0] is not None

        await h.until(cached)
        assert len(h.app.state.context.heartbeats) == 1
        assert await h.fetchval("SELECT last_heartbeat_at FROM activations") == before
    # Shut down: the pending heartbeat was written on the way out.
    assert await h.fetchval("SELECT last_heartbeat_at FROM activations") > before


async def test_a_written_heartbeat_leaves_the_cache_alone_and_shows_to_the_owner(
    quick: Harness,
) -> None:
    paid = an_order_paid()
    await quick.publish(paid)
    (key,) = await quick.issued(paid.order_id)
    await call(quick, "activate", key, "beating-0002")
    before = await quick.fetchval("SELECT last_heartbeat_at FROM activations")
    entry = keyformat.lookup_hash(key)
    cache = quick.app.state.context.cache

    async def written() -> bool:
        await call(quick, "heartbeat", key, "beating-0002")
        last = await quick.fetchval("SELECT last_heartbeat_at FROM activations")
        return bool(last > before and cache.lookup(entry)[0] is not None)

    await quick.until(written)
    # Only last_heartbeat_at moved: no NOTIFY, so the entry outlives the next batches.
    await asyncio.sleep(0.3)
    assert cache.lookup(entry)[0] is not None
    r = await quick.http.get("/v1/me/licenses", headers=quick.mint.bearer(paid.account_id))
    [mine] = r.json()
    [machine] = mine["activations"]
    assert machine["last_heartbeat_at"] > machine["created_at"]
    assert machine["seat_until"] is None


async def test_the_heartbeat_fast_path_and_the_full_stack_agree(quick: Harness) -> None:
    front = quick.app.front
    assert isinstance(front, ValidateFastPath)
    assert isinstance(front.app, HeartbeatFastPath)  # validate's, then the heartbeat's
    key = await a_license(quick, "chartgpt-heartbeat")
    await call(quick, "activate", key, "beating-fast-01")
    body = f'{{"key":"{key}","fingerprint":"beating-fast-01","nonce":"n1"}}'.encode()
    keys = await jwks(quick)
    answers = []
    for content in (body, chunked(body)):  # with Content-Length: the fast path; without: not
        r = await quick.http.post(
            "/v1/licenses/heartbeat", content=content, headers={"content-type": "application/json"}
        )
        assert r.status_code == 200, r.text
        assert len(r.headers.get_list("tessera-signature")) == 1
        verify_response(r, keys)
        verify_lease(r.json()["lease"], keys)
        answers.append((r.json()["code"], r.json()["nonce"], r.json()["activation_id"]))
    assert answers[0] == answers[1]
    assert answers[0][:2] == ("VALID", "n1")


async def test_a_bad_heartbeat_is_a_clear_4xx(quick: Harness) -> None:
    r = await quick.http.post("/v1/licenses/heartbeat", json={"key": "K", "fingerprint": "short"})
    assert (r.status_code, r.headers["content-type"]) == (422, "application/problem+json")
    r = await quick.http.post(
        "/v1/licenses/heartbeat",
        content=b"x" * 20_000,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert "tessera-signature" in r.headers


async def published(harness: Harness) -> Any:
    paid = an_order_paid()
    await harness.publish(paid)
    return paid.order_id
