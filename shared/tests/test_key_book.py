"""The KeyBook on a real NATS: each book follows the APIKEYS stream like a service replica
does (its own ordered consumer), replays at start, and refuses revoked and expired keys;
and the FastAPI dependencies built on it."""

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI
from nats.aio.client import Client

from tessera.shared.api_keys import (
    ExpiredKey,
    IssuedKey,
    KeyBook,
    MalformedKey,
    RevokedKey,
    SecretSellerDep,
    SellerCredential,
    SellerDep,
    UnknownKey,
    generate,
)
from tessera.shared.events.auth import ApiKeyChanged
from tessera.shared.events.topology import APIKEYS, Namespace
from tessera.shared.http.openapi import build_document
from tessera.shared.http.problems import install_problem_handlers
from tessera.shared.messaging import ensure_stream, stream_config

pytestmark = pytest.mark.integration

NATS_URL = os.environ.get("TESSERA_NATS_URL", "nats://127.0.0.1:4222")
SELLER = uuid.UUID("0193a3c0-0000-7000-8000-00000000000a")


def record(
    issued: IssuedKey,
    key_id: uuid.UUID,
    version: int,
    *,
    status: str = "active",
    not_after: datetime | None = None,
    seller_id: uuid.UUID = SELLER,
) -> ApiKeyChanged:
    return ApiKeyChanged(
        key_id=key_id,
        seller_id=seller_id,
        key_hash=issued.hash_hex,
        kind=issued.kind,
        mode=issued.mode,
        status=status,  # type: ignore[arg-type]
        not_after=not_after,
        version=version,
    )


class KeyStream:
    """Auth's side of the stream, as its outbox relay publishes: one subject per key."""

    def __init__(self, url: str, namespace: str) -> None:
        self.url = url
        self.ns = Namespace(namespace)
        self.tasks: list[asyncio.Task[None]] = []
        self.clients: list[Client] = []

    async def declare(self) -> None:
        nc = await nats.connect(self.url)
        try:
            await ensure_stream(nc.jetstream(), stream_config(APIKEYS, self.ns))
        finally:
            await nc.close()

    async def publish(self, *records: ApiKeyChanged) -> None:
        nc = await nats.connect(self.url)
        try:
            js = nc.jetstream()
            for r in records:
                await js.publish(
                    self.ns.subject(r.publish_subject()),
                    r.to_json(),
                    stream=self.ns.stream(APIKEYS),
                    headers={"Nats-Msg-Id": str(r.event_id)},
                )
        finally:
            await nc.close()

    async def replica(self, *, wait: bool = True, **book: Any) -> KeyBook:
        """A new KeyBook following the stream on its own connection, like a replica."""
        nc = await nats.connect(self.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        self.clients.append(nc)
        keys = KeyBook(**book)
        self.tasks.append(asyncio.create_task(keys.follow(nc, self.ns, idle_heartbeat=0.5)))
        if wait:
            await asyncio.wait_for(keys.wait_ready(), 10)
        return keys

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for nc in self.clients:
            await nc.close()


@pytest.fixture
async def keys(namespace: str, jetstream_cleanup: None) -> AsyncIterator[KeyStream]:
    stream = KeyStream(NATS_URL, namespace)
    await stream.declare()
    yield stream
    await stream.close()


async def within(seconds: float, condition: Callable[[], bool]) -> float:
    """How long `condition` took to become true; fails after `seconds`."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > seconds:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.002)
    return time.perf_counter() - started


def refuses(book: KeyBook, text: str, error: type[Exception]) -> Callable[[], bool]:
    def check() -> bool:
        try:
            book.check(text)
        except error:
            return True
        except Exception:
            return False
        return False

    return check


async def test_a_created_key_checks_out_with_its_seller_kind_and_mode(keys: KeyStream) -> None:
    book = await keys.replica()
    issued, key_id = generate("secret", "live"), uuid.uuid4()
    await keys.publish(record(issued, key_id, 1))
    await within(5, lambda: len(book) == 1)
    assert book.check(issued.plaintext) == SellerCredential(
        seller_id=SELLER, key_id=key_id, kind="secret", mode="live"
    )


async def test_test_and_live_keys_report_their_mode_and_kind(keys: KeyStream) -> None:
    issued = {
        (kind, mode): generate(kind, mode)  # type: ignore[arg-type]
        for kind in ("publishable", "secret")
        for mode in ("test", "live")
    }
    await keys.publish(*(record(k, uuid.uuid4(), 1) for k in issued.values()))
    book = await keys.replica()
    for (kind, mode), key in issued.items():
        credential = book.check(key.plaintext)
        assert (credential.kind, credential.mode) == (kind, mode)
        assert credential.is_secret == (kind == "secret")


async def test_unknown_and_malformed_keys_are_refused_distinctly(keys: KeyStream) -> None:
    book = await keys.replica()
    never_issued = generate("secret", "test").plaintext
    with pytest.raises(UnknownKey):
        book.check(never_issued)
    with pytest.raises(MalformedKey):
        book.check(never_issued[:-1] + ("a" if never_issued[-1] != "a" else "b"))


async def test_a_revocation_reaches_another_replica_within_a_second(keys: KeyStream) -> None:
    issued, key_id = generate("secret", "live"), uuid.uuid4()
    await keys.publish(record(issued, key_id, 1))
    first, second = await keys.replica(), await keys.replica()
    assert second.check(issued.plaintext).key_id == key_id
    await keys.publish(record(issued, key_id, 2, status="revoked"))
    await within(1.0, refuses(second, issued.plaintext, RevokedKey))
    await within(1.0, refuses(first, issued.plaintext, RevokedKey))


async def test_a_restarted_replica_replays_the_latest_state(keys: KeyStream) -> None:
    revoked, kept = generate("secret", "live"), generate("publishable", "live")
    revoked_id, kept_id = uuid.uuid4(), uuid.uuid4()
    await keys.publish(record(revoked, revoked_id, 1), record(kept, kept_id, 1))
    await keys.publish(record(revoked, revoked_id, 2, status="revoked"))
    await keys.publish(record(kept, kept_id, 2))  # a change that keeps it active
    restarted = await keys.replica()
    with pytest.raises(RevokedKey):
        restarted.check(revoked.plaintext)
    assert restarted.check(kept.plaintext).key_id == kept_id


async def test_ready_means_the_whole_initial_replay_is_in(keys: KeyStream) -> None:
    issued = [generate("secret", "test") for _ in range(300)]
    await keys.publish(*(record(k, uuid.uuid4(), 1) for k in issued))
    book = await keys.replica(wait=False)
    assert not book.ready or len(book) == 300
    await asyncio.wait_for(book.wait_ready(), 10)
    assert len(book) == 300
    for key in issued:
        book.check(key.plaintext)


async def test_a_book_is_not_ready_until_the_stream_exists(namespace: str) -> None:
    stream = KeyStream(NATS_URL, namespace + "x")  # its own namespace: no stream yet
    try:
        book = await stream.replica(wait=False)
        await asyncio.sleep(1.2)
        assert not book.ready
        await stream.declare()
        await asyncio.wait_for(book.wait_ready(), 5)
    finally:
        await stream.close()
        nc = await nats.connect(NATS_URL)
        await nc.jetstream().delete_stream(stream.ns.stream(APIKEYS))
        await nc.close()


async def test_an_older_version_after_a_newer_one_is_ignored(keys: KeyStream) -> None:
    issued, key_id = generate("secret", "live"), uuid.uuid4()
    marker, marker_id = generate("secret", "live"), uuid.uuid4()
    book = await keys.replica()
    await keys.publish(record(issued, key_id, 2, status="revoked"))
    await within(5, refuses(book, issued.plaintext, RevokedKey))
    # The stale "active" v1 arrives late; the marker after it proves it was delivered.
    await keys.publish(record(issued, key_id, 1), record(marker, marker_id, 1))
    await within(5, lambda: len(book) == 2)
    with pytest.raises(RevokedKey):
        book.check(issued.plaintext)
    assert not book.apply(record(issued, key_id, 2))  # the same version again: no change


async def test_a_rotated_key_works_until_not_after_then_is_refused(keys: KeyStream) -> None:
    now = [1_800_000_000.0]
    book = await keys.replica(clock=lambda: now[0])
    old, new = generate("secret", "live"), generate("secret", "live")
    old_id, new_id = uuid.uuid4(), uuid.uuid4()
    await keys.publish(record(old, old_id, 1))
    end = datetime.fromtimestamp(now[0], UTC) + timedelta(hours=24)
    # Rotation: a new key, and the old one's record with the end of the overlap.
    await keys.publish(record(new, new_id, 1), record(old, old_id, 2, not_after=end))
    await within(5, lambda: len(book) == 2 and book.check(new.plaintext).key_id == new_id)
    now[0] = end.timestamp() - 1
    assert book.check(old.plaintext).key_id == old_id
    now[0] = end.timestamp()
    with pytest.raises(ExpiredKey):
        book.check(old.plaintext)
    assert book.check(new.plaintext).key_id == new_id


async def test_the_follower_survives_a_nats_restart(own_nats: Any, namespace: str) -> None:
    stream = KeyStream(own_nats.url, namespace)
    try:
        await stream.declare()
        issued, key_id = generate("secret", "live"), uuid.uuid4()
        await stream.publish(record(issued, key_id, 1))
        book = await stream.replica()
        assert book.check(issued.plaintext).key_id == key_id
        own_nats.stop()
        await asyncio.sleep(0.5)
        own_nats.start()
        revoked = record(issued, key_id, 2, status="revoked")
        for attempt in range(50):  # the port opens a moment before JetStream answers
            try:
                await stream.publish(revoked)
                break
            except nats.errors.Error:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.2)
        await within(15, refuses(book, issued.plaintext, RevokedKey))
    finally:
        await stream.close()


# ---------------------------------------------------------------- the FastAPI dependencies


def seller_app(book: KeyBook | None) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.context = SimpleNamespace(key_book=book)

    @app.get("/any")
    async def any_key(seller: SellerDep) -> dict[str, str]:
        return {"seller": str(seller.seller_id), "mode": seller.mode}

    @app.get("/secret")
    async def secret_only(seller: SecretSellerDep) -> dict[str, str]:
        return {"seller": str(seller.seller_id), "kind": seller.kind}

    return app


Call = Callable[[str, str | None], Awaitable[httpx.Response]]


def caller(app: FastAPI) -> Call:
    async def call(path: str, key: str | None) -> httpx.Response:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            return await client.get(path, headers=headers)

    return call


async def test_a_secret_key_reaches_both_routes_and_a_publishable_key_only_one(
    keys: KeyStream,
) -> None:
    secret, publishable = generate("secret", "test"), generate("publishable", "test")
    await keys.publish(record(secret, uuid.uuid4(), 1), record(publishable, uuid.uuid4(), 1))
    call = caller(seller_app(await keys.replica()))
    ok = await call("/secret", secret.plaintext)
    assert ok.status_code == 200 and ok.json() == {"seller": str(SELLER), "kind": "secret"}
    assert (await call("/any", publishable.plaintext)).json()["mode"] == "test"
    refused = await call("/secret", publishable.plaintext)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:tessera:problem:forbidden"


async def test_every_bad_key_gets_the_same_401_that_never_echoes_it(
    keys: KeyStream, caplog: pytest.LogCaptureFixture
) -> None:
    revoked, expired, unknown = (generate("secret", "live") for _ in range(3))
    past = datetime.now(UTC) - timedelta(minutes=1)
    await keys.publish(
        record(revoked, uuid.uuid4(), 1, status="revoked"),
        record(expired, uuid.uuid4(), 1, not_after=past),
    )
    book = await keys.replica()
    call = caller(seller_app(book))
    typo = revoked.plaintext[:12] + ("x" if revoked.plaintext[12] != "x" else "y")
    typo += revoked.plaintext[13:]
    bad: dict[str, str | None] = {
        "missing": None,
        "empty": "",
        "malformed": typo,
        "unknown": unknown.plaintext,
        "revoked": revoked.plaintext,
        "expired": expired.plaintext,
        "a jwt": "eyJhbGciOiJFZERTQSJ9.e30.sig",
    }
    caplog.set_level(logging.DEBUG)
    bodies = []
    for name, key in bad.items():
        response = await call("/any", key)
        assert response.status_code == 401, name
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        body = response.json()
        bodies.append((body["type"], body["title"], body["detail"]))
        for leaked in filter(None, [key]):
            assert leaked not in response.text
    assert len(set(bodies)) == 1, bodies
    assert bodies[0][2] == "A valid API key is required."
    logged = "\n".join(f"{r.getMessage()} {r.__dict__} {r.exc_text or ''}" for r in caplog.records)
    assert "api_keys.refused" in logged  # the refusals were logged ...
    for key in (typo, unknown.plaintext, revoked.plaintext, expired.plaintext):
        assert key not in logged  # ... without any key's text
        assert key[8:40] not in logged


async def test_a_book_still_replaying_answers_503_not_401(namespace: str) -> None:
    stream = KeyStream(NATS_URL, namespace + "y")  # no stream: the book cannot get ready
    try:
        book = await stream.replica(wait=False)
        response = await caller(seller_app(book))("/any", generate("secret", "live").plaintext)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
    finally:
        await stream.close()


async def test_an_app_without_a_key_book_refuses_with_401() -> None:
    response = await caller(seller_app(None))("/any", generate("secret", "live").plaintext)
    assert response.status_code == 401


def test_the_openapi_document_shows_which_routes_take_which_key() -> None:
    document = build_document(seller_app(None), include_admin=True)
    secret = document["paths"]["/secret"]["get"]
    either = document["paths"]["/any"]["get"]
    assert secret["security"] == either["security"] == [{"apiKey": []}]
    assert {"401", "403", "503"} <= set(secret["responses"])
    assert {"401", "503"} <= set(either["responses"]) and "403" not in either["responses"]
    assert secret["responses"]["403"]["content"]["application/problem+json"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"]["scheme"] == "bearer" and "bearer" not in schemes
