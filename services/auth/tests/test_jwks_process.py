"""Auth in its own process (uvicorn), its access token verified by this process through
the JWKS URL with an independent JOSE library (joserfc): valid, then expired; a token
signed by a foreign key under the same kid is refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError
from joserfc.jwk import KeySet, OKPKey

from tessera.auth.users import service as users
from tessera.devstack.infra import free_port
from tessera.devstack.mailcatcher import MailCatcher
from tessera.shared.db.pool import asyncpg_dsn
from tessera.shared.events.billing import AccountCreated
from tessera.shared.events.envelope import new_event_id
from tessera.shared.settings import InfraSettings

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::Warning:joserfc")]


@pytest.fixture
def auth_process(
    database_url: str, infra_settings: InfraSettings, mail: MailCatcher, tmp_path: Any
) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "TESSERA_ENV": "test",
        "TESSERA_NATS_URL": str(infra_settings.nats_url),
        "TESSERA_REDIS_URL": str(infra_settings.redis_url),
        "TESSERA_NAMESPACE": infra_settings.namespace,
        "TESSERA_LOG_JSON": "false",
        "TESSERA_AUTH_DATABASE_URL": database_url,
        "TESSERA_AUTH_SMTP_PORT": str(mail.smtp_port),
        "TESSERA_AUTH_ACCESS_TOKEN_TTL_SECONDS": "2",
        "TESSERA_AUTH_MAIL_POLL_SECONDS": "0.2",
    }
    log = open(tmp_path / "auth.log", "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tessera.auth.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "auth.log").read_text()
            assert time.monotonic() < deadline, "auth did not start"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


async def test_another_process_verifies_the_token_with_an_independent_library(
    auth_process: str, database_url: str, mail: MailCatcher
) -> None:
    import asyncpg

    pool = await asyncpg.create_pool(asyncpg_dsn(database_url), min_size=1, max_size=2)
    try:
        email = "desk@example.com"
        await users.create_user_for_account(
            pool, AccountCreated(account_id=new_event_id(), email=email)
        )
    finally:
        await pool.close()
    async with httpx.AsyncClient(base_url=auth_process, timeout=5) as client:
        # The person reads the welcome mail from the SMTP catcher and types the code.
        deadline = time.monotonic() + 20
        while not mail.mailbox.messages:
            assert time.monotonic() < deadline, "no welcome mail"
            await asyncio.sleep(0.1)
        text = mail.mailbox.messages[0].body("plain")
        code = text.split("enter this code: ")[1][:6]
        signed = await client.post(
            "/v1/magic-links/verify", json={"email": email, "code": code, "browser": "b" * 32}
        )
        assert signed.status_code == 200, signed.text
        exchanged = await client.post(
            "/v1/sessions/token", json={"session_id": signed.json()["session_id"]}
        )
        access = exchanged.json()["access_token"]
        jwks = (await client.get("/.well-known/jwks.json")).json()

    keyset = KeySet.import_key_set(jwks)
    claims_rules = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": "tessera-auth"},
        aud={"essential": True, "value": "tessera"},
        sub={"essential": True},
        exp={"essential": True},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = jwt.decode(access, keyset, algorithms=["EdDSA"])
        claims_rules.validate(token.claims)
        assert token.header["kid"] in {k["kid"] for k in jwks["keys"]}
        assert set(token.claims) >= {"iss", "aud", "sub", "acc", "role", "sid", "jti", "iat", "exp"}

        foreign_key = OKPKey.generate_key("Ed25519", parameters={"kid": token.header["kid"]})
        forged = jwt.encode(
            {"alg": "EdDSA", "kid": token.header["kid"]},
            token.claims,
            foreign_key,
            algorithms=["EdDSA"],
        )
        with pytest.raises(BadSignatureError):
            jwt.decode(forged, keyset, algorithms=["EdDSA"])

        await asyncio.sleep(3.1)  # the token lived 2 s
        with pytest.raises(ExpiredTokenError):
            claims_rules.validate(jwt.decode(access, keyset, algorithms=["EdDSA"]).claims)
