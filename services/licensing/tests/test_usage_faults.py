"""Usage metering under attack (issue 18 part 3; docs/usage.md, "Exact and durable"): Redis
killed and restarted mid-run, a replica killed mid-run and replaced while its clients retry,
NATS stopped and started under records. After each, every counter is reconciled with the
record rows in Postgres: no unit lost, none doubled, never over the limit.

Every test here runs on a Redis and a NATS of its own (killing the shared ones would break
every other test on the machine), on real Postgres."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import nats
import pytest
from licensing_factories import Harness  # type: ignore[import-not-found]
from redis import exceptions as redis_errors
from test_usage import (  # type: ignore[import-not-found]
    Seller,
    reconcile,
    seller_for,
    used,
)

from tessera.devstack.infra import Server, free_port, start_redis
from tessera.shared.api_keys import generate
from tessera.shared.events.auth import ApiKeyChanged
from tessera.shared.events.billing import SubscriptionGrants, SubscriptionStarted
from tessera.shared.events.topology import APIKEYS, BILLING, Namespace
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
THRESHOLD = "licensing.usage.threshold_reached.v1"


class OwnRedis:
    """A redis-server of the test's own, which the test may kill -9 and start again on the
    same port (the service's client reconnects to the same address)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.server: Server = start_redis(root, self.port)

    @property
    def url(self) -> str:
        return self.server.url

    def kill(self) -> None:
        assert self.server.process is not None
        self.server.process.kill()  # SIGKILL: no shutdown, no save
        self.server.process.wait(timeout=10)

    def restart(self) -> None:
        self.server = start_redis(self.root, self.port)

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def infra_settings(
    infra_settings: InfraSettings, own_redis: OwnRedis, own_nats: Any
) -> InfraSettings:
    return infra_settings.model_copy(update={"redis_url": own_redis.url, "nats_url": own_nats.url})


async def burst(seller: Seller, account: UUID, keys: list[str]) -> dict[str, httpx.Response]:
    """One concurrent record per key."""
    answers = await asyncio.gather(*(seller.record(account, key=key) for key in keys))
    return dict(zip(keys, answers, strict=True))


async def records_of(h: Harness, account: UUID) -> list[str]:
    rows = await h.fetch("SELECT idempotency_key FROM usage_records WHERE account_id = $1", account)
    return sorted(r["idempotency_key"] for r in rows)


# --- (a) Redis killed and restarted mid-run ---------------------------------------------------


async def test_redis_killed_and_restarted_mid_run_counts_every_unit_once_within_the_limit(
    harness: Harness, own_redis: OwnRedis
) -> None:
    seller = await seller_for(harness)
    limit = 120
    account = await seller.subscriber(limit=limit, rate=1_000_000)
    rated = await seller.subscriber(limit=1_000, rate=5)
    keys = [f"redis-attack-{i}" for i in range(200)]
    redis = harness.app.state.context.redis

    before = await burst(seller, account, keys[:60])
    own_redis.kill()
    with pytest.raises(redis_errors.ConnectionError):
        await redis.ping()
    down = await burst(seller, account, keys[60:110])
    # The rate is still decided, from the replica's memory: fails open only as far as
    # sharing goes (what other replicas counted while Redis was away is not seen).
    rated_down = [(await seller.record(rated)).status_code for _ in range(7)]
    own_redis.restart()

    async def back() -> bool:
        try:
            return bool(await redis.ping())
        except Exception:
            return False

    await harness.until(back)
    after = await burst(seller, account, keys[110:])
    answers = {**before, **down, **after}

    # While Redis was down every answer was a clear one: counted, or over the limit.
    # (The first 110 fit in the limit, so here each was counted.)
    assert [a.status_code for a in down.values()] == [200] * 50, [a.text for a in down.values()]
    assert rated_down == [200] * 5 + [429] * 2
    statuses = Counter(a.status_code for a in answers.values())
    assert statuses == Counter({200: limit, 403: len(keys) - limit})
    counted = sorted(k for k, a in answers.items() if a.status_code == 200)
    assert await records_of(harness, account) == counted
    assert await used(harness, account) == limit
    assert sorted(a.json()["used"] for a in answers.values() if a.status_code == 200) == list(
        range(1, limit + 1)
    )

    # Every retry, once Redis is back: the accepted replay, the refused stay refused.
    retried = await burst(seller, account, keys)
    assert all(retried[k].json()["replayed"] for k in counted)
    assert {retried[k].status_code for k in keys if k not in counted} == {403}
    assert await used(harness, account) == limit
    assert await reconcile(harness) == []


# --- (b) a replica killed mid-run and replaced ------------------------------------------------


class Replica:
    """Licensing as a real process (the kernel's uvicorn server, as production runs it)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tessera.shared.http.server", "tessera.licensing.app:create_app",
             "--host", "127.0.0.1", "--port", str(self.port)],
            env={**os.environ, **env}, cwd=REPO, stdout=self.log, stderr=self.log,
        )  # fmt: skip

    async def ready(self, probe: dict[str, Any], auth: dict[str, str]) -> None:
        """Up, its key book holding the key and the customer's tier applied."""
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, "the replica exited"
                try:
                    answer = await client.post("/v1/usage/check", json=probe, headers=auth)
                    if answer.status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("the replica never answered")

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: requests in flight are cut off, nothing shuts down
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.log.close()


async def announce(nats_url: str, ns: Namespace, account: UUID, limit: int) -> str:
    """A test-mode secret key (no platform plan to stand in for) (as auth publishes it) and a subscription metering `api_calls` up to
    `limit` (as billing announces it); the key's text."""
    seller = uuid.uuid4()
    issued = generate("secret", "test")
    key = ApiKeyChanged(
        seller_id=seller, mode="test", key_id=uuid.uuid4(), key_hash=issued.hash_hex,
        kind="secret", status="active", version=1,
    )  # fmt: skip
    now = datetime.now(UTC)
    subscription = SubscriptionStarted(
        seller_id=seller, mode="test", subscription_id=f"sub_{account.hex[:12]}", sequence=1,
        account_id=account, product="tool", tier="metered",
        grants=SubscriptionGrants(quotas={"api_calls": {"limit": limit}}), interval="month",
        status="active", current_period_start=now - timedelta(days=1),
        current_period_end=now + timedelta(days=29), started_at=now - timedelta(days=1),
    )  # fmt: skip
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.publish(
            ns.subject(key.publish_subject()), key.to_json(), stream=ns.stream(APIKEYS)
        )
        await js.publish(
            ns.subject(subscription.subject), subscription.to_json(), stream=ns.stream(BILLING)
        )
    finally:
        await nc.close()
    return issued.plaintext


async def test_a_replica_killed_mid_run_and_replaced_counts_each_retried_key_once(
    all_streams: None, database_url: str, infra_settings: InfraSettings, tmp_path: Path,
    fetch_all: Any,
) -> None:  # fmt: skip
    ns = Namespace(infra_settings.namespace)
    account, limit, total = uuid.uuid4(), 150, 240
    secret = await announce(str(infra_settings.nats_url), ns, account, limit)
    auth = {"authorization": f"Bearer {secret}"}
    env = {
        "TESSERA_NATS_URL": str(infra_settings.nats_url),
        "TESSERA_REDIS_URL": str(infra_settings.redis_url),
        "TESSERA_NAMESPACE": infra_settings.namespace,
        "TESSERA_LICENSING_DATABASE_URL": database_url,
        "TESSERA_LOG_LEVEL": "WARNING",
    }
    probe = {"customer": str(account), "feature": "api_calls"}
    replicas = [Replica(env, tmp_path / "replica-1.log")]
    try:
        await replicas[0].ready(probe, auth)
        pending = [f"crash-{i}" for i in range(total)]
        final: dict[str, httpx.Response] = {}
        attempts: Counter[str] = Counter()
        crashed = asyncio.Event()

        async def client() -> None:
            """Sends its keys one after another; an unanswered one again, with its key."""
            async with httpx.AsyncClient(timeout=10) as http:
                while pending:
                    key = pending.pop()
                    while key not in final:
                        attempts[key] += 1
                        body = {**probe, "idempotency_key": key}
                        try:
                            answer = await http.post(
                                f"{replicas[-1].url}/v1/usage", json=body, headers=auth
                            )
                        except httpx.TransportError:
                            await asyncio.sleep(0.05)  # the replica is gone: retry, same key
                            continue
                        assert answer.status_code in (200, 403), answer.text
                        final[key] = answer
                        if len(final) == 60 and not crashed.is_set():
                            crashed.set()

        async def crash() -> None:
            await crashed.wait()
            replicas[0].kill()  # 32 clients have records in flight
            replicas.append(Replica(env, tmp_path / "replica-2.log"))
            await replicas[-1].ready(probe, auth)

        await asyncio.gather(crash(), *(client() for _ in range(32)))
    finally:
        for replica in replicas:
            replica.stop()

    assert sorted(final) == sorted(f"crash-{i}" for i in range(total))
    assert sum(attempts.values()) > total, "no request was cut off by the crash"
    accepted = sorted(k for k, a in final.items() if a.status_code == 200)
    assert len(accepted) == limit
    rows = await fetch_all(
        database_url, "SELECT idempotency_key FROM usage_records WHERE account_id = $1", account
    )
    assert sorted(r["idempotency_key"] for r in rows) == accepted
    counter = await fetch_all(
        database_url, "SELECT used FROM usage_counters WHERE account_id = $1", account
    )
    assert [r["used"] for r in counter] == [limit]
    # Each accepted record's answer named a distinct total: none counted twice.
    assert sorted(final[k].json()["used"] for k in accepted) == list(range(1, limit + 1))


@pytest.fixture
def fetch_all() -> Any:
    import asyncpg

    async def fetch(url: str, sql: str, *args: Any) -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return fetch


# --- (c) NATS is not in the counting path -----------------------------------------------------


async def test_records_are_exact_with_nats_down_and_thresholds_go_out_once_it_is_back(
    harness: Harness, own_nats: Any, licensing_stream: str
) -> None:
    seller = await seller_for(harness)
    limit = 10
    account = await seller.subscriber(limit=limit)
    own_nats.stop()

    answers = await burst(seller, account, [f"nats-down-{i}" for i in range(40)])

    assert Counter(a.status_code for a in answers.values()) == Counter({200: limit, 403: 30})
    assert await used(harness, account) == limit
    assert await reconcile(harness) == []
    pending = await harness.fetch(
        "SELECT payload FROM outbox WHERE subject = $1 AND published_at IS NULL", THRESHOLD
    )
    assert sorted(json.loads(r["payload"])["threshold"] for r in pending) == [80, 100]

    own_nats.start()

    async def published() -> bool:
        left = await harness.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = $1 AND published_at IS NULL", THRESHOLD
        )
        return bool(left == 0)

    await harness.until(published, timeout=60)
    nc = await nats.connect(own_nats.url)
    try:
        js = nc.jetstream()
        subject = harness.ns.subject(THRESHOLD)
        sub = await js.pull_subscribe(subject, stream=licensing_stream)
        messages = await sub.fetch(10, timeout=5)
        with pytest.raises(nats.errors.TimeoutError):
            messages += await sub.fetch(10, timeout=1)  # nothing more: each went out once
    finally:
        await nc.close()
    events = [json.loads(m.data) for m in messages]
    assert sorted(e["threshold"] for e in events) == [80, 100]
    assert {e["account_id"] for e in events} == {str(account)}
