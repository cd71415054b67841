"""Signing keys: sealed at rest, rotated by the operator CLI with old leases still valid,
and old public keys withdrawn only once their leases have expired."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import pytest
from licensing_factories import Harness, an_order_paid  # type: ignore[import-not-found]
from nacl.secret import SecretBox
from nacl.signing import SigningKey
from pydantic import NatsDsn, RedisDsn

from tessera.licensing.app import create_app
from tessera.licensing.settings import LicensingSettings
from tessera.licensing_client import KeySetError, Roots
from tessera.shared.db.pool import asyncpg_dsn
from tessera.shared.keys import Sealer, SealingError, b64url, thumbprint
from tessera.shared.settings import ConfigurationError, Environment, InfraSettings

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "tessera-licensing")


async def run_cli(database_url: str, *args: str) -> str:
    env = {**os.environ, "TESSERA_LICENSING_DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        CLI, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def lease_for(harness: Harness, key: str) -> str:
    r = await harness.http.post(
        "/v1/licenses/validate", json={"key": key, "fingerprint": "machine-a-0001"}
    )
    lease: str = r.json()["lease"]
    return lease


def kid_of(lease: str) -> str:
    return str(jwt.get_unverified_header(lease)["kid"])


def verifies(lease: str, jwks: dict[str, Any]) -> bool:
    kid = kid_of(lease)
    for data in jwks["keys"]:
        if data["kid"] == kid:
            jwt.decode(lease, key=jwt.PyJWK(data), algorithms=["EdDSA"])
            return True
    return False


async def test_rotation_signs_with_the_new_key_and_old_leases_stay_valid(harness: Harness) -> None:
    paid = an_order_paid()
    await harness.publish(paid)
    (key,) = await harness.issued(paid.order_id)
    await harness.http.post(
        "/v1/licenses/activate", json={"key": key, "fingerprint": "machine-a-0001"}
    )
    old = await lease_for(harness, key)

    out = await run_cli(harness.database_url, "keys", "rotate")
    assert f"retired {kid_of(old)}" in out

    async def rotated() -> str | None:
        lease = await lease_for(harness, key)
        return lease if kid_of(lease) != kid_of(old) else None

    new = await harness.until(rotated)
    jwks = (await harness.http.get("/v1/public-keys")).json()
    assert {k["kid"] for k in jwks["keys"]} == {kid_of(old), kid_of(new)}
    assert verifies(old, jwks)
    assert verifies(new, jwks)
    listing = await run_cli(harness.database_url, "keys", "list")
    assert f"{kid_of(new)}" in listing and "current" in listing
    assert "published until" in listing

    # The root-signed key set (what a pinning app trusts) names both, at a higher version.
    roots = Roots([r["x"] for r in jwks["roots"]])
    rotated_set = roots.verify(jwks["key_sets"], now=time.time(), min_version=2)
    assert set(rotated_set.keys) == {kid_of(old), kid_of(new)}

    # Once the last lease it signed has expired, the old key is withdrawn, and the sealed
    # root signs a newer set without it.
    await harness.fetch("UPDATE signing_keys SET publish_until = now() WHERE kid = $1", kid_of(old))

    async def withdrawn() -> bool:
        body = (await harness.http.get("/v1/public-keys")).json()
        keys = {k["kid"] for k in body["keys"]}
        latest = roots.verify(body["key_sets"], now=time.time(), min_version=rotated_set.version)
        return keys == {kid_of(new)} and set(latest.keys) == {kid_of(new)}

    await harness.until(withdrawn)


async def test_the_retired_key_is_published_for_the_longest_lease(harness: Harness) -> None:
    await run_cli(harness.database_url, "keys", "rotate")
    seconds = await harness.fetchval(
        "SELECT extract(epoch FROM publish_until - retired_at) FROM signing_keys"
        " WHERE retired_at IS NOT NULL"
    )
    assert 17 * 86400 < float(seconds) < 17 * 86400 + 3600


async def test_a_sealed_root_re_signs_a_set_nearing_its_expiry(start_licensing: Any) -> None:
    async with start_licensing(key_set_lifetime_seconds=3600) as harness:
        body = (await harness.http.get("/v1/public-keys")).json()
        roots = Roots([r["x"] for r in body["roots"]])
        first = roots.verify(body["key_sets"], now=time.time())
        # Half the lifetime gone: the next refresh signs a newer set.
        await harness.fetch(
            "UPDATE key_sets SET expires_at = now() + interval '10 minutes' WHERE version = $1",
            first.version,
        )

        async def renewed() -> bool:
            sets = (await harness.http.get("/v1/public-keys")).json()["key_sets"]
            return roots.verify(sets, now=time.time()).version > first.version

        await harness.until(renewed)
        sealed = await harness.fetchval(
            "SELECT count(*) FROM root_keys WHERE private_sealed IS NOT NULL"
        )
        assert sealed == 1


async def test_private_keys_and_license_keys_are_sealed_at_rest(harness: Harness) -> None:
    paid = an_order_paid()
    await harness.publish(paid)
    (key,) = await harness.issued(paid.order_id)
    row = (await harness.fetch("SELECT private_sealed FROM signing_keys"))[0]
    signer = harness.app.state.context.ring.signer
    assert bytes(signer.key) not in bytes(row["private_sealed"])
    with pytest.raises(SealingError):
        Sealer(b"another-key-of-thirty-two-bytes!").open(bytes(row["private_sealed"]))
    stored = await harness.fetch("SELECT key_hash, key_sealed FROM licenses")
    assert key.replace("-", "").encode() not in bytes(stored[0]["key_sealed"])


def production_infra() -> InfraSettings:
    """Production with URLs that carry real passwords (the code's defaults are refused)."""
    return InfraSettings(
        env="production",
        nats_url=f"nats://tessera:{secrets.token_urlsafe(24)}@nats:4222",
        redis_url=f"redis://:{secrets.token_urlsafe(24)}@redis:6379/0",
    )


def production_settings(**values: Any) -> LicensingSettings:
    return LicensingSettings(
        key_encryption_key=base64.b64encode(os.urandom(32)).decode(),
        database_url=f"postgresql://licensing:{secrets.token_urlsafe(24)}@db/licensing",
        **values,
    )


def test_production_refuses_the_dev_key_encryption_key() -> None:
    with pytest.raises(ConfigurationError, match="TESSERA_LICENSING_KEY_ENCRYPTION_KEY"):
        create_app(LicensingSettings(), production_infra())
    create_app(production_settings(), production_infra())


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def sealed_root_warnings(build: Any) -> tuple[Any, list[str]]:
    """What `build()` returns, and the sealed-root warnings logged meanwhile."""
    handler = Collected()
    logger = logging.getLogger("tessera.licensing")
    logger.addHandler(handler)
    try:
        built = build()
    finally:
        logger.removeHandler(handler)
    return built, [m for m in handler.messages if "SEALED_ROOT=true in production" in m]


def test_production_defaults_to_an_offline_root_and_warns_about_a_sealed_one() -> None:
    """Unset, the root is sealed in dev and test but offline in production: whoever holds the
    database and the KEK must not be able to sign a key set the apps trust. A sealed root
    the operator asks for in production is kept, with a warning."""
    app, warned = sealed_root_warnings(
        lambda: create_app(production_settings(), production_infra())
    )
    assert app.state.context.settings.sealed_root is False and not warned
    app, warned = sealed_root_warnings(
        lambda: create_app(LicensingSettings(), InfraSettings(env="test"))
    )
    assert app.state.context.settings.sealed_root is True and not warned
    assert LicensingSettings(sealed_root="").sealed_root is None  # an empty env value
    app, warned = sealed_root_warnings(
        lambda: create_app(production_settings(sealed_root=True), production_infra())
    )
    assert app.state.context.settings.sealed_root is True
    assert len(warned) == 1 and "key-encryption key" in warned[0]
    app, warned = sealed_root_warnings(
        lambda: create_app(production_settings(sealed_root=False), production_infra())
    )
    assert app.state.context.settings.sealed_root is False and not warned


def test_a_key_encryption_key_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        LicensingSettings(key_encryption_key="c2hvcnQ=")


async def test_keys_sealed_before_the_shared_kernel_still_open(start_licensing: Any) -> None:
    """A database whose lease key and root were sealed by the pre-kernel code (PyNaCl's
    SecretBox under the KEK, written here without the kernel): after a restart the lease key
    still signs and the root still signs the key set."""
    async with start_licensing() as first:  # the schema; its own keys are replaced below
        kek = first.app.state.context.settings.kek
    lease, root = SigningKey.generate(), SigningKey.generate()
    box = SecretBox(kek)
    await first.fetch("DELETE FROM key_sets")
    await first.fetch("DELETE FROM signing_keys")
    await first.fetch("DELETE FROM root_keys")
    for insert, key in (
        ("INSERT INTO signing_keys (kid, public_key, private_sealed) VALUES ($1, $2, $3)", lease),
        ("INSERT INTO root_keys (kid, public_key, private_sealed) VALUES ($1, $2, $3)", root),
    ):
        public = bytes(key.verify_key)
        await first.fetch(insert, thumbprint(public), public, bytes(box.encrypt(bytes(key))))
    async with start_licensing() as harness:
        signer = harness.app.state.context.ring.signer
        assert signer.kid == thumbprint(bytes(lease.verify_key))
        assert signer.seed == bytes(lease)
        roots = Roots([b64url(bytes(root.verify_key))])

        async def signed_by_the_old_root() -> bool:
            sets = (await harness.http.get("/v1/public-keys")).json()["key_sets"]
            try:
                return signer.kid in roots.verify(sets, now=time.time()).keys
            except KeySetError:  # the set of the keys deleted above, until the root re-signs
                return False

        await harness.until(signed_by_the_old_root)


async def test_production_warns_while_an_older_sealed_root_still_signs(
    start_licensing: Any, database_url: str, infra_settings: InfraSettings, running: Any
) -> None:
    """SEALED_ROOT=false stops a root being made, not an existing sealed one signing: a
    production start with one still active says so, naming the command that retires it."""
    kek = base64.b64encode(os.urandom(32)).decode()
    async with start_licensing(key_encryption_key=kek):
        pass  # dev/test default: a sealed root is made
    settings = LicensingSettings(database_url=database_url, key_encryption_key=kek)
    infra = infra_settings.model_copy(
        update={
            "env": Environment.PRODUCTION,
            "allow_passwordless_urls": True,
            # the same servers, by a name other than the code's default URLs (refused)
            "nats_url": NatsDsn(str(infra_settings.nats_url).replace("127.0.0.1", "localhost")),
            "redis_url": RedisDsn(str(infra_settings.redis_url).replace("127.0.0.1", "localhost")),
        }
    )

    async def production_start() -> list[str]:
        handler = Collected()
        logger = logging.getLogger("tessera.licensing")
        logger.addHandler(handler)
        try:
            app = create_app(settings, infra)
            async with running(app):
                await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
        finally:
            logger.removeHandler(handler)
        return [m for m in handler.messages if "sealed root key is still active" in m]

    [warning] = await production_start()
    assert "keys root-retire" in warning
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("UPDATE root_keys SET retired_at = now()")
    finally:
        await conn.close()
    assert await production_start() == []
