"""Users come from billing's events (or a proven sign-up); admins only from the operator
CLI or the settings' bootstrap list; admins read the audit log."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import asyncpg
import nats
import pytest

from tessera.shared.events.billing import AccountCreated
from tessera.shared.events.topology import BILLING, Namespace
from tessera.shared.messaging import ensure_stream, stream_config
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_an_account_event_delivered_twice_makes_one_user_and_one_welcome(
    harness: Any, infra_settings: InfraSettings, database_url: str
) -> None:
    ns = Namespace(infra_settings.namespace)
    nc = await nats.connect(str(infra_settings.nats_url))
    js = nc.jetstream()
    await ensure_stream(js, stream_config(BILLING, ns))
    event = AccountCreated(
        account_id="0190a000-0000-7000-8000-000000000001", email="buyer@example.com"
    )
    try:
        async with harness() as h:
            for attempt in range(2):  # a duplicate past the de-duplication window
                await js.publish(
                    ns.subject(AccountCreated.subject),
                    event.to_json(),
                    stream=ns.stream(BILLING),
                    headers={"Nats-Msg-Id": f"{event.event_id}-{attempt}"},
                )
            welcome = await h.mailbox.wait_for("buyer@example.com", "Welcome to", timeout=30)
            await asyncio.sleep(0.5)
            mails = await h.mailbox.messages("buyer@example.com")
            conn = await asyncpg.connect(database_url)
            try:
                users = await conn.fetchval("SELECT count(*) FROM users")
                created = await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE subject = 'auth.user.created.v1'"
                )
            finally:
                await conn.close()
            code = h.one_time_code(welcome)
            signed = await h.client.post(
                "/v1/magic-links/verify",
                json={"email": "buyer@example.com", "code": code, "browser": h.new_browser()},
            )
    finally:
        await nc.close()
    assert users == 1 and created == 1 and len(mails) == 1
    assert signed.status_code == 200  # the welcome mail's code signs in


def cli(database_url: str, infra: InfraSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TESSERA_AUTH_DATABASE_URL": database_url,
        "TESSERA_REDIS_URL": str(infra.redis_url),
        "TESSERA_NAMESPACE": infra.namespace,
        "TESSERA_ENV": "test",
    }
    return subprocess.run(
        [sys.executable, "-m", "tessera.auth.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_only_the_operator_cli_makes_an_admin(
    harness: Any, database_url: str, infra_settings: InfraSettings
) -> None:
    async with harness() as h:
        user_id, email = await h.user()
        token, signed = await h.signed_in_token(email)
        as_customer = await h.client.get("/v1/admin/audit", headers=bearer(token))
        granted = await asyncio.to_thread(
            cli, database_url, infra_settings, "admins", "grant", email
        )
        admin_token = await h.access_token(signed["session_id"])
        audit = await h.client.get(
            "/v1/admin/audit", params={"user_id": str(user_id)}, headers=bearer(admin_token)
        )
        unknown = await asyncio.to_thread(
            cli, database_url, infra_settings, "admins", "grant", "nobody@example.com"
        )
    assert as_customer.status_code == 404
    assert granted.returncode == 0, granted.stderr
    assert "admin" in granted.stdout
    actions = [e["action"] for e in audit.json()["entries"]]
    assert audit.status_code == 200
    assert {"user.created", "sign_in", "user.role_changed"} <= set(actions)
    assert unknown.returncode == 1


async def test_bootstrap_admins_from_settings(harness: Any) -> None:
    async with harness(bootstrap_admins=["boss@example.com"]) as h:
        await h.user("boss@example.com")
        token, _ = await h.signed_in_token("boss@example.com")
        users = await h.client.get("/v1/admin/users", headers=bearer(token))
    assert users.status_code == 200
    assert users.json()["users"][0]["role"] == "admin"


async def test_an_admin_disables_a_user_over_http(harness: Any) -> None:
    async with harness(bootstrap_admins=["root@example.com"]) as h:
        await h.user("root@example.com")
        admin_token, _ = await h.signed_in_token("root@example.com")
        victim_id, victim = await h.user()
        victim_session = await h.sign_in(victim)
        disabled = await h.client.post(
            f"/v1/admin/users/{victim_id}/disable",
            headers=bearer(admin_token),
            json={"reason": "chargeback fraud"},
        )
        exchange = await h.client.post(
            "/v1/sessions/token", json={"session_id": victim_session["session_id"]}
        )
        audit = await h.client.get(
            "/v1/admin/audit", params={"action": "user.disabled"}, headers=bearer(admin_token)
        )
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert exchange.status_code == 401
    [entry] = audit.json()["entries"]
    assert entry["user_id"] == str(victim_id) and entry["ip"] == "127.0.0.1"
    assert entry["detail"]["reason"] == "chargeback fraud"


async def test_disabling_or_enabling_without_a_reason_changes_nothing(harness: Any) -> None:
    async with harness(bootstrap_admins=["root@example.com"]) as h:
        await h.user("root@example.com")
        admin_token, _ = await h.signed_in_token("root@example.com")
        victim_id, victim = await h.user()
        victim_session = await h.sign_in(victim)
        bodies: list[dict[str, Any]] = [{}, {"json": {}}, {"json": {"reason": ""}}]
        bodies.append({"json": {"reason": "  "}})
        answers = [
            await h.client.post(
                f"/v1/admin/users/{victim_id}/disable", headers=bearer(admin_token), **body
            )
            for body in bodies
        ]
        exchange = await h.client.post(
            "/v1/sessions/token", json={"session_id": victim_session["session_id"]}
        )
        audit = await h.client.get(
            "/v1/admin/audit", params={"action": "user.disabled"}, headers=bearer(admin_token)
        )
        enable = await h.client.post(
            f"/v1/admin/users/{victim_id}/enable", headers=bearer(admin_token), json={}
        )
    for answer in [*answers, enable]:
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    assert exchange.status_code == 200  # still signed in
    assert audit.json()["entries"] == []


async def test_the_audit_cursor_takes_only_a_date_time(harness: Any) -> None:
    async with harness(bootstrap_admins=["root@example.com"]) as h:
        await h.user("root@example.com")
        token, _ = await h.signed_in_token("root@example.com")
        bad = [
            await h.client.get("/v1/admin/audit", params={"before": value}, headers=bearer(token))
            for value in ("0.5", "0", "1700000000", "yesterday", "2026-01-31", "2026-01-31T10:00")
        ]
        good = await h.client.get(
            "/v1/admin/audit", params={"before": "2999-01-31T10:00:00Z"}, headers=bearer(token)
        )
    for answer in bad:
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["errors"][0]["loc"] == ["query", "before"]
    assert good.status_code == 200 and good.json()["entries"]


async def test_dev_secrets_are_refused_in_production(database_url: str) -> None:
    from tessera.auth.app import create_app
    from tessera.auth.settings import AuthSettings
    from tessera.shared.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="TESSERA_AUTH_SECRET_KEY"):
        create_app(AuthSettings(database_url=database_url), InfraSettings(env="production"))


async def test_the_role_is_checked_before_the_body_is_parsed(harness: Any) -> None:
    # FastAPI parses a body before the role check (a dependency) runs: without the gate, a
    # malformed body got its 400/422 where a non-admin must get what an unknown path gets.
    async with harness(bootstrap_admins=["boss@example.com"]) as h:
        user_id, email = await h.user()
        customer, _ = await h.signed_in_token(email)
        await h.user("boss@example.com")
        admin, _ = await h.signed_in_token("boss@example.com")
        disable = f"/v1/admin/users/{user_id}/disable"
        bodies = (b'{"reason": "because"}', b'{"reason": ', b"[1, 2", b'{"reason": 5}')
        for who, headers, status in (("anonymous", {}, 401), ("customer", bearer(customer), 404)):
            for path in (disable, "/v1/admin/no-such-route"):
                for body in bodies:
                    answer = await h.client.post(
                        path, content=body, headers={**headers, "content-type": "application/json"}
                    )
                    assert answer.status_code == status, (who, path, body, answer.status_code)
                    assert answer.headers["content-type"] == "application/problem+json"
                got = await h.client.get(path, headers=headers)
                assert got.status_code == status, (who, path, got.status_code)
        broken = await h.client.post(
            disable,
            content=b'{"reason": ',
            headers={**bearer(admin), "content-type": "application/json"},
        )
        assert broken.status_code == 400
        users = await h.client.get("/v1/admin/users", headers=bearer(admin))
    assert not any(u["disabled"] for u in users.json()["users"]), users.json()
