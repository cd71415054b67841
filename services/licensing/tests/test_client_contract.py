"""The contract between the service and the client: the doc's test vectors are what the
code makes (and what the service's own signer makes), they verify or fail with an
independent JOSE library as documented, key formats agree, and the reference client works
against the real service, pinned to its root — and refuses a spoofed answer, a fake server
with its own keys, and a forged cache."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from licensing_factories import Harness, an_order_paid  # type: ignore[import-not-found]
from nacl.signing import SigningKey

from tessera.licensing.desktop.signature import signature_header
from tessera.licensing.licenses import keyformat as server_keys
from tessera.licensing.signing.keyset import KEY_SET_TYPE, key_set_claims
from tessera.licensing_client import LeaseError, LeaseStore, LicensingClient, ResponseRejected
from tessera.licensing_client import keyformat as client_keys
from tessera.licensing_client.testvectors import (
    KEY_SET_TYP,
    ROOT_SEED,
    block_in,
    lease_jwk,
    render,
    vectors,
)
from tessera.licensing_client.testvectors import (
    key_set_claims as vector_key_set_claims,
)
from tessera.shared.keys import (
    Signer,
    b64url,
    b64url_decode,
    new_signer,
    public_jwk,
    signer_of,
    thumbprint,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "licensing-client.md"
V: dict[str, Any] = vectors()
LEASES = {v["name"]: v["lease"] for v in V["leases"]}


def test_the_doc_carries_exactly_the_generated_vectors() -> None:
    assert block_in(DOC.read_text(encoding="utf-8")) == render(), (
        "run: uv run python -m tessera.licensing_client.testvectors --write docs/licensing-client.md"
    )


def test_the_service_signer_makes_the_documented_lease_and_signature() -> None:
    key = SigningKey(bytes.fromhex(V["private_key_seed_hex"]))
    signer = Signer(thumbprint(bytes(key.verify_key)), key)
    assert signer.kid == V["jwks"]["keys"][0]["kid"]
    assert signer.jws(V["payload"]) == LEASES["valid"]
    rs = V["response_signature"]
    header = signature_header(signer, rs["method"], rs["path"], rs["body"].encode(), V["now"])
    assert header.decode() == rs["header"]
    # The key-set vector is what the service's root signer makes of the same document.
    root = signer_of(ROOT_SEED)
    claims = vector_key_set_claims(
        2, V["now"] - 86400, [lease_jwk(bytes.fromhex(V["private_key_seed_hex"]))]
    )
    made = key_set_claims(2, claims["iat"], claims["exp"], claims["keys"])
    assert made == claims and KEY_SET_TYPE == KEY_SET_TYP
    [valid_set] = next(v for v in V["key_sets"] if v["name"] == "valid")["key_sets"]
    assert root.jws_typed(made, KEY_SET_TYPE) == valid_set
    assert V["pins"] == [b64url(root.public_key)]


def independent(lease: str) -> dict[str, Any]:
    """PyJWT over `cryptography`: signature only; the time rules are checked by the caller."""
    jwk = jwt.PyJWK(V["jwks"]["keys"][0])
    claims: dict[str, Any] = jwt.decode(
        lease, key=jwk, algorithms=["EdDSA"], options={"verify_exp": False, "verify_iat": False}
    )
    return claims


def test_the_vectors_hold_under_an_independent_implementation() -> None:
    now = V["now"]
    valid = independent(LEASES["valid"])
    assert valid == V["payload"]
    assert valid["iat"] <= now + 300 and now < valid["exp"]
    for name in ("tampered", "wrong_key"):
        with pytest.raises(jwt.InvalidSignatureError):
            independent(LEASES[name])
    assert independent(LEASES["expired"])["exp"] <= now
    assert independent(LEASES["issued_in_future"])["iat"] > now + 300
    # Key sets: the pinned root's signature holds under PyJWT; the others' do not.
    sets = {v["name"]: v for v in V["key_sets"]}
    root = jwt.PyJWK({"kty": "OKP", "crv": "Ed25519", "x": V["pins"][0]})

    def decode_set(token: str) -> dict[str, Any]:
        options = {"verify_exp": False, "verify_iat": False}
        claims: dict[str, Any] = jwt.decode(
            token,
            key=root,
            algorithms=["EdDSA"],
            options=options,  # type: ignore[arg-type]
        )
        return claims

    [valid_set] = sets["valid"]["key_sets"]
    assert decode_set(valid_set)["keys"][0]["kid"] == V["jwks"]["keys"][0]["kid"]
    for name in ("impostor_root", "tampered_key_set", "foreign_key_set", "short_signature"):
        with pytest.raises(jwt.InvalidSignatureError):
            decode_set(sets[name]["key_sets"][0])
    with pytest.raises(jwt.InvalidAlgorithmError):
        decode_set(sets["unsigned_key_set"]["key_sets"][0])
    rs = V["response_signature"]
    sig = rs["header"].split('sig="')[1].rstrip('"')
    public = Ed25519PublicKey.from_public_bytes(b64url_decode(V["jwks"]["keys"][0]["x"]))
    public.verify(b64url_decode(sig), rs["signing_input"].encode())
    digest = rs["signing_input"].rsplit("\n", 1)[1]
    assert (
        digest
        == jwt.utils.base64url_encode(
            __import__("hashlib").sha256(rs["body"].encode()).digest()
        ).decode()
    )


def test_service_and_client_agree_on_the_key_format() -> None:
    rng = random.Random(7)
    for _ in range(500):
        payload = "".join(rng.choice(server_keys.ALPHABET) for _ in range(24))
        assert server_keys.check_symbol(payload) == client_keys.check_symbol(payload)
    for _ in range(50):
        key = server_keys.generate()
        assert client_keys.normalise(key) == server_keys.normalise(key)
        assert len(key) == 29 and key.count("-") == 4


CLI = str(Path(sys.executable).parent / "tessera-licensing")


async def cli(database_url: str, *args: str) -> tuple[int, str]:
    env = {**os.environ, "TESSERA_LICENSING_DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        CLI, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await process.communicate()
    return int(process.returncode or 0), out.decode()


async def pins(harness: Harness) -> list[str]:
    """What the operator hands the app's build: `tessera-licensing keys pins`."""
    code, out = await cli(harness.database_url, "keys", "pins")
    assert code == 0, out
    return [line.split()[0] for line in out.splitlines() if line.strip()]


class Tamper(httpx.AsyncBaseTransport):
    """Passes calls to the real app; when armed, edits the answer in flight (a spoofer)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.armed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not self.armed or request.url.path == "/v1/public-keys":
            return response
        body = json.loads(await response.aread())
        body.update(valid=True, code="VALID")
        return httpx.Response(200, headers=response.headers, content=json.dumps(body).encode())


class FakeServer(httpx.AsyncBaseTransport):
    """The review's attacker: a server with its own lease key (and, in some modes, its own
    root) that answers VALID with an extra entitlement and a ten-year lease, every answer
    properly signed with its own key. `keys`: what it serves at /v1/public-keys —
    "own-root" (a key set signed by its own root), "unsigned" (a bare JWKS, as before the
    trust anchor), or "real" (the genuine server's answer, passed through: a man in the
    middle who forges only the answers)."""

    def __init__(self, real: httpx.AsyncBaseTransport, keys: str) -> None:
        self.real = real
        self.keys = keys
        self.lease_key = new_signer()
        self.root = new_signer()
        self.public_key_fetches = 0

    def signed(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        content = json.dumps(body).encode()
        header = signature_header(
            self.lease_key, request.method, request.url.path, content, time.time()
        )
        return httpx.Response(
            200,
            headers={"content-type": "application/json", "tessera-signature": header.decode()},
            content=content,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        now = int(time.time())
        jwk = public_jwk(self.lease_key.kid, self.lease_key.public_key)
        if request.url.path == "/v1/public-keys":
            self.public_key_fetches += 1
            if self.keys == "real":
                return await self.real.handle_async_request(request)
            key_sets = []
            if self.keys == "own-root":
                claims = key_set_claims(99, now, now + 86400, [jwk])
                key_sets = [self.root.jws_typed(claims, KEY_SET_TYPE)]
            return self.signed(request, {"keys": [jwk], "key_sets": key_sets})
        sent = json.loads(request.content)
        ten_years = now + 3650 * 86400
        lease = self.lease_key.jws(
            {
                "iss": "tessera-licensing",
                "sub": "0193f5a0-0000-7000-8000-000000000001",
                "license_id": "0193f5a0-0000-7000-8000-000000000001",
                "account_id": "0193f5a0-0000-7000-8000-0000000000aa",
                "product": "chartgpt",
                "entitlements": ["chartgpt.core", "chartgpt.pro"],
                "fingerprint": sent["fingerprint"],
                "status": "active",
                "iat": now,
                "renew_at": ten_years - 86400,
                "exp": ten_years,
                "license_expires_at": None,
            }
        )
        return self.signed(
            request,
            {
                "valid": True,
                "code": "VALID",
                "nonce": sent.get("nonce"),
                "entitlements": ["chartgpt.core", "chartgpt.pro"],
                "lease": lease,
            },
        )


@pytest.mark.integration
async def test_the_reference_client_activates_caches_and_works_offline(
    harness: Harness, tmp_path: Path
) -> None:
    paid = an_order_paid()
    await harness.publish(paid)
    (key,) = await harness.issued(paid.order_id)
    tamper = Tamper(httpx.ASGITransport(app=harness.app))
    http = httpx.AsyncClient(transport=tamper, base_url="http://lic")
    store = LeaseStore(tmp_path / "lease.json", machine_id="machine-a")
    roots = await pins(harness)
    async with LicensingClient("http://lic", store, roots=roots, http=http) as client:
        await client.public_keys()
        activated = await client.activate("machine-a-0001", key=key, machine_name="Desk")
        assert activated.code == "VALID"
        assert activated.lease is not None
        assert activated.lease.entitlements == ("chartgpt.core",)
        offline = client.offline("machine-a-0001")
        assert offline.license_id == activated.body["license"]["id"]
        assert not offline.needs_renewal(time.time())
        assert (await client.validate(key, "machine-a-0001")).valid

        tamper.armed = True
        with pytest.raises(ResponseRejected):
            await client.validate("AAAAA-AAAAA-AAAAA-AAAAA-AAAAA", "machine-a-0001")
        tamper.armed = False

        assert (await client.deactivate(key, "machine-a-0001")).code == "DEACTIVATED"
        assert not store.path.exists()


def test_a_client_must_pin_something() -> None:
    store = LeaseStore(Path("unused.json"), machine_id="m")
    with pytest.raises(ValueError, match="pin either"):
        LicensingClient("http://lic", store)


@pytest.mark.integration
@pytest.mark.parametrize("keys", ["own-root", "unsigned", "real"])
async def test_a_fake_server_with_its_own_key_gets_nothing(
    harness: Harness, tmp_path: Path, keys: str
) -> None:
    """Before the trust anchor this answer was accepted: VALID, chartgpt.pro, ten years."""
    fake = FakeServer(httpx.ASGITransport(app=harness.app), keys)
    http = httpx.AsyncClient(transport=fake, base_url="http://lic")
    store = LeaseStore(tmp_path / "lease.json", machine_id="machine-a")
    async with LicensingClient("http://lic", store, roots=await pins(harness), http=http) as app:
        if keys != "real":
            with pytest.raises(ResponseRejected, match="key set rejected"):
                await app.public_keys()
        with pytest.raises(ResponseRejected):
            await app.validate("AAAAA-AAAAA-AAAAA-AAAAA-AAAAA", "machine-a-0001")
        # One fetch of the (root-signed) key set at most per call, never a key from the
        # answer itself; nothing was cached, so offline has nothing to run on either.
        assert fake.public_key_fetches <= 2
        assert not store.path.exists()
        with pytest.raises(LeaseError) as offline:
            app.offline("machine-a-0001")
        assert offline.value.code == "NO_LEASE"


@pytest.mark.integration
async def test_an_edited_cache_copied_to_another_machine_is_refused(
    harness: Harness, tmp_path: Path
) -> None:
    paid = an_order_paid()
    await harness.publish(paid)
    (key,) = await harness.issued(paid.order_id)
    roots = await pins(harness)
    path = tmp_path / "lease.json"
    async with LicensingClient(
        "http://lic", LeaseStore(path, machine_id="machine-a"), roots=roots, http=harness.http
    ) as a:
        assert (await a.activate("machine-a-0001", key=key)).code == "VALID"
        a.offline("machine-a-0001")
    record = json.loads(path.read_text())

    # The attacker's key set and ten-year lease, for machine B, in machine A's genuine file.
    fake = FakeServer(httpx.ASGITransport(app=harness.app), "own-root")
    forged = await fake.handle_async_request(
        httpx.Request(
            "POST",
            "http://lic/v1/licenses/validate",
            content=json.dumps({"fingerprint": "machine-b-0001"}).encode(),
        )
    )
    jwk = public_jwk(fake.lease_key.kid, fake.lease_key.public_key)
    now = int(time.time())
    own_set = fake.root.jws_typed(key_set_claims(99, now, now + 86400, [jwk]), KEY_SET_TYPE)
    edits: list[dict[str, Any]] = [
        {"lease": json.loads(forged.content)["lease"], "key_set": own_set},
        {"local_high_water": 0, "signed_high_water": 0},
        {},  # unedited, but on another machine
    ]
    for edit in edits:
        path.write_text(json.dumps({**record, **edit}))
        store_b = LeaseStore(path, machine_id="machine-b")
        async with LicensingClient("http://lic", store_b, roots=roots, http=harness.http) as b:
            with pytest.raises(LeaseError) as refused:
                b.offline("machine-b-0001")
            assert refused.value.code == "CACHE_TAMPERED"
            assert not path.exists()


@pytest.mark.integration
async def test_rotation_reaches_a_pinned_client_through_a_newer_key_set(
    harness: Harness, tmp_path: Path
) -> None:
    paid = an_order_paid()
    await harness.publish(paid)
    (key,) = await harness.issued(paid.order_id)
    store = LeaseStore(tmp_path / "lease.json", machine_id="machine-a")
    roots = await pins(harness)
    async with LicensingClient("http://lic", store, roots=roots, http=harness.http) as app:
        assert (await app.activate("machine-a-0001", key=key)).code == "VALID"
        assert app.key_set is not None
        before, old_kid = app.key_set.version, harness.app.state.context.ring.signer.kid

        code, out = await cli(harness.database_url, "keys", "rotate")
        assert code == 0, out

        async def rotated() -> bool:
            return bool(harness.app.state.context.ring.signer.kid != old_kid)

        await harness.until(rotated)
        answer = await app.validate(key, "machine-a-0001")
        assert answer.valid and answer.lease is not None
        assert answer.lease.kid != old_kid
        assert app.key_set.version > before
        assert store.accepted_version() == app.key_set.version
        assert app.offline("machine-a-0001").kid == answer.lease.kid


@pytest.mark.integration
async def test_an_offline_root_signs_the_set_and_a_new_root_is_co_signed(
    start_licensing: Any, tmp_path: Path
) -> None:
    async with start_licensing(sealed_root=False) as harness:
        body = (await harness.http.get("/v1/public-keys")).json()
        assert body["key_sets"] == [] and body["roots"] == []

        code, out = await cli(harness.database_url, "keys", "rotate")
        assert code == 1 and "no root can sign" in out
        root_file = tmp_path / "root.key"
        code, out = await cli(harness.database_url, "keys", "root-create", "--out", str(root_file))
        assert code == 0, out
        assert oct(root_file.stat().st_mode & 0o777) == "0o600"
        pin = out.split("pin: ")[1].strip()
        assert await pins(harness) == [pin]
        assert (
            await harness.fetchval(
                "SELECT count(*) FROM root_keys WHERE private_sealed IS NOT NULL"
            )
        ) == 0

        code, out = await cli(
            harness.database_url, "keys", "sign-set", "--root-key", str(root_file)
        )
        assert code == 0 and "key set v1" in out, out

        async def published() -> list[str] | None:
            sets: list[str] = (await harness.http.get("/v1/public-keys")).json()["key_sets"]
            return sets or None

        await harness.until(published)
        paid = an_order_paid()
        await harness.publish(paid)
        (key,) = await harness.issued(paid.order_id)
        store = LeaseStore(tmp_path / "lease.json", machine_id="machine-a")
        async with LicensingClient("http://lic", store, roots=[pin], http=harness.http) as app:
            assert (await app.activate("machine-a-0001", key=key)).code == "VALID"

        # Root rotation: a second root signs beside the first; an app pinning only the new
        # one accepts the set, an app pinning only the old one still does.
        code, out = await cli(harness.database_url, "keys", "root-create")
        assert code == 0, out
        new_pin = out.split("pin: ")[1].strip()
        # Every active root signs every set: not without the offline one's file.
        code, out = await cli(harness.database_url, "keys", "sign-set")
        assert code == 1 and "is offline: pass its --root-key" in out, out
        code, out = await cli(
            harness.database_url, "keys", "sign-set", "--root-key", str(root_file)
        )
        assert code == 0 and "key set v2" in out, out

        async def co_signed() -> bool:
            return len((await harness.http.get("/v1/public-keys")).json()["key_sets"]) == 2

        await harness.until(co_signed)
        for pinned in ([new_pin], [pin]):
            store = LeaseStore(tmp_path / f"{pinned[0][:8]}.json", machine_id="machine-a")
            async with LicensingClient("http://lic", store, roots=pinned, http=harness.http) as app:
                assert (await app.validate(key, "machine-a-0001")).valid
                assert app.key_set is not None and app.key_set.version == 2

        # After restoring an old backup the operator signs above what apps have seen.
        code, out = await cli(
            harness.database_url,
            "keys",
            "sign-set",
            "--root-key",
            str(root_file),
            "--at-least",
            "10",
        )
        assert code == 0 and "key set v10" in out, out
