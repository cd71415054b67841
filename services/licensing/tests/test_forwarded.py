"""Client addresses behind a proxy: X-Forwarded-For names the client only when the peer is a
configured proxy (TESSERA_FORWARDED_ALLOW_IPS), on validate's fast path and on the full
stack alike. The per-address rate-limit buckets show which address counted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from tessera.devstack.infra import Infra, Server, free_port
from tessera.devstack.stack import stack_env, start_services, stop_processes, wait_ready
from tessera.licensing.app import create_app
from tessera.licensing.settings import LicensingSettings
from tessera.shared.db.pool import with_database
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration

PROXY = "10.20.30.40"


@pytest.fixture
def from_peer(database_url: str, infra_settings: InfraSettings, running: Any) -> Any:
    """`async with from_peer(ip, trusted) as send:` licensing with `trusted` as its proxies
    (2 requests per address), and `send(path, forwarded_for)` from the peer `ip`."""

    @asynccontextmanager
    async def start(ip: str, trusted: str) -> AsyncIterator[Any]:
        infra = InfraSettings(**{**infra_settings.model_dump(), "forwarded_allow_ips": trusted})
        settings = LicensingSettings(database_url=database_url, rate_per_ip=2)
        app = create_app(settings, infra)
        async with running(app):
            transport = httpx.ASGITransport(app=app, client=(ip, 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://lic") as http:

                async def send(path: str, forwarded_for: str) -> int:
                    headers = {"x-forwarded-for": forwarded_for}
                    if path == "validate":
                        body = {"key": uuid.uuid4().hex[:25], "fingerprint": "machine-a-0001"}
                        r = await http.post("/v1/licenses/validate", json=body, headers=headers)
                    else:
                        r = await http.get("/v1/public-keys", headers=headers)
                    return r.status_code

                yield send

    return start


async def test_a_trusted_proxy_names_the_client(from_peer: Any) -> None:
    async with from_peer(PROXY, "10.20.30.0/24, 192.0.2.1") as send:
        # Each forwarded client has a bucket of its own; the proxy's address has none.
        first = [await send("validate", "198.51.100.1") for _ in range(3)]
        second = [await send("validate", "198.51.100.2"), await send("keys", "198.51.100.2")]
        # The fast path (validate) and the full stack (public keys) count the same bucket.
        second.append(await send("keys", "198.51.100.2"))
        # A chain: the client is the nearest address that is not a trusted proxy.
        chained = await send("validate", "198.51.100.3, 192.0.2.1")
    assert first == [200, 200, 429]
    assert second == [200, 200, 429]
    assert chained == 200


async def test_an_untrusted_peer_cannot_pick_its_own_bucket(from_peer: Any) -> None:
    async with from_peer("192.0.2.77", PROXY) as send:
        codes = [await send("validate", f"198.51.100.{n}") for n in range(1, 4)]
        codes.append(await send("keys", "198.51.100.9"))
    assert codes == [200, 200, 429, 429]


async def test_no_proxy_is_trusted_by_default(from_peer: Any) -> None:
    assert InfraSettings().forwarded_allow_ips == []
    async with from_peer("127.0.0.1", "") as send:
        codes = [await send("validate", f"198.51.100.{n}") for n in range(1, 4)]
    assert codes == [200, 200, 429]


def test_trusting_everyone_or_a_non_address_is_refused() -> None:
    for bad in ("*", "portal-web", "10.0.0.0/33"):
        with pytest.raises(ValidationError, match="forwarded_allow_ips"):
            InfraSettings(forwarded_allow_ips=bad)


async def test_the_dev_server_believes_no_header_from_localhost(
    database_factory: Any,
    infra_settings: InfraSettings,
    tmp_path: Path,
    all_streams: None,  # billing's, which it reads, and auth's APIKEYS, which its key book follows
) -> None:
    """Licensing as `./dev up` runs it (its own process, `tessera.shared.http.server`): a
    client on 127.0.0.1 cannot pick a bucket of its own with X-Forwarded-For."""
    port = free_port()
    database = await database_factory("licensing")
    infra = Infra(
        nats=Server("nats", str(infra_settings.nats_url), embedded=False),
        postgres=Server("postgres", with_database(database, "postgres"), False),
        redis=Server("redis", str(infra_settings.redis_url), embedded=False),
    )
    env = stack_env(
        infra,
        0,
        tmp_path,
        ports={"licensing": port},
        database_urls={"licensing": database},
        namespace=infra_settings.namespace,
    )
    env["TESSERA_LICENSING_RATE_PER_IP"] = "2"
    env.pop("TESSERA_FORWARDED_ALLOW_IPS", None)
    processes = start_services(
        env, 0, tmp_path / "logs", ports={"licensing": port}, only=["licensing"]
    )
    try:
        status = await asyncio.to_thread(
            wait_ready, 0, 60, ports={"licensing": port}, only=["licensing"]
        )
        assert status == {"licensing": "ready"}, status
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            codes = []
            for n in range(1, 4):
                body = {"key": uuid.uuid4().hex[:25], "fingerprint": "machine-a-0001"}
                headers = {"x-forwarded-for": f"198.51.100.{n}"}
                r = await http.post("/v1/licenses/validate", json=body, headers=headers)
                codes.append(r.status_code)
    finally:
        await asyncio.to_thread(stop_processes, processes)
    assert codes == [200, 200, 429]
