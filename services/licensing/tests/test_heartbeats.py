"""Heartbeats and floating seats: exact seat counts under 50 racing machines and under
heartbeats racing check-outs across seat expiries, seats given back at check-in or when
their heartbeat lapses, the sweeper's deactivation (event, audit, the app told at its next
call; never a floating machine; never an activation an activate just answered for),
heartbeats answered from memory and written in batches, next_heartbeat_at and leases that
stand on a recorded heartbeat, the heartbeat's own rate budget."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import jwt
import pytest
from licensing_factories import Harness, an_order_paid  # type: ignore[import-not-found]
from test_desktop import jwks, verify_lease, verify_response  # type: ignore[import-not-found]
from test_fast_path import chunked  # type: ignore[import-not-found]

from tessera.licensing.desktop.fast_path import HeartbeatFastPath, ValidateFastPath
from tessera.licensing.heartbeats import queries as heartbeat_queries
from tessera.licensing.heartbeats import service as heartbeats
from tessera.licensing.licenses import keyformat

pytestmark = pytest.mark.integration

# Test policies: a floating one (3 seats held at once, a seat lasts the heartbeat and its
# grace: 3 s), the same with seats of a minute (for races that must not see a seat lapse,
# however loaded the machine), 2 floating seats of 3 s, and one that requires a heartbeat
# every second, with 2 s of grace (the least grace a policy may have).
POLICIES = """
INSERT INTO policies (code, product_code, max_machines, duration_seconds, lease_seconds,
                      grace_seconds, heartbeat_seconds, heartbeat_grace_seconds, floating,
                      seller_id, mode)
VALUES ('chartgpt-floating', 'chartgpt', 3, NULL, 3600, 0, 1, 2, true, '00000000-0000-4000-8000-000000000001', 'live'),
       ('chartgpt-floating-long', 'chartgpt', 3, NULL, 3600, 0, 30, 30, true, '00000000-0000-4000-8000-000000000001', 'live'),
       ('chartgpt-floating-two', 'chartgpt', 2, NULL, 3600, 0, 1, 2, true, '00000000-0000-4000-8000-000000000001', 'live'),
       ('chartgpt-heartbeat', 'chartgpt', 3, NULL, 3600, 0, 1, 2, false, '00000000-0000-4000-8000-000000000001', 'live')
"""
SEAT_SECONDS = 3


@asynccontextmanager
async def swept_often(start_licensing: Any, flush_seconds: float) -> AsyncIterator[Harness]:
    """Licensing with the test policies, heartbeats written every `flush_seconds` and swept
    every 100 ms, and room in the rate budgets for races of many machines on one key."""
    async with start_licensing(
        heartbeat_flush_seconds=flush_seconds,
        heartbeat_sweep_seconds=0.1,
        rate_per_key=10_000,
        rate_per_ip=10_000,
    ) as h:
        await h.fetch(POLICIES)
        yield h


@pytest.fixture
async def quick(start_licensing: Any) -> AsyncIterator[Harness]:
    """Heartbeats written every 50 ms."""
    async with swept_often(start_licensing, 0.05) as h:
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


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def test_fifty_machines_racing_never_hold_more_than_the_floating_seats(
    quick: Harness,
) -> None:
    # Seats of a minute: none lapses during the race, so every count below is exact.
    key = await a_license(quick, "chartgpt-floating-long")
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
    # The 47 race for the 3 seats given back: whatever the interleaving, once every
    # check-in is in, exactly 3 win (a check-out that ran before a check-in lost).
    taken = [a["code"] for a in second[3:]].count("VALID")
    assert taken + await retry_until_full(quick, key, others, second[3:]) == 3
    assert await seats_held(quick) == 3
    assert counts and max(counts) <= 3
    assert (await call(quick, "checkin", key, "never-activated-01"))["code"] == "NOT_ACTIVATED"


async def retry_until_full(
    harness: Harness, key: str, machines: list[str], answers: list[dict[str, Any]]
) -> int:
    """The losers of a race check out once more, one by one, now that every check-in is
    in; how many get a seat."""
    losers = [m for m, a in zip(machines, answers, strict=True) if a["code"] != "VALID"]
    codes = [(await call(harness, "checkout", key, m))["code"] for m in losers]
    assert set(codes) <= {"VALID", "NO_FREE_SEAT"}
    return codes.count("VALID")


async def test_a_floating_seat_is_a_lease_of_its_own(quick: Harness) -> None:
    key = await a_license(quick, "chartgpt-floating")
    out = await call(quick, "checkout", key, "floating-a-0001")
    assert out["code"] == "VALID"
    claims = jwt.decode(out["lease"], options={"verify_signature": False})
    seat_end = time.mktime(time.strptime(out["seat_expires_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    # The lease ends with the seat (3 s), not after the policy's hour.
    assert claims["exp"] - claims["iat"] <= SEAT_SECONDS + 1
    assert abs(claims["exp"] - (seat_end - time.timezone)) <= 1
    # The next heartbeat is asked for half an interval after the seat was taken (its end
    # less its length), well before the seat ends.
    next_at = epoch(out["next_heartbeat_at"])
    assert epoch(out["seat_expires_at"]) - next_at == pytest.approx(2.5, abs=0.01)
    assert next_at >= epoch(out["server_time"])
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
    # Two holders keep heartbeating for 4 s (past the 3 s a seat lasts unrenewed); the
    # third crashed and says nothing.
    deadline = time.monotonic() + SEAT_SECONDS + 1
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
    paid = an_order_paid(policy="chartgpt-heartbeat")
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


async def test_a_valid_answer_stands_on_a_recorded_heartbeat(start_licensing: Any) -> None:
    """validate and a second activate record a heartbeat (so the next_heartbeat_at they
    answer is honest), and under a heartbeat policy a lease ends with the heartbeat's
    deadline, not days later."""
    async with start_licensing(heartbeat_flush_seconds=0.05, heartbeat_sweep_seconds=3600) as h:
        await h.fetch(POLICIES)
        key = await a_license(h, "chartgpt-heartbeat")
        first = await call(h, "activate", key, "recorded-0001")
        claims = jwt.decode(first["lease"], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] <= 1 + 2 + 1  # interval + grace, not an hour
        written = "SELECT extract(epoch FROM last_heartbeat_at) FROM activations"
        for verb in ("validate", "activate"):
            await asyncio.sleep(1.2)
            out = await call(h, verb, key, "recorded-0001")
            assert out["code"] == "VALID", out
            asked = epoch(out["next_heartbeat_at"]) - epoch(out["server_time"])
            assert 0 < asked <= 0.5 + 0.01, out
            claims = jwt.decode(out["lease"], options={"verify_signature": False})
            assert claims["exp"] - claims["iat"] <= 1 + 2 + 1

            async def recorded(at: float = epoch(out["server_time"])) -> bool:
                return bool(float(await h.fetchval(written)) >= at - 0.01)

            await h.until(recorded, timeout=5)


async def test_a_floating_validate_asks_for_the_heartbeat_before_the_seat_ends(
    quick: Harness,
) -> None:
    key = await a_license(quick, "chartgpt-floating")
    out = await call(quick, "checkout", key, "floating-v-0001")
    seat_end = epoch(out["seat_expires_at"])
    await asyncio.sleep(2.2)  # past half the interval since the seat was taken
    valid = await call(quick, "validate", key, "floating-v-0001")
    assert valid["code"] == "VALID", valid
    assert epoch(valid["seat_expires_at"]) == pytest.approx(seat_end, abs=0.001)
    # Asked from the seat's last renewal (now, since that is past), never past its end.
    assert epoch(valid["next_heartbeat_at"]) <= epoch(valid["server_time"]) + 0.01
    beat = await call(quick, "heartbeat", key, "floating-v-0001")
    assert beat["code"] == "VALID", beat
    assert epoch(beat["seat_expires_at"]) - epoch(beat["next_heartbeat_at"]) >= 2.5 - 0.01


async def test_a_policy_with_less_grace_than_the_flush_delay_is_refused(quick: Harness) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="heartbeat_grace_covers_flush"):
        await quick.fetch(
            """
            INSERT INTO policies (code, product_code, max_machines, lease_seconds,
                                  grace_seconds, heartbeat_seconds, heartbeat_grace_seconds,
                                  floating, seller_id, mode)
            VALUES ('chartgpt-no-grace', 'chartgpt', 3, 3600, 0, 60, 0, true,
                    '00000000-0000-4000-8000-000000000001', 'live')
            """
        )


async def test_heartbeats_racing_checkouts_across_seat_expiries_never_overbook(
    start_licensing: Any,
) -> None:
    """2 seats of 3 s, 8 machines: holders heartbeat just before or just after their seat
    ends, the others check out without pause. Every VALID answer promises its machine a
    seat from its renewal (its end less the seat's length) to its end; at no instant may
    more than 2 machines hold such a promise, nor more than 2 rows a live seat. (Heartbeats
    are flushed only every 300 ms here: a renewal that waited for the batch would lose.)"""
    async with swept_often(start_licensing, 0.3) as h:
        await overbooking_race(h)


async def overbooking_race(quick: Harness) -> None:
    key = await a_license(quick, "chartgpt-floating-two")
    promises: dict[str, list[tuple[float, float]]] = {}
    deadline = time.monotonic() + 12
    rng = random.Random(21)

    def promised(machine: str, out: dict[str, Any]) -> bool:
        if out["code"] != "VALID":
            return False
        end = epoch(out["seat_expires_at"])
        claims = jwt.decode(out["lease"], options={"verify_signature": False})
        assert claims["exp"] <= end + 0.001  # the lease never outlives the seat
        promises.setdefault(machine, []).append((end - SEAT_SECONDS, end))
        return True

    async def machine(name: str) -> None:
        holding, beats = False, 0
        while time.monotonic() < deadline:
            if holding:
                # Around the seat's end: mostly just in time, and every third one too late
                # (so seats change hands).
                beats += 1
                late = beats % 3 == 0
                await asyncio.sleep(
                    SEAT_SECONDS + 0.2
                    if late
                    else rng.uniform(SEAT_SECONDS - 0.35, SEAT_SECONDS + 0.05)
                )
                holding = promised(name, await call(quick, "heartbeat", key, name))
            else:
                holding = promised(name, await call(quick, "checkout", key, name))
                if not holding:
                    await asyncio.sleep(rng.uniform(0.01, 0.1))

    held: list[int] = []
    racing = asyncio.gather(*(machine(f"racer-{i:04d}") for i in range(8)))
    while not racing.done():
        held.append(await seats_held(quick))
    await racing
    assert held and max(held) <= 2
    # Seats did change hands, and were renewed.
    assert len(promises) > 2 and any(len(p) > 1 for p in promises.values())
    assert max_overlap(promises) <= 2


def max_overlap(promises: dict[str, list[tuple[float, float]]]) -> int:
    """The most machines holding a promised seat at one instant (a machine's own renewals
    merged; a seat ending at t and one starting at t do not overlap)."""
    edges: list[tuple[float, int]] = []
    for spans in promises.values():
        merged: list[list[float]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        for start, end in merged:
            # a millisecond off each end: the answers' times are rounded to the microsecond
            edges += [(start + 0.001, 1), (end - 0.001, -1)]
    most = now = 0
    for _, step in sorted(edges):
        now += step
        most = max(most, now)
    return most


async def test_the_sweeper_frees_lapsed_floating_seats_and_deactivates_no_floating_machine(
    quick: Harness,
) -> None:
    paid = an_order_paid(policy="chartgpt-floating")
    await quick.publish(paid)
    (key,) = await quick.issued(paid.order_id)
    assert (await call(quick, "checkout", key, "floating-quiet-01"))["code"] == "VALID"
    assert (await call(quick, "checkout", key, "floating-gone-001"))["code"] == "VALID"
    assert (await call(quick, "checkin", key, "floating-gone-001"))["code"] == "CHECKED_IN"

    async def freed() -> bool:
        return bool(
            await quick.fetchval("SELECT count(*) FROM activations WHERE seat_until IS NULL") == 2
        )

    await quick.until(freed, timeout=15)
    # Long past the seat and any deadline the sweeper knows: both machines stay activated.
    await asyncio.sleep(1 + 2 + 0.05 + 1 + 0.5)
    assert await quick.fetchval("SELECT count(*) FROM activations") == 2
    assert (
        await quick.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = 'licensing.activation.removed.v1'"
        )
        == 0
    )
    assert (
        await quick.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'machine.heartbeat_lapsed'"
        )
        == 0
    )
    assert (await call(quick, "validate", key, "floating-quiet-01"))["code"] == "CHECKOUT_REQUIRED"
    r = await quick.http.get("/v1/me/licenses", headers=quick.mint.bearer(paid.account_id))
    [mine] = r.json()
    assert [m["seat_until"] for m in mine["activations"]] == [None, None]
    assert all(m["last_heartbeat_at"] is not None for m in mine["activations"])


async def test_the_owner_sees_a_seat_only_while_held_and_a_heartbeat_only_where_asked(
    start_licensing: Any,
) -> None:
    # No sweeper: the seat's row keeps its lapsed end; the view must still not show it.
    async with start_licensing(heartbeat_sweep_seconds=3600) as h:
        await h.fetch(POLICIES)
        floating, lifetime = an_order_paid(policy="chartgpt-floating"), an_order_paid()
        for paid in (floating, lifetime):
            await h.publish(paid)
        (fkey,) = await h.issued(floating.order_id)
        (lkey,) = await h.issued(lifetime.order_id)
        await call(h, "checkout", fkey, "seat-view-0001")
        await call(h, "activate", lkey, "seat-view-0002")

        async def view(paid: Any) -> dict[str, Any]:
            r = await h.http.get("/v1/me/licenses", headers=h.mint.bearer(paid.account_id))
            [machine] = r.json()[0]["activations"]
            return dict(machine)

        assert (await view(floating))["seat_until"] is not None
        assert (await view(lifetime))["last_heartbeat_at"] is None  # asks for no heartbeat
        await asyncio.sleep(SEAT_SECONDS + 0.2)
        assert await h.fetchval("SELECT count(*) FROM activations WHERE seat_until IS NOT NULL")
        machine = await view(floating)
        assert machine["seat_until"] is None and machine["last_heartbeat_at"] is not None


async def test_heartbeats_and_checkins_have_their_own_rate_budget(start_licensing: Any) -> None:
    """Machines retrying NO_FREE_SEAT spend the key's budget; the holder's heartbeats and
    its check-in still get through."""
    async with start_licensing(rate_per_key=5, heartbeat_sweep_seconds=3600) as h:
        await h.fetch(POLICIES)
        key = await a_license(h, "chartgpt-floating-long")
        for i in range(3):
            assert (await call(h, "checkout", key, f"budget-holder-{i}"))["code"] == "VALID"
        statuses = []
        for _ in range(4):
            r = await h.http.post(
                "/v1/licenses/checkout", json={"key": key, "fingerprint": "budget-waiter-1"}
            )
            statuses.append(r.status_code)
        assert statuses[-1] == 429  # checkouts spent the key's budget
        assert (await call(h, "heartbeat", key, "budget-holder-0"))["code"] == "VALID"
        assert (await call(h, "checkin", key, "budget-holder-0"))["code"] == "CHECKED_IN"


@pytest.mark.parametrize("verb", ["checkout", "checkin"])
async def test_a_bad_checkout_or_checkin_is_a_clear_4xx(quick: Harness, verb: str) -> None:
    key = await a_license(quick, "chartgpt-floating")
    url = f"/v1/licenses/{verb}"
    for bad in (
        {"key": key, "fingerprint": "short"},
        {"key": key, "fingerprint": "x" * 257},
        {"key": key, "fingerprint": ["not", "text"]},
        {"key": 12345, "fingerprint": "bad-input-0001"},
    ):
        r = await quick.http.post(url, json=bad)
        assert (r.status_code, r.headers["content-type"]) == (422, "application/problem+json")
    r = await quick.http.post(
        url, content=b"x" * 20_000, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    r = await quick.http.post(
        url, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert (r.status_code, r.headers["content-type"]) == (400, "application/problem+json")
    # Nothing was written by any of them.
    assert await quick.fetchval("SELECT count(*) FROM activations") == 0
    if verb == "checkin":
        r = await quick.http.post(url, json={"fingerprint": "bad-input-0001"})
        assert r.status_code == 422  # check-in takes no token: the key is required
    else:
        r = await quick.http.post(url, json={"fingerprint": "bad-input-0001"})
        assert (r.status_code, r.json()["type"]) == (
            400,
            "urn:tessera:problem:key-or-token-required",
        )


async def test_the_sweeper_never_deletes_an_activation_an_activate_answered_for(
    start_licensing: Any,
) -> None:
    """A machine long silent activates again while the sweeper runs: whichever wins the
    license's lock, the activation in a VALID answer still exists afterwards."""
    async with start_licensing(heartbeat_sweep_seconds=3600) as h:
        await h.fetch(POLICIES)
        key = await a_license(h, "chartgpt-heartbeat")
        pool = h.app.state.context.pool
        for _ in range(10):
            await call(h, "activate", key, "sweep-race-0001")
            await h.fetch("UPDATE activations SET last_heartbeat_at = now() - interval '1 hour'")
            out, _ = await asyncio.gather(
                call(h, "activate", key, "sweep-race-0001"), heartbeats.sweep(pool, 0.05)
            )
            assert out["code"] == "VALID"
            assert (
                await h.fetchval(
                    "SELECT count(*) FROM activations WHERE id = $1", UUID(out["activation_id"])
                )
                == 1
            ), "the sweeper deleted the activation activate had just answered VALID for"


async def test_a_flush_writes_in_id_order(quick: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replicas flushing overlapping batches lock rows in one order, so never deadlock."""
    batches: list[list[UUID]] = []
    real = heartbeat_queries.flush

    async def flush(conn: Any, ids: list[UUID], *times: Any) -> None:
        batches.append(list(ids))
        await real(conn, ids, *times)

    monkeypatch.setattr(heartbeat_queries, "flush", flush)
    key = await a_license(quick, "chartgpt-heartbeat")
    keys = [
        key,
        await a_license(quick, "chartgpt-heartbeat"),
        await a_license(quick, "chartgpt-heartbeat"),
    ]
    machines = [(k, f"ordered-{i:04d}") for k in keys for i in range(3)]
    for k, m in machines:
        await call(quick, "activate", k, m)
    batches.clear()
    await asyncio.gather(*(call(quick, "heartbeat", k, m) for k, m in machines))

    async def flushed() -> bool:
        # Under load the nine may land in more than one flush: wait for all of them.
        return len({i for b in batches for i in b}) == len(machines)

    await quick.until(flushed, timeout=15)
    assert max(len(b) for b in batches) > 1  # an order to check: several rows in one flush
    assert all(b == sorted(b) for b in batches)


async def test_only_non_floating_heartbeat_machines_are_in_the_sweepers_index(
    quick: Harness,
) -> None:
    for policy, fingerprint in (
        ("chartgpt-heartbeat", "indexed-0001"),
        ("chartgpt-floating", "indexed-0002"),
        ("chartgpt-lifetime", "indexed-0003"),
    ):
        await call(quick, "activate", await a_license(quick, policy), fingerprint)
    rows = await quick.fetch(
        "SELECT fingerprint_hash, heartbeat_swept FROM activations ORDER BY heartbeat_swept"
    )
    assert [r["heartbeat_swept"] for r in rows] == [False, False, True]
