"""The seller directory: `SellerBook` following the SELLERS record stream on a real NATS, in
two "replicas" at once, and the access-token verifier resolving `sel`/`mod` through it."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import jwt
import nats
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.aio.client import Client

from tessera.shared.directory import SellerBook, follow_with_own_connection
from tessera.shared.directory import sellers as directory_sellers
from tessera.shared.events.auth import SellerChanged, SellerSettings
from tessera.shared.events.topology import SELLERS, Namespace
from tessera.shared.messaging import ensure_stream, stream_config
from tessera.shared.sellers import HOME_LIVE, Tenant
from tessera.shared.tokens import AccessTokenVerifier, DirectoryLoading, JwksCache, Unauthorized

pytestmark = pytest.mark.integration

NATS_URL = os.environ.get("TESSERA_NATS_URL", "nats://127.0.0.1:4222")
SELLER_A = UUID(int=0xA)
SELLER_B = UUID(int=0xB)


def record(seller_id: UUID, slug: str, version: int, **fields: Any) -> SellerChanged:
    values: dict[str, Any] = {
        "name": slug.title(),
        "signup_policy": "closed",
        "status": "active",
        **fields,
    }
    return SellerChanged(seller_id=seller_id, slug=slug, version=version, **values)


@pytest.fixture
async def publisher(namespace: str, jetstream_cleanup: None) -> AsyncIterator[Any]:
    """Publishes records as auth's relay does: one subject per seller, on SELLERS."""
    ns = Namespace(namespace)
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    await ensure_stream(js, stream_config(SELLERS, ns))

    async def publish(event: SellerChanged) -> None:
        await js.publish(
            ns.subject(event.publish_subject()), event.to_json(), stream=ns.stream(SELLERS)
        )

    yield publish
    await nc.close()


@pytest.fixture
async def replicas(namespace: str) -> AsyncIterator[Any]:
    """`await replicas(n)`: n books, each following on its own NATS connection."""
    tasks: list[asyncio.Task[None]] = []

    async def start(count: int) -> list[SellerBook]:
        books = [SellerBook() for _ in range(count)]
        for n, book in enumerate(books):
            follow = follow_with_own_connection(
                book.follower, NATS_URL, Namespace(namespace), f"replica-{n}"
            )
            tasks.append(asyncio.create_task(follow))
        return books

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "never happened"
        await asyncio.sleep(0.01)


async def test_two_replicas_replay_then_follow_the_latest_record_of_each_seller(
    publisher: Any, replicas: Any
) -> None:
    await publisher(record(SELLER_A, "alpha", 1))
    await publisher(record(SELLER_A, "alpha", 2, name="Alpha Renamed"))
    await publisher(record(SELLER_B, "bravo", 1))
    books = await replicas(2)
    await until(lambda: all(b.ready for b in books))
    for book in books:  # the replay: only the latest record per seller, nothing else
        assert len(book) == 2
        assert book.by_slug("alpha").name == "Alpha Renamed"  # type: ignore[union-attr]
        assert book.by_id(SELLER_B).slug == "bravo"  # type: ignore[union-attr]
    await publisher(record(SELLER_B, "bravo", 2, status="suspended"))
    await until(lambda: all(not b.by_slug("bravo").active for b in books))  # type: ignore[union-attr]


async def test_an_older_record_delivered_late_changes_nothing(
    publisher: Any, replicas: Any
) -> None:
    [book] = await replicas(1)
    await publisher(record(SELLER_A, "alpha", 3, status="suspended"))
    await until(lambda: book.by_id(SELLER_A) is not None)
    assert not book.apply(record(SELLER_A, "alpha", 2))
    assert not book.apply(record(SELLER_A, "alpha", 3))
    assert book.by_id(SELLER_A).status == "suspended"  # type: ignore[union-attr]


async def test_a_restarted_replica_replays_a_suspension(publisher: Any, replicas: Any) -> None:
    await publisher(record(SELLER_A, "alpha", 1))
    [first] = await replicas(1)
    await until(lambda: first.by_id(SELLER_A) is not None)
    await publisher(record(SELLER_A, "alpha", 2, status="suspended"))
    [restarted] = await replicas(1)
    await until(lambda: restarted.ready)
    assert restarted.by_slug("alpha").status == "suspended"  # type: ignore[union-attr]


async def test_an_empty_directory_is_ready_at_once(
    namespace: str, replicas: Any, publisher: Any
) -> None:
    [book] = await replicas(1)
    await until(lambda: book.ready)
    assert len(book) == 0


def verifier(book: SellerBook | None) -> tuple[AccessTokenVerifier, Ed25519PrivateKey, str]:
    """A verifier holding one key (loaded, no fetch), and that key to sign with."""
    private = Ed25519PrivateKey.generate()
    public = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
    jwks = JwksCache("http://auth.invalid/jwks")
    jwks.load({"keys": [{**public, "kid": "k1"}]})
    return AccessTokenVerifier(jwks, issuer="iss", audience="aud", sellers=book), private, "k1"


def a_token(private: Ed25519PrivateKey, kid: str, **claims: Any) -> str:
    now = int(time.time())
    base = {"iss": "iss", "aud": "aud", "sub": str(UUID(int=1)), "acc": str(UUID(int=2))}
    return jwt.encode(
        {**base, "iat": now, "exp": now + 60, **claims},
        private,
        algorithm="EdDSA",
        headers={"kid": kid},
    )


async def test_the_verifier_sets_the_tenant_from_the_token_s_seller_and_mode(
    publisher: Any, replicas: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directory_sellers, "SETTLING_SECONDS", 0.0)
    await publisher(record(SELLER_A, "alpha", 1))
    await publisher(record(SELLER_B, "bravo", 1, status="suspended"))
    [book] = await replicas(1)
    await until(lambda: book.ready)
    check, key, kid = verifier(book)
    live = await check.verify(a_token(key, kid, sel="alpha", mod="live"))
    test = await check.verify(a_token(key, kid, sel="alpha", mod="test"))
    legacy = await check.verify(a_token(key, kid))
    assert live.tenant == Tenant(SELLER_A, "live") and test.tenant == Tenant(SELLER_A, "test")
    assert legacy.tenant == HOME_LIVE  # a token from before sellers
    for refused in (
        a_token(key, kid, sel="bravo", mod="live"),  # suspended
        a_token(key, kid, sel="nobody", mod="live"),  # unknown
        a_token(key, kid, sel="alpha", mod="staging"),  # no such mode
        a_token(key, kid, mod="test"),  # a mode without a seller
        a_token(key, kid, sel=["alpha"], mod="live"),
    ):
        with pytest.raises(Unauthorized):
            await check.verify(refused)


async def test_a_seller_unknown_before_the_replay_is_a_503_not_a_401() -> None:
    check, key, kid = verifier(SellerBook())  # never followed: never ready
    with pytest.raises(DirectoryLoading):
        await check.verify(a_token(key, kid, sel="alpha", mod="live"))
    bookless, key, kid = verifier(None)
    with pytest.raises(Unauthorized):
        await bookless.verify(a_token(key, kid, sel="alpha", mod="live"))


async def test_a_book_that_just_replayed_waits_a_moment_for_a_seller_it_lacks(
    publisher: Any, replicas: Any
) -> None:
    """At a stack's start a replica can replay an empty stream just before the home
    seller's record lands: a token naming it then waits for it instead of a 401."""
    [book] = await replicas(1)
    await until(lambda: book.ready)
    check, key, kid = verifier(book)
    token = a_token(key, kid, sel="late", mod="live")
    pending = asyncio.create_task(check.verify(token))
    await asyncio.sleep(0.2)
    await publisher(record(SELLER_A, "late", 1))
    assert (await pending).tenant == Tenant(SELLER_A, "live")
    with pytest.raises(DirectoryLoading):  # still settling: unknown is "try again"
        await check.verify(a_token(key, kid, sel="never", mod="live"))


async def test_the_follower_survives_a_nats_restart(own_nats: Any, namespace: str) -> None:
    ns = Namespace(namespace)
    book = SellerBook()

    async def publish(event: SellerChanged) -> None:
        nc: Client = await nats.connect(own_nats.url)
        try:
            js = nc.jetstream()
            await ensure_stream(js, stream_config(SELLERS, ns))
            await js.publish(ns.subject(event.publish_subject()), event.to_json())
        finally:
            await nc.close()

    await publish(record(SELLER_A, "alpha", 1))
    task = asyncio.create_task(follow_with_own_connection(book.follower, own_nats.url, ns, "r"))
    try:
        await until(lambda: book.by_id(SELLER_A) is not None)
        own_nats.stop()
        own_nats.start()
        await publish(record(SELLER_A, "alpha", 2, status="suspended"))
        await until(lambda: not book.by_id(SELLER_A).active, timeout=15)  # type: ignore[union-attr]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_record_from_before_settings_reads_as_the_defaults_and_settings_reach_the_entry() -> None:
    old = json.dumps(
        {"producer": "auth", "seller_id": str(SELLER_A), "slug": "old-shop", "name": "Old",
         "signup_policy": "closed", "status": "active", "version": 1}
    )  # fmt: skip
    # A newer auth's field this reader does not know is ignored, not a refused record.
    newer = record(SELLER_A, "old-shop", 2).model_dump(mode="json")
    newer["settings"] |= {"upgrade_url": "https://old.example/up", "future_field": True}
    book = SellerBook()
    book.apply(SellerChanged.model_validate_json(old))
    before = book.by_id(SELLER_A)
    book.apply(SellerChanged.model_validate(newer))
    after = book.by_id(SELLER_A)
    assert before is not None and before.settings == SellerSettings()
    assert before.settings.past_due_grace_days == 7
    assert before.settings.usage_thresholds == [80, 100]
    assert after is not None and after.settings.upgrade_url == "https://old.example/up"
