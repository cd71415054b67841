"""The contract between the service and the client: the doc's test vectors are what the
code makes (and what the service's own signer makes), they verify or fail with an
independent JOSE library as documented, key formats agree, and the reference client works
against the real service — and refuses a spoofed answer."""

from __future__ import annotations

import json
import random
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
from tessera.licensing.signing.crypto import Signer, b64url_decode, thumbprint
from tessera.licensing_client import LeaseStore, LicensingClient, ResponseRejected
from tessera.licensing_client import keyformat as client_keys
from tessera.licensing_client.testvectors import block_in, render, vectors

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


@pytest.mark.integration
async def test_the_reference_client_activates_caches_and_works_offline(
    harness: Harness, tmp_path: Path
) -> None:
    paid = an_order_paid()
    await harness.publish(paid)
    (key,) = await harness.issued(paid.order_id)
    tamper = Tamper(httpx.ASGITransport(app=harness.app))
    http = httpx.AsyncClient(transport=tamper, base_url="http://lic")
    store = LeaseStore(tmp_path / "lease.json")
    async with LicensingClient("http://lic", store, http=http) as client:
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
