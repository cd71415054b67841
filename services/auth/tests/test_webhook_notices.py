"""A webhook endpoint disabled by webhooks' worker: auth mails the seller's owners, once per
event (`webhooks.endpoint.disabled.v1` on the WEBHOOKS stream, claimed in the inbox).
Real Postgres, NATS and SMTP (the mail catcher)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest

from tessera.auth.members import queries as members
from tessera.auth.sellers import service as sellers
from tessera.shared.events.topology import WEBHOOKS, Namespace
from tessera.shared.events.webhooks import EndpointDisabled

pytestmark = pytest.mark.integration

SUBJECT = "Hooked Tools: a webhook endpoint was turned off"


async def seller_with_members(h: Any) -> tuple[uuid.UUID, dict[str, str]]:
    """A seller with two owners, a developer and an owner whose user is disabled; the
    addresses by who they are."""
    people = {who: f"{who}-{uuid.uuid4().hex[:8]}@example.com" for who in
              ("owner", "co_owner", "developer", "disabled_owner")}  # fmt: skip
    ids = {who: (await h.user(email))[0] for who, email in people.items()}
    seller_id = uuid.uuid4()
    async with h.auth.pool.acquire() as conn, conn.transaction():
        await sellers.create(conn, seller_id, f"hooked-{seller_id.hex[:8]}", "Hooked Tools")
        for who, user_id in ids.items():
            role = "developer" if who == "developer" else "owner"
            await members.add_member(conn, seller_id, user_id, role)
        await conn.execute(
            "UPDATE users SET disabled_at = clock_timestamp() WHERE id = $1",
            ids["disabled_owner"],
        )
    return seller_id, people


async def publish(h: Any, event: EndpointDisabled, msg_id: str) -> None:
    infra = h.auth.infra
    ns = Namespace(infra.namespace)
    nc = await nats.connect(str(infra.nats_url))
    try:
        await nc.jetstream().publish(
            ns.subject(event.subject), event.to_json(), stream=ns.stream(WEBHOOKS),
            headers={"Nats-Msg-Id": msg_id},
        )  # fmt: skip
    finally:
        await nc.close()


async def test_the_active_owners_are_mailed_once_when_an_endpoint_is_disabled(
    harness: Any,
) -> None:
    async with harness() as h:
        await asyncio.wait_for(h.auth.messaging_ready.wait(), 30)
        seller_id, people = await seller_with_members(h)
        event = EndpointDisabled(
            seller_id=seller_id, mode="test", endpoint_id=uuid.uuid4(),
            url="https://hooks.example.com/tessera", description="order sync",
            failing_since=datetime.now(UTC) - timedelta(days=5, hours=1),
        )  # fmt: skip
        # Twice, past NATS's de-duplication (another message id): the inbox drops the second.
        for attempt in range(2):
            await publish(h, event, f"{event.event_id}-{attempt}")
        first = await h.mailbox.wait_for(people["owner"], SUBJECT, timeout=30)
        await h.mailbox.wait_for(people["co_owner"], SUBJECT, timeout=30)
        await asyncio.sleep(1.0)  # time for a second mail, were one to be sent
        counts = {
            who: len([m for m in await h.mailbox.messages(email) if m["Subject"] == SUBJECT])
            for who, email in people.items()
        }
        queued = await h.auth.pool.fetchval(
            "SELECT count(*) FROM email_outbox WHERE kind = 'webhook_endpoint_disabled'"
        )
    assert counts == {"owner": 1, "co_owner": 1, "developer": 0, "disabled_owner": 0}
    assert queued == 2
    text = first["Text"]
    assert "https://hooks.example.com/tessera (order sync)" in text
    assert "test mode" in text and "failed for 5 days" in text
    assert f"PATCH /v1/webhook-endpoints/{event.endpoint_id}" in text


async def test_a_seller_without_active_owners_gets_no_mail_and_the_event_is_consumed(
    harness: Any, eventually: Any
) -> None:
    async with harness() as h:
        await asyncio.wait_for(h.auth.messaging_ready.wait(), 30)
        seller_id = uuid.uuid4()
        async with h.auth.pool.acquire() as conn, conn.transaction():
            await sellers.create(conn, seller_id, f"lonely-{seller_id.hex[:8]}", "Lonely")
        event = EndpointDisabled(
            seller_id=seller_id, mode="live", endpoint_id=uuid.uuid4(),
            url="https://hooks.example.com/x", failing_since=datetime.now(UTC),
        )  # fmt: skip
        await publish(h, event, str(event.event_id))

        async def claimed() -> bool:
            found = await h.auth.pool.fetchval(
                "SELECT count(*) FROM inbox WHERE event_id = $1", event.event_id
            )
            return bool(found == 1)

        await eventually(claimed, timeout=30)
        queued = await h.auth.pool.fetchval(
            "SELECT count(*) FROM email_outbox WHERE kind = 'webhook_endpoint_disabled'"
        )
    assert queued == 0
