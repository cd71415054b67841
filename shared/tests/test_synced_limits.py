"""The in-memory limiter synced through real Redis: exact in a process, shared by replicas
after a sync, a sliding window across the boundary, and local limiting when Redis is down."""

import asyncio

import pytest
from redis.asyncio import Redis

from tessera.shared.http.problems import RateLimited
from tessera.shared.redis import key_prefix
from tessera.shared.synced_limits import Rule, SyncedLimiter

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(redis: Redis, namespace: str, clock: Clock | None = None) -> SyncedLimiter:
    return SyncedLimiter(redis, key_prefix("test", namespace), clock=clock or Clock(6000.0))


async def test_a_burst_lets_exactly_the_limit_through_and_says_when_to_retry(
    redis: Redis, namespace: str
) -> None:
    clock = Clock(6000.0)  # the start of a minute window
    replica = limiter(redis, namespace, clock)
    rule = Rule("validate", 5, 60)
    decisions = [replica.hit((rule, "203.0.113.9")) for _ in range(12)]
    assert {(d.allowed, d.retry_after) for d in decisions[:5]} == {(True, 0)}
    assert {(d.allowed, d.retry_after) for d in decisions[5:]} == {(False, 60)}
    clock.now += 45
    with pytest.raises(RateLimited) as refused:
        replica.enforce((rule, "203.0.113.9"))
    assert refused.value.headers["Retry-After"] == "15"
    assert replica.hit((rule, "198.51.100.1")).allowed  # another caller has its own budget


async def test_standing_says_what_hit_would_allow_and_when_the_window_ends(
    redis: Redis, namespace: str
) -> None:
    clock = Clock(6000.0)
    replica = limiter(redis, namespace, clock)
    rule = Rule("usage", 3, 60)
    assert replica.standing(rule, "c") == (3, 60)
    replica.hit((rule, "c"))
    replica.hit((rule, "c"))
    clock.now += 20
    assert replica.standing(rule, "c") == (1, 40)
    replica.hit((rule, "c"))
    assert replica.standing(rule, "c") == (0, 40)
    assert not replica.hit((rule, "c")).allowed
    # Next window: the previous one's 3 weigh by the share of it still overlapping.
    clock.now = 6090.0
    assert replica.standing(rule, "c") == (1, 30)  # 3 - ceil(3 x 0.5)
    assert replica.standing(rule, "other") == (3, 30)


async def test_a_refusal_by_one_rule_counts_against_none(redis: Redis, namespace: str) -> None:
    replica = limiter(redis, namespace)
    per_ip, per_key = Rule("ip", 2, 60), Rule("key", 10, 60)
    assert replica.hit((per_ip, "a"), (per_key, "k")).allowed
    assert replica.hit((per_ip, "a"), (per_key, "k")).allowed
    assert replica.hit((per_ip, "a"), (per_key, "k")).retry_after > 0
    for ip in "bcdefghi":
        assert replica.hit((per_ip, ip), (per_key, "k")).allowed
    assert (
        replica.hit((per_ip, "z"), (per_key, "k")).retry_after > 0
    )  # 10 counted on the key, not 11


async def test_replicas_share_one_budget_through_redis(redis: Redis, namespace: str) -> None:
    clock = Clock(6000.0)
    a, b = limiter(redis, namespace, clock), limiter(redis, namespace, clock)
    rule = Rule("shared", 10, 60)
    assert [a.hit((rule, "k")).allowed for _ in range(6)].count(True) == 6
    await a.sync()
    await b.sync()
    assert [b.hit((rule, "k")).allowed for _ in range(6)].count(
        True
    ) == 6  # b has not heard of a yet
    await b.sync()  # b pushes its 6 and learns the total: 12
    assert b.hit((rule, "k")).retry_after > 0
    await a.sync()  # nothing new to push, so a learns nothing yet
    assert a.hit((rule, "k")).allowed  # a believes 7
    await a.sync()
    assert a.hit((rule, "k")).retry_after > 0
    assert int(await redis.get(f"{key_prefix('test', namespace)}rls:shared:k:100") or 0) == 13


async def test_concurrent_replicas_overshoot_by_at_most_one_sync_of_the_others(
    redis: Redis, namespace: str
) -> None:
    clock = Clock(6000.0)
    replicas = [limiter(redis, namespace, clock) for _ in range(3)]
    rule = Rule("flood", 30, 60)

    async def client(replica: SyncedLimiter) -> int:
        allowed = 0
        for _ in range(40):
            allowed += replica.hit((rule, "k")).allowed
            await asyncio.sleep(0)
        return allowed

    async def syncing() -> None:
        for _ in range(20):
            await asyncio.gather(*(r.sync() for r in replicas))
            await asyncio.sleep(0)

    results, _ = await asyncio.gather(asyncio.gather(*(client(r) for r in replicas)), syncing())
    assert 30 <= sum(results) <= 30 + 2 * 40  # within one unsynced round of the others
    for replica in replicas:
        await replica.sync()
    assert all(r.hit((rule, "k")).retry_after > 0 for r in replicas)


async def test_the_previous_window_still_weighs_after_the_boundary(
    redis: Redis, namespace: str
) -> None:
    clock = Clock(6000.0)
    replica = limiter(redis, namespace, clock)
    rule = Rule("slide", 10, 60)
    assert [replica.hit((rule, "k")).allowed for _ in range(10)].count(True) == 10
    clock.now += 60 + 15  # a quarter into the next window: 75% of the last one still counts
    assert [replica.hit((rule, "k")).allowed for _ in range(10)].count(True) == 2


async def test_with_redis_down_each_replica_keeps_limiting_and_catches_up_later(
    redis: Redis, namespace: str
) -> None:
    down = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    clock = Clock(6000.0)
    replica = SyncedLimiter(down, key_prefix("test", namespace), clock=clock)
    rule = Rule("outage", 4, 60)
    assert [replica.hit((rule, "k")).allowed for _ in range(6)].count(True) == 4
    await replica.sync()  # fails quietly; the hits stay counted here
    assert replica.hit((rule, "k")).retry_after > 0
    replica.redis = redis
    await replica.sync()
    assert int(await redis.get(f"{key_prefix('test', namespace)}rls:outage:k:100") or 0) == 4
    await down.aclose()


async def test_a_long_outage_keeps_only_the_hits_that_still_count(
    redis: Redis, namespace: str
) -> None:
    down = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    clock = Clock(6000.0)  # window 100 of a minute rule
    prefix = key_prefix("test", namespace)
    replica = SyncedLimiter(down, prefix, clock=clock)
    rule = Rule("long", 100, 60)
    for _ in range(4):
        replica.hit((rule, "k"))
    clock.now += 60  # window 101
    replica.hit((rule, "k"))
    await replica.sync()  # Redis still down: window 100's hits are kept for later
    clock.now += 180  # window 104: windows 100 and 101 no longer weigh on anything
    replica.hit((rule, "k"))
    replica.redis = redis
    await replica.sync()
    assert await redis.get(f"{prefix}rls:long:k:100") is None
    assert await redis.get(f"{prefix}rls:long:k:101") is None
    assert int(await redis.get(f"{prefix}rls:long:k:104") or 0) == 1
    await down.aclose()


async def test_an_undone_hit_gives_its_place_back(redis: Redis, namespace: str) -> None:
    replica = limiter(redis, namespace)
    rule = Rule("undo", 2, 60)
    assert replica.hit((rule, "k")).allowed
    assert replica.hit((rule, "k")).allowed
    replica.undo((rule, "k"))
    assert replica.hit((rule, "k")).allowed
    assert replica.hit((rule, "k")).retry_after > 0


async def test_every_window_key_expires_and_a_settled_previous_window_is_not_read_again(
    redis: Redis, namespace: str
) -> None:
    clock = Clock(6000.0)
    a, b = limiter(redis, namespace, clock), limiter(redis, namespace, clock)
    rule = Rule("ttl", 100, 60)
    prefix = key_prefix("test", namespace)
    for replica in (a, b):  # the second replica's push finds the key and keeps its expiry
        replica.hit((rule, "k"))
        await replica.sync()
    assert 0 < await redis.ttl(f"{prefix}rls:ttl:k:100") <= 121
    clock.now += 60  # the next window: its previous one (100) holds 2
    a.hit((rule, "k"))
    await a.sync()
    assert 0 < await redis.ttl(f"{prefix}rls:ttl:k:101") <= 121
    assert a._counters["ttl:k"].previous == 2
    # After two reads the previous window is settled: a change to it is no longer fetched.
    await redis.incrby(f"{prefix}rls:ttl:k:100", 50)
    a.hit((rule, "k"))
    await a.sync()
    a.hit((rule, "k"))
    await a.sync()
    assert a._counters["ttl:k"].previous == 52  # the second read saw the late hits
    await redis.incrby(f"{prefix}rls:ttl:k:100", 50)
    a.hit((rule, "k"))
    await a.sync()
    assert a._counters["ttl:k"].previous == 52


async def test_a_hit_undone_after_it_was_synced_is_taken_back_in_redis_too(
    redis: Redis, namespace: str
) -> None:
    clock = Clock(6000.0)
    a, b = limiter(redis, namespace, clock), limiter(redis, namespace, clock)
    rule = Rule("late-undo", 2, 60)
    key = f"{key_prefix('test', namespace)}rls:late-undo:k:100"
    assert a.hit((rule, "k")).allowed
    assert a.hit((rule, "k")).allowed
    await a.sync()
    assert int(await redis.get(key) or 0) == 2
    a.undo((rule, "k"))  # the request went elsewhere after its hit had been pushed
    assert a.hit((rule, "k")).allowed  # its place is free again here
    a.undo((rule, "k"))
    await a.sync()
    assert int(await redis.get(key) or 0) == 1
    await b.sync()
    b.hit((rule, "k"))
    await b.sync()
    assert b.hit((rule, "k")).retry_after > 0  # 2 in all: one undone hit does not count anywhere
