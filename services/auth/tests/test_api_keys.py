"""A seller's API keys in auth: pairs made for members and shown once, listed by prefix and
last four, rotated with an overlap, revoked; each change published as `ApiKeyChanged`
(hash only) through the outbox and followed by a separate replica's KeyBook; the CLI's
republish rebuilds a lost stream. Real Postgres, Redis, NATS and SMTP."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import nats
import pytest
from nats.js.api import StreamConfig
from test_sellers import (  # type: ignore[import-not-found]
    audit_actions,
    bearer,
    developer_token,
    seller_id_of,
)

from tessera.auth.api_keys import queries
from tessera.shared.api_keys import (
    ExpiredKey,
    KeyBook,
    KeyRefused,
    RevokedKey,
    UnknownKey,
    hash_key,
)
from tessera.shared.directory import follow_with_own_connection
from tessera.shared.events.topology import APIKEYS, Namespace
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def replica(infra_settings: InfraSettings) -> AsyncIterator[Callable[[], Any]]:
    """`await replica()`: a KeyBook following APIKEYS on its own connection, as another
    service's replica does."""
    tasks: list[asyncio.Task[None]] = []

    async def start() -> KeyBook:
        book = KeyBook()
        follow = follow_with_own_connection(
            book.follower, str(infra_settings.nats_url), Namespace(infra_settings.namespace), "r"
        )
        tasks.append(asyncio.create_task(follow))
        await asyncio.wait_for(book.wait_ready(), 20)
        return book

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def refused_within(seconds: float, book: KeyBook, key: str, error: type[Exception]) -> float:
    """Seconds until `book` refuses `key` with `error`. Any other answer (accepted, or
    unknown because the outbox has not yet delivered the key) means not yet."""
    started = time.perf_counter()
    while True:
        try:
            book.check(key)
        except error:
            return time.perf_counter() - started
        except KeyRefused:
            pass
        assert time.perf_counter() - started < seconds, f"{error.__name__} not within {seconds} s"
        await asyncio.sleep(0.005)


async def accepted_within(seconds: float, book: KeyBook, key: str) -> None:
    deadline = time.perf_counter() + seconds
    while True:
        try:
            book.check(key)
            return
        except UnknownKey:
            assert time.perf_counter() < deadline, "the key never reached the replica"
            await asyncio.sleep(0.01)


async def new_pair(h: Any, token: str, slug: str, name: str = "prod", mode: str = "live") -> Any:
    made = await h.client.post(
        f"/v1/sellers/{slug}/keys", json={"name": name, "mode": mode}, headers=bearer(token)
    )
    assert made.status_code == 201, made.text
    return made.json()


async def followed_pair(h: Any, replica: Any, slug: str) -> tuple[str, Any, KeyBook]:
    """A new seller's owner token, a live pair, and another replica's book that holds it."""
    token = await developer_token(h, h.new_email(), slug)
    pair = await new_pair(h, token, slug)
    other = await replica()
    await accepted_within(5, other, pair["secret"]["key"])
    return token, pair, other


async def test_a_member_makes_a_pair_shown_once_and_listed_by_prefix_and_last_four(
    harness: Any, replica: Any
) -> None:
    async with harness() as h:
        token = await developer_token(h, h.new_email(), "keys-once")
        made = await new_pair(h, token, "keys-once", "staging", "test")
        listed = await h.client.get("/v1/sellers/keys-once/keys", headers=bearer(token))
        seller_id = await seller_id_of(h, "keys-once")
        pk, sk = made["publishable"]["key"], made["secret"]["key"]
        own = h.auth.key_book.check(sk)
        other = await replica()
        await accepted_within(5, other, pk)
        stored = await h.auth.pool.fetch(
            "SELECT key_hash, version FROM api_keys WHERE pair_id = $1", UUID(made["pair_id"])
        )
        actions = await audit_actions(h, seller_id)
    assert pk.startswith("pk_test_") and sk.startswith("sk_test_")
    assert made["name"] == "staging" and made["mode"] == "test"
    assert own.seller_id == seller_id and own.kind == "secret" and own.mode == "test"
    assert other.check(pk).kind == "publishable"
    # Stored and published as hashes only; listed without the keys.
    assert {bytes(r["key_hash"]) for r in stored} == {hash_key(pk), hash_key(sk)}
    assert {r["version"] for r in stored} == {1}
    assert listed.status_code == 200
    assert pk not in listed.text and sk not in listed.text
    shown = {k["kind"]: k for k in listed.json()["keys"]}
    assert shown["secret"]["prefix"] == "sk_test_" and shown["secret"]["last4"] == sk[-4:]
    assert shown["publishable"]["last4"] == pk[-4:]
    assert {k["status"] for k in shown.values()} == {"active"}
    assert {k["name"] for k in shown.values()} == {"staging"}
    assert all(k["last_used_at"] is None and k["not_after"] is None for k in shown.values())
    assert "api_key.created" in actions


async def test_keys_of_another_seller_are_out_of_reach(harness: Any) -> None:
    async with harness() as h:
        owner_a = await developer_token(h, h.new_email(), "keys-a")
        owner_b = await developer_token(h, h.new_email(), "keys-b")
        pair_a = await new_pair(h, owner_a, "keys-a")
        listed = await h.client.get("/v1/sellers/keys-a/keys", headers=bearer(owner_b))
        made = await h.client.post(
            "/v1/sellers/keys-a/keys", json={"name": "x", "mode": "live"}, headers=bearer(owner_b)
        )
        # B names A's pair under its own slug: not B's pair.
        revoked = await h.client.delete(
            f"/v1/sellers/keys-b/keys/{pair_a['pair_id']}", headers=bearer(owner_b)
        )
        rotated = await h.client.post(
            f"/v1/sellers/keys-b/keys/{pair_a['pair_id']}/rotate",
            json={"overlap_seconds": 0},
            headers=bearer(owner_b),
        )
        anonymous = await h.client.get("/v1/sellers/keys-a/keys")
        still = h.auth.key_book.check(pair_a["secret"]["key"])
        count = await h.auth.pool.fetchval("SELECT count(*) FROM api_keys")
    assert listed.status_code == made.status_code == 404
    assert revoked.status_code == rotated.status_code == 404
    assert anonymous.status_code == 401
    assert still.key_id == UUID(pair_a["secret"]["id"])
    assert count == 2


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "mode": "live"},
        {"name": "x" * 65, "mode": "live"},
        {"name": "prod", "mode": "production"},
        {"name": "prod", "mode": "live", "seller_id": "00000000-0000-4000-8000-000000000001"},
    ],
    ids=["empty-name", "long-name", "unknown-mode", "extra-field"],
)
async def test_a_bad_pair_request_is_a_422_and_makes_nothing(harness: Any, body: Any) -> None:
    async with harness() as h:
        token = await developer_token(h, h.new_email(), "keys-bad")
        answer = await h.client.post("/v1/sellers/keys-bad/keys", json=body, headers=bearer(token))
        count = await h.auth.pool.fetchval("SELECT count(*) FROM api_keys")
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert count == 0


async def test_rotation_keeps_the_old_pair_for_the_overlap_then_refuses_it(
    harness: Any, replica: Any
) -> None:
    async with harness() as h:
        token, old, other = await followed_pair(h, replica, "keys-rotate")
        too_long = await h.client.post(
            f"/v1/sellers/keys-rotate/keys/{old['pair_id']}/rotate",
            json={"overlap_seconds": 7 * 24 * 3600 + 1},
            headers=bearer(token),
        )
        rotated = await h.client.post(
            f"/v1/sellers/keys-rotate/keys/{old['pair_id']}/rotate",
            json={"overlap_seconds": 2},
            headers=bearer(token),
        )
        assert rotated.status_code == 201, rotated.text
        new = rotated.json()
        await accepted_within(5, other, new["secret"]["key"])
        # Both pairs work during the overlap, here and at the other replica.
        for book in (h.auth.key_book, other):
            book.check(old["secret"]["key"])
            book.check(new["secret"]["key"])
        listed = await h.client.get("/v1/sellers/keys-rotate/keys", headers=bearer(token))
        waited = await refused_within(5, other, old["secret"]["key"], ExpiredKey)
        h.auth.key_book.check(new["publishable"]["key"])
        versions = await h.auth.pool.fetch(
            "SELECT pair_id, version FROM api_keys ORDER BY created_at"
        )
        again = await h.client.post(
            f"/v1/sellers/keys-rotate/keys/{new['pair_id']}/rotate",
            json={"overlap_seconds": 0},
            headers=bearer(token),
        )
        at_once = h.auth.key_book
        with pytest.raises(ExpiredKey):
            at_once.check(new["secret"]["key"])
    assert too_long.status_code == 422
    assert new["name"] == "prod" and new["mode"] == "live" and new["pair_id"] != old["pair_id"]
    assert 0.5 < waited < 3.5
    by_pair = {str(r["pair_id"]): r["version"] for r in versions}
    assert by_pair[old["pair_id"]] == 2 and by_pair[new["pair_id"]] == 1
    overlap = [k for k in listed.json()["keys"] if k["pair_id"] == old["pair_id"]]
    assert len(overlap) == 2 and all(k["not_after"] for k in overlap)
    assert again.status_code == 201


async def test_revoking_a_pair_refuses_it_at_another_replica_within_a_second(
    harness: Any, replica: Any
) -> None:
    async with harness() as h:
        token, pair, other = await followed_pair(h, replica, "keys-revoke")
        revoked = await h.client.delete(
            f"/v1/sellers/keys-revoke/keys/{pair['pair_id']}", headers=bearer(token)
        )
        took = await refused_within(1.0, other, pair["secret"]["key"], RevokedKey)
        await refused_within(1.0, other, pair["publishable"]["key"], RevokedKey)
        with pytest.raises(RevokedKey):
            h.auth.key_book.check(pair["secret"]["key"])
        twice = await h.client.delete(
            f"/v1/sellers/keys-revoke/keys/{pair['pair_id']}", headers=bearer(token)
        )
        listed = await h.client.get("/v1/sellers/keys-revoke/keys", headers=bearer(token))
        actions = await audit_actions(h, await seller_id_of(h, "keys-revoke"))
    assert revoked.status_code == 204
    assert took < 1.0
    assert twice.status_code == 404
    assert {k["status"] for k in listed.json()["keys"]} == {"revoked"}
    assert "api_key.revoked" in actions


async def test_republish_rebuilds_a_lost_stream(
    harness: Any, replica: Any, infra_settings: InfraSettings
) -> None:
    async with harness() as h:
        token = await developer_token(h, h.new_email(), "keys-lost")
        kept = await new_pair(h, token, "keys-lost")
        gone = await new_pair(h, token, "keys-lost", "old")
        await h.client.delete(
            f"/v1/sellers/keys-lost/keys/{gone['pair_id']}", headers=bearer(token)
        )
        first = await replica()
        await refused_within(5, first, gone["secret"]["key"], RevokedKey)
        await accepted_within(5, first, kept["secret"]["key"])
        # The stream is lost: purged, as a rebuilt NATS would hold it empty.
        nc = await nats.connect(str(infra_settings.nats_url))
        try:
            js = nc.jetstream()
            name = Namespace(infra_settings.namespace).stream(APIKEYS)
            await js.purge_stream(name)
            info = await js.stream_info(name)
            assert isinstance(info.config, StreamConfig) and info.state.messages == 0
            held_after_loss = len(await replica())
            # The operator's command, as run: a process of its own on auth's database.
            cli = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "tessera-auth"), "api-keys", "republish",
                env={**os.environ, "TESSERA_AUTH_DATABASE_URL": str(h.auth.settings.database_url)},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(cli.communicate(), 60)
            assert cli.returncode == 0, err.decode()
            deadline = time.perf_counter() + 10
            while await h.auth.pool.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            ):
                assert time.perf_counter() < deadline, "the relay never published them"
                await asyncio.sleep(0.02)
            rebuilt = await replica()
        finally:
            await nc.close()
    assert out.decode().strip() == "4 key records queued for publishing"
    assert held_after_loss == 0 and len(rebuilt) == 4
    assert rebuilt.check(kept["secret"]["key"]).kind == "secret"
    with pytest.raises(RevokedKey):
        rebuilt.check(gone["secret"]["key"])


async def test_last_used_reaches_the_listing_and_only_moves_forward(harness: Any) -> None:
    async with harness() as h:
        h.auth.key_use_seconds = 0.1
        token = await developer_token(h, h.new_email(), "keys-used")
        await h.pay_plan(await seller_id_of(h, "keys-used"))
        pair = await new_pair(h, token, "keys-used")
        await asyncio.wait_for(h.auth.key_book.wait_ready(), 20)
        used = await h.client.get("/v1/customers", headers=bearer(pair["secret"]["key"]))
        assert used.status_code == 200, used.text
        deadline = time.perf_counter() + 10
        while True:
            listed = await h.client.get("/v1/sellers/keys-used/keys", headers=bearer(token))
            shown = {k["kind"]: k for k in listed.json()["keys"]}
            if shown["secret"]["last_used_at"] is not None:
                break
            assert time.perf_counter() < deadline, "last_used_at never arrived"
            await asyncio.sleep(0.25)
        key_id = UUID(pair["secret"]["id"])
        before = await h.auth.pool.fetchval(
            "SELECT last_used_at FROM api_keys WHERE id = $1", key_id
        )
        moved = await queries.note_used(h.auth.pool, [(key_id, before - timedelta(hours=1))])
        after = await h.auth.pool.fetchval(
            "SELECT last_used_at FROM api_keys WHERE id = $1", key_id
        )
    assert shown["publishable"]["last_used_at"] is None
    assert moved == 0 and after == before
