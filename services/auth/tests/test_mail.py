"""Mail over real SMTP: both parts, the From and Reply-To of settings, and a send that fails
is retried until it goes out, without ever holding up a request."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest

from tessera.devstack.infra import free_port
from tessera.devstack.mailcatcher import MailCatcher

pytestmark = pytest.mark.integration


async def test_mail_has_text_and_html_and_the_configured_sender(harness: Any) -> None:
    settings = {
        "mail_from": "ChartGPT <hello@chartgpt.test>",
        "mail_reply_to": "help@chartgpt.test",
    }
    async with harness(product_name="ChartGPT", **settings) as h:
        _, email = await h.user()
        welcome = await h.mailbox.wait_for(email, "Welcome to ChartGPT")
    assert welcome["From"] == {"Name": "ChartGPT", "Address": "hello@chartgpt.test"}
    assert welcome["ReplyTo"] == [{"Name": "", "Address": "help@chartgpt.test"}]
    assert "https://portal.test/sign-in/link?token=" in welcome["Text"]
    assert "<a href=" in welcome["HTML"] and h.one_time_code(welcome) in welcome["HTML"]


async def test_a_failed_send_is_retried_and_never_blocks_a_request(
    auth_settings: Any, infra_settings: Any, running: Any, database_url: str
) -> None:
    import httpx

    from tessera.auth.app import create_app

    smtp_port, http_port = free_port(), free_port()
    app = create_app(auth_settings(smtp_port=smtp_port, smtp_timeout_seconds=1.0), infra_settings)
    email = "patient@example.com"
    conn = await asyncpg.connect(database_url)
    try:
        async with running(app):
            from tessera.auth.users import service as users
            from tessera.shared.events.billing import AccountCreated
            from tessera.shared.events.envelope import new_event_id

            await users.create_user_for_account(
                app.state.context.pool, AccountCreated(account_id=new_event_id(), email=email)
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://a") as client:
                started = time.perf_counter()
                asked = await client.post(
                    "/v1/magic-links", json={"email": email, "browser": "b" * 32}
                )
                elapsed = time.perf_counter() - started

            async def failed_twice() -> bool:
                return bool(
                    await conn.fetchval(
                        "SELECT bool_and(attempts >= 2 AND status = 'pending') FROM email_outbox"
                    )
                )

            deadline = time.monotonic() + 15
            while not await failed_twice():
                assert time.monotonic() < deadline, "no failed attempts recorded"
                await asyncio.sleep(0.1)
            catcher = MailCatcher("127.0.0.1", smtp_port, http_port)  # the server comes back
            await catcher.start()
            try:
                deadline = time.monotonic() + 15
                while len(catcher.mailbox.messages) < 2:
                    assert time.monotonic() < deadline, "mail was not delivered after retry"
                    await asyncio.sleep(0.1)
                subjects = sorted(
                    str(m.parsed["Subject"]).split(" (")[0] for m in catcher.mailbox.messages
                )
            finally:
                await catcher.stop()
        statuses = await conn.fetch("SELECT status, last_error FROM email_outbox")
    finally:
        await conn.close()
    assert asked.status_code == 202 and elapsed < 1.0
    assert subjects == ["Sign in to Tessera", "Welcome to Tessera"]
    assert {r["status"] for r in statuses} == {"sent"}
    assert all(r["last_error"] for r in statuses)  # each failed before it went out
