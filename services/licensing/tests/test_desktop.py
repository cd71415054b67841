"""The desktop API: activation limits under concurrency, the verdict codes, leases checked
by an independent Ed25519 implementation (PyJWT over `cryptography`), signed responses,
rate limits and bounded bodies."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import statistics
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from licensing_factories import Harness, an_order_paid  # type: ignore[import-not-found]

from tessera.licensing.licenses import keyformat

pytestmark = pytest.mark.integration


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def a_license(harness: Harness, seats: int = 1, **overrides: Any) -> list[str]:
    paid = an_order_paid(seats=seats, quantity=seats, **overrides)
    await harness.publish(paid)
    keys: list[str] = await harness.issued(paid.order_id, seats)
    return keys


async def activate(harness: Harness, key: str, fingerprint: str, **extra: Any) -> dict[str, Any]:
    r = await harness.http.post(
        "/v1/licenses/activate", json={"key": key, "fingerprint": fingerprint, **extra}
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def validate(harness: Harness, key: str, fingerprint: str, **extra: Any) -> httpx.Response:
    response: httpx.Response = await harness.http.post(
        "/v1/licenses/validate", json={"key": key, "fingerprint": fingerprint, **extra}
    )
    return response


async def jwks(harness: Harness) -> dict[str, Any]:
    r = await harness.http.get("/v1/public-keys")
    assert r.status_code == 200
    data: dict[str, Any] = r.json()
    return data


def verify_lease(lease: str, keys: dict[str, Any], **options: Any) -> dict[str, Any]:
    """PyJWT + cryptography: nothing of licensing's own code."""
    kid = jwt.get_unverified_header(lease)["kid"]
    jwk = next(k for k in keys["keys"] if k["kid"] == kid)
    claims: dict[str, Any] = jwt.decode(
        lease, key=jwt.PyJWK(jwk), algorithms=["EdDSA"], issuer="tessera-licensing", **options
    )
    return claims


def verify_response(response: httpx.Response, keys: dict[str, Any]) -> None:
    header = response.headers["tessera-signature"]
    fields = dict(part.strip().split("=", 1) for part in header.split(","))
    kid, created, sig = fields["kid"].strip('"'), fields["created"], fields["sig"].strip('"')
    assert abs(int(created) - time.time()) < 60
    digest = base64.urlsafe_b64encode(hashlib.sha256(response.content).digest()).rstrip(b"=")
    request = response.request
    message = (
        f"tessera-response-v1\n{request.method}\n{request.url.path}\n{created}\n{digest.decode()}"
    )
    jwk = next(k for k in keys["keys"] if k["kid"] == kid)
    public = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    public.verify(b64url_decode(sig), message.encode())  # raises InvalidSignature


async def test_parallel_activations_never_exceed_the_machine_limit(harness: Harness) -> None:
    (key,) = await a_license(harness)  # chartgpt-lifetime: 3 machines
    answers = await asyncio.gather(*(activate(harness, key, f"machine-{i:04d}") for i in range(12)))
    codes = [a["code"] for a in answers]
    assert codes.count("VALID") == 3
    assert codes.count("TOO_MANY_ACTIVATIONS") == 9
    assert await harness.fetchval("SELECT count(*) FROM activations") == 3
    activated = await harness.fetch(
        "SELECT subject FROM outbox WHERE subject = 'licensing.activation.created.v1'"
    )
    assert len(activated) == 3


async def test_the_same_machine_activating_in_parallel_holds_one_seat(harness: Harness) -> None:
    (key,) = await a_license(harness)
    answers = await asyncio.gather(*(activate(harness, key, "same-machine-01") for _ in range(8)))
    assert {a["code"] for a in answers} == {"VALID"}
    assert len({a["activation_id"] for a in answers}) == 1
    assert await harness.fetchval("SELECT count(*) FROM activations") == 1


async def test_validate_answers_each_code(harness: Harness) -> None:
    (key,) = await a_license(harness)
    first = await activate(harness, key, "machine-a-0001")
    for fp in ("machine-b-0001", "machine-c-0001"):
        await activate(harness, key, fp)

    async def code(k: str, fp: str, **extra: Any) -> str:
        r = await validate(harness, k, fp, **extra)
        assert r.status_code == 200
        return str(r.json()["code"])

    assert await code(key, "machine-a-0001") == "VALID"
    assert await code(key, "machine-d-0001") == "TOO_MANY_ACTIVATIONS"
    assert (
        await code(key, "machine-d-0001", activation_id=first["activation_id"])
        == "FINGERPRINT_MISMATCH"
    )
    assert await code(key.lower().replace("-", " "), "machine-a-0001") == "VALID"
    assert await code("AAAAA-AAAAA-AAAAA-AAAAA-AAAAA", "machine-a-0001") == "NOT_FOUND"
    assert await code("not a key", "machine-a-0001") == "NOT_FOUND"
    # Changed behind the service's back (as another replica would): the cache hears of it.
    await harness.fetch("UPDATE licenses SET expires_at = now() - interval '1 day'")
    await harness.until(lambda: answers(code(key, "machine-a-0001"), "EXPIRED"))
    await harness.fetch("UPDATE licenses SET expires_at = NULL, status = 'revoked'")
    await harness.until(lambda: answers(code(key, "machine-a-0001"), "REVOKED"))


async def answers(pending: Any, expected: str) -> bool:
    return bool(await pending == expected)


async def test_validate_answers_from_memory_and_forgets_on_any_change(harness: Harness) -> None:
    (key,) = await a_license(harness)
    await activate(harness, key, "machine-a-0001")
    cache = harness.app.state.context.cache
    assert cache.live
    # The activation's NOTIFY reaches the listener some moments after its commit, and evicts
    # whatever validate cached before it came (or stops a read in flight from storing): ask
    # until the key's own entry is in memory, then it answers from there.
    entry = keyformat.lookup_hash(key)

    async def cached() -> bool:
        assert (await validate(harness, key, "machine-a-0001")).json()["code"] == "VALID"
        return cache.lookup(entry)[0] is not None

    await harness.until(cached)
    assert cache.lookup(entry)[0].activations
    # Deactivated through this replica: the very next validate sees it (read-your-writes).
    await harness.http.post(
        "/v1/licenses/deactivate", json={"key": key, "fingerprint": "machine-a-0001"}
    )
    assert (await validate(harness, key, "machine-a-0001")).json()["code"] == "NOT_ACTIVATED"
    # An unknown key is remembered as unknown (the deactivation's NOTIFY may still evict
    # the license's entry meanwhile, so look for the unknown key's own entry).
    unknown = "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"

    async def remembered() -> bool:
        await validate(harness, unknown, "machine-a-0001")
        return cache.lookup(keyformat.lookup_hash(unknown))[0] is not None

    await harness.until(remembered)


async def test_the_cache_is_off_while_its_listener_is_away(harness: Harness) -> None:
    (key,) = await a_license(harness)
    cache = harness.app.state.context.cache
    await validate(harness, key, "machine-a-0001")
    await harness.fetch(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
    )

    async def dropped() -> bool:
        return not cache.live or len(cache) == 0

    await harness.until(dropped)
    # Still answers (from Postgres) meanwhile, and listens again soon.
    assert (await validate(harness, key, "machine-a-0001")).json()["code"] == "NOT_ACTIVATED"

    async def back() -> bool:
        return bool(cache.live)

    await harness.until(back)


async def test_a_validate_answer_carries_what_the_app_needs(harness: Harness) -> None:
    (key,) = await a_license(harness)
    await activate(harness, key, "machine-a-0001")
    r = await validate(harness, key, "machine-a-0001", nonce="n-123")
    body = r.json()
    assert body["valid"] is True
    assert body["nonce"] == "n-123"
    assert body["entitlements"] == ["chartgpt.core"]
    assert abs(time.time() - time_of(body["server_time"])) < 60
    assert body["license"]["product"] == "chartgpt"
    assert body["license"]["expires_at"] is None
    unknown = (
        await validate(harness, "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA", "machine-a-0001", nonce="x")
    ).json()
    assert unknown["valid"] is False
    assert unknown["lease"] is None if "lease" in unknown else True
    assert unknown["nonce"] == "x"
    assert unknown["entitlements"] == []
    assert unknown["license"] is None


def time_of(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def test_the_lease_verifies_with_an_independent_implementation(harness: Harness) -> None:
    (key,) = await a_license(harness)
    answer = await activate(harness, key, "machine-a-0001")
    keys = await jwks(harness)
    claims = verify_lease(answer["lease"], keys)
    assert claims["fingerprint"] == "machine-a-0001"
    assert claims["entitlements"] == ["chartgpt.core"]
    assert claims["product"] == "chartgpt"
    assert claims["status"] == "active"
    assert claims["license_id"] == answer["license"]["id"]
    assert claims["renew_at"] - claims["iat"] == 14 * 86400
    assert claims["exp"] - claims["iat"] == 17 * 86400
    assert claims["license_expires_at"] is None
    assert jwt.get_unverified_header(answer["lease"])["alg"] == "EdDSA"


async def test_every_failing_lease_is_rejected(harness: Harness) -> None:
    (key,) = await a_license(harness)
    lease = (await activate(harness, key, "machine-a-0001"))["lease"]
    keys = await jwks(harness)
    header, _, signature = lease.split(".")
    claims = jwt.decode(lease, options={"verify_signature": False})
    forged = (
        base64.urlsafe_b64encode(
            jwt.utils.force_bytes(
                __import__("json").dumps({**claims, "entitlements": ["chartgpt.pro"]})
            )
        )
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(jwt.InvalidSignatureError):
        verify_lease(f"{header}.{forged}.{signature}", keys)
    foreign = {"keys": [{**keys["keys"][0], "x": keys["keys"][0]["x"][::-1]}]}
    with pytest.raises(jwt.PyJWTError):
        verify_lease(lease, foreign)
    # Leases signed by the real key, but outside their time: expired, and issued in the future.
    signer = harness.app.state.context.ring.signer
    now = int(time.time())
    for shift, error in (
        (-18 * 86400, jwt.ExpiredSignatureError),
        (3600, jwt.ImmatureSignatureError),
    ):
        moved = {
            **claims,
            "iat": now + shift,
            "renew_at": now + shift + 10,
            "exp": now + shift + 20,
        }
        if shift > 0:
            moved["exp"] = now + shift + 17 * 86400
        with pytest.raises(error):
            verify_lease(signer.jws(moved), keys)


async def test_answers_are_signed_errors_included(start_licensing: Any) -> None:
    async with start_licensing(rate_per_key=2) as harness:
        (key,) = await a_license(harness)
        keys = await jwks(harness)
        for _ in range(2):
            ok = await validate(harness, key, "machine-a-0001", nonce="n")
            verify_response(ok, keys)
        limited = await validate(harness, key, "machine-a-0001")
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) >= 1
        verify_response(limited, keys)
        # Another key from the same address still gets through: the limit was per key.
        other = await validate(harness, "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA", "machine-a-0001")
        assert other.status_code == 200
        # A spoofed answer (body changed) fails verification.
        spoofed = httpx.Response(
            200,
            headers=ok.headers,
            content=ok.content.replace(b'"nonce":"n"', b'"nonce":"m"'),
            request=ok.request,
        )
        with pytest.raises(InvalidSignature):
            verify_response(spoofed, keys)


async def test_the_address_limit_holds_across_keys(start_licensing: Any) -> None:
    async with start_licensing(rate_per_ip=3) as harness:
        codes = [
            (await validate(harness, f"{uuid.uuid4().hex[:25]}", "machine-a-0001")).status_code
            for _ in range(4)
        ]
    assert codes == [200, 200, 200, 429]


async def test_bad_input_is_a_clear_4xx(harness: Harness) -> None:
    r = await harness.http.post("/v1/licenses/validate", json={"key": "K", "fingerprint": "short"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    r = await harness.http.post(
        "/v1/licenses/validate", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    r = await harness.http.post(
        "/v1/licenses/validate", content=b"x" * 20_000, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    r = await harness.http.post("/v1/licenses/activate", json={"fingerprint": "machine-a-0001"})
    assert r.status_code == 400
    assert r.json()["type"].endswith("key-or-token-required")
    r = await harness.http.post(
        "/v1/licenses/activate",
        json={"fingerprint": "machine-a-0001"},
        headers={"authorization": "Bearer nope"},
    )
    assert r.status_code == 401


async def test_a_signed_in_app_activates_without_a_key(harness: Harness) -> None:
    paid = an_order_paid()
    await harness.publish(paid)
    (key,) = await harness.issued(paid.order_id)
    r = await harness.http.post(
        "/v1/licenses/activate",
        json={"fingerprint": "machine-a-0001", "product": "chartgpt"},
        headers=harness.mint.bearer(paid.account_id),
    )
    body = r.json()
    assert body["code"] == "VALID", body
    assert body["license_key"] == key
    nobody = await harness.http.post(
        "/v1/licenses/activate",
        json={"fingerprint": "machine-a-0001"},
        headers=harness.mint.bearer(uuid.uuid4()),
    )
    assert nobody.json()["code"] == "NO_LICENSE"


async def test_deactivate_frees_the_seat(harness: Harness) -> None:
    (key,) = await a_license(harness)
    for i in range(3):
        await activate(harness, key, f"machine-{i}-0001")
    assert (await activate(harness, key, "machine-9-0001"))["code"] == "TOO_MANY_ACTIVATIONS"
    r = await harness.http.post(
        "/v1/licenses/deactivate", json={"key": key, "fingerprint": "machine-0-0001"}
    )
    assert r.json()["code"] == "DEACTIVATED"
    again = await harness.http.post(
        "/v1/licenses/deactivate", json={"key": key, "fingerprint": "machine-0-0001"}
    )
    assert again.json()["code"] == "NOT_ACTIVATED"
    assert (await activate(harness, key, "machine-9-0001"))["code"] == "VALID"


async def test_unknown_keys_take_as_long_as_known_ones(start_licensing: Any) -> None:
    async with start_licensing(rate_per_key=10_000, rate_per_ip=10_000) as harness:
        await compare_timings(harness)


async def compare_timings(harness: Harness) -> None:
    (key,) = await a_license(harness)
    await activate(harness, key, "machine-a-0001")
    unknown = "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"

    async def timed(k: str) -> float:
        start = time.perf_counter()
        r = await validate(harness, k, "machine-a-0001")
        assert r.status_code == 200
        return time.perf_counter() - start

    for _ in range(20):  # warm up both paths (prepared statements, caches)
        await timed(key)
        await timed(unknown)
    known_t, unknown_t = [], []
    for _ in range(150):
        known_t.append(await timed(key))
        unknown_t.append(await timed(unknown))
    ratio = statistics.median(unknown_t) / statistics.median(known_t)
    assert 0.8 < ratio < 1.25, ratio
