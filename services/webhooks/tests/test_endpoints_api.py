"""The seller API of webhook endpoints: register, read, change, delete, the secret shown
once, rotation, the test event, the delivery log, replays, and refusals (4xx, never a 500
nor a partial write)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from webhooks_factories import (  # type: ignore[import-not-found]
    A_LIVE,
    Harness,
    order_paid,
    receiving,
    until,
)

from tessera.shared.events.topology import WEBHOOKS
from tessera.shared.events.webhooks import EndpointDisabled

pytestmark = pytest.mark.integration

PATH = "/v1/webhook-endpoints"


async def test_register_read_change_delete(harness: Harness) -> None:
    key = harness.keys[A_LIVE]
    created = await harness.endpoint(
        A_LIVE, "https://hooks.example.com/tessera", event_types=["order.paid", "license.issued"],
        description="CRM sync",
    )  # fmt: skip
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["license.issued", "order.paid"]
    assert created["enabled"] is True

    read = (await harness.http.get(f"{PATH}/{created['id']}", headers=key)).json()
    assert "secret" not in read  # shown once, at creation
    assert read["description"] == "CRM sync"
    listed = (await harness.http.get(PATH, headers=key)).json()
    assert "secret" not in listed[0]

    changed = await harness.http.patch(
        f"{PATH}/{created['id']}", json={"enabled": False, "event_types": None}, headers=key
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False
    assert changed.json()["disabled_reason"] == "seller"
    assert changed.json()["event_types"] is None  # every type
    assert changed.json()["url"] == "https://hooks.example.com/tessera"

    again = await harness.http.patch(f"{PATH}/{created['id']}", json={"enabled": True}, headers=key)
    assert again.json()["disabled_reason"] is None

    assert (await harness.http.delete(f"{PATH}/{created['id']}", headers=key)).status_code == 204
    assert (await harness.http.get(f"{PATH}/{created['id']}", headers=key)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://hooks.example.com/x"},
        {"url": "https://user:pw@hooks.example.com/x"},
        {"url": "https://hooks.example.com/x", "event_types": ["order.unknown"]},
        {"url": "https://hooks.example.com/x", "event_types": []},
        {"url": "https://hooks.example.com/x", "event_types": ["order.paid", "order.paid"]},
        {"url": "https://hooks.example.com/x", "surprise": True},
        {"url": "https://hooks.example.com/x", "description": "x" * 501},
        {"url": "http://[::1/x"},
        {"url": "http:///nohost"},
        {"url": "https://hooks.example.com:99999/x"},
        {"url": "https://hooks.example.com/x#part"},
    ],
    ids=["scheme", "credentials", "unknown-type", "no-types", "repeated-type", "extra", "long",
         "bracket", "no-host", "port", "fragment"],
)  # fmt: skip
async def test_bad_input_is_a_4xx_and_writes_nothing(
    harness: Harness, body: dict[str, Any]
) -> None:
    response = await harness.http.post(PATH, json=body, headers=harness.keys[A_LIVE])
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await harness.fetchval("SELECT count(*) FROM endpoints") == 0


async def test_a_nul_character_is_a_400_not_a_500(harness: Harness) -> None:
    response = await harness.http.post(
        PATH, json={"url": "https://hooks.example.com/x", "description": "a\x00b"},
        headers=harness.keys[A_LIVE],
    )  # fmt: skip
    assert response.status_code == 400, response.text
    assert await harness.fetchval("SELECT count(*) FROM endpoints") == 0


async def test_keys_other_than_secret_keys_are_refused(harness: Harness) -> None:
    assert (await harness.http.get(PATH)).status_code == 401
    assert (await harness.http.get(PATH, headers=harness.publishable)).status_code == 403


async def test_rotation_overlap_is_bounded(harness: Harness) -> None:
    created = await harness.endpoint(A_LIVE, "https://hooks.example.com/x")
    response = await harness.http.post(
        f"{PATH}/{created['id']}/rotate-secret",
        json={"overlap_seconds": 30 * 86400},
        headers=harness.keys[A_LIVE],
    )
    assert response.status_code == 422
    immediate = await harness.http.post(
        f"{PATH}/{created['id']}/rotate-secret",
        json={"overlap_seconds": 0},
        headers=harness.keys[A_LIVE],
    )
    assert immediate.status_code == 200
    assert immediate.json()["previous_secret_expires_at"] is None


async def test_test_event_log_and_replays(harness: Harness) -> None:
    key = harness.keys[A_LIVE]
    async with receiving(mode="fail") as receiver:
        created = await harness.endpoint(A_LIVE, receiver.url, event_types=["order.paid"])
        receiver.secrets.append(created["secret"])
        sent = await harness.http.post(f"{PATH}/{created['id']}/test", headers=key)
        assert sent.status_code == 202
        test_id = sent.json()["event_id"]
        await until(lambda: len(receiver.received) >= 2)
        receiver.mode = "ok"
        await until(lambda: test_id in receiver.ids())
        assert receiver.verified()[-1].json["type"] == "webhook.test"

        async def logged() -> list[dict[str, Any]]:
            page = await harness.http.get(f"{PATH}/{created['id']}/deliveries", headers=key)
            rows: list[dict[str, Any]] = page.json()
            return rows if rows and rows[0]["delivery_status"] == "delivered" else []

        log = await until(logged)
        assert log[0]["status_code"] == 200 and log[0]["response_excerpt"] == "thanks"
        assert {row["status_code"] for row in log[1:]} == {503}
        assert log[-1]["response_excerpt"] == "down for maintenance"
        assert [row["attempt"] for row in log] == list(range(len(log), 0, -1))
        page = await harness.http.get(
            f"{PATH}/{created['id']}/deliveries", params={"limit": 1, "before": log[0]["id"]},
            headers=key,
        )  # fmt: skip
        assert [row["id"] for row in page.json()] == [log[1]["id"]]

        # A license event is not wanted by this endpoint; the paid orders are.
        events = [order_paid(A_LIVE) for _ in range(3)]
        for event in events:
            await harness.publish(event)
        wanted = {f"evt_{e.event_id.hex}" for e in events}
        await until(lambda: wanted <= receiver.ids())
        before = len(receiver.received)

        one = await harness.http.post(
            f"{PATH}/{created['id']}/replay", json={"event_id": f"evt_{events[0].event_id.hex}"},
            headers=key,
        )  # fmt: skip
        assert one.status_code == 202 and one.json() == {"queued": 1}
        await until(lambda: len(receiver.received) == before + 1)
        assert receiver.received[-1].webhook_id == f"evt_{events[0].event_id.hex}"

        since = await harness.http.post(
            f"{PATH}/{created['id']}/replay", json={"since": events[1].occurred_at.isoformat()},
            headers=key,
        )  # fmt: skip
        assert since.json() == {"queued": 2}  # the test event is not replayed
        await until(lambda: len(receiver.received) == before + 3)
        replayed = {r.webhook_id for r in receiver.received[before + 1 :]}
        assert replayed == {f"evt_{e.event_id.hex}" for e in events[1:]}

        for bad in (
            {"event_id": "evt_nope"},
            {},
            {"event_id": "x", "since": "2020-01-01T00:00:00Z"},
        ):
            response = await harness.http.post(
                f"{PATH}/{created['id']}/replay", json=bad, headers=key
            )
            assert response.status_code in (404, 422), response.text


async def test_an_endpoint_failing_for_too_long_is_disabled(start_webhooks: Any) -> None:
    async with start_webhooks(disable_after_seconds=1.0) as h, receiving(mode="fail") as receiver:
        # A token in its query stays out of the notice (the bus, auth's mail queue, the mail).
        created = await h.endpoint(A_LIVE, receiver.url + "?token=s3cret", description="order sync")
        receiver.secrets.append(created["secret"])
        # Several queued, so attempts are in flight together when it turns off: only the
        # one that turns it off reports it.
        events = [order_paid(A_LIVE) for _ in range(4)]
        for event in events:
            await h.publish(event)

        async def disabled() -> bool:
            page = await h.http.get(f"{PATH}/{created['id']}", headers=h.keys[A_LIVE])
            return bool(page.json()["disabled_reason"] == "failing")

        await until(disabled)
        # The seller's owners are mailed by auth, from webhooks' event (through the outbox).
        message = await until(lambda: last_disabled_event(h))
        await asyncio.sleep(1.0)  # attempts that were in flight finish meanwhile
        reported = await h.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = $1", EndpointDisabled.subject
        )
        assert reported == 1
        notice = EndpointDisabled.model_validate_json(message)
        assert notice.endpoint_id == uuid.UUID(created["id"])
        assert notice.tenant == A_LIVE and notice.url == receiver.url
        assert "s3cret" not in notice.model_dump_json()
        assert notice.description == "order sync"
        assert notice.failing_since < datetime.now(UTC) - timedelta(seconds=1)
        count = len(receiver.received)
        await h.publish(order_paid(A_LIVE))
        await asyncio.sleep(1.0)
        assert len(receiver.received) == count  # nothing goes to a disabled endpoint
        # Turned on again, its queued deliveries go on.
        receiver.mode = "ok"
        response = await h.http.patch(
            f"{PATH}/{created['id']}", json={"enabled": True}, headers=h.keys[A_LIVE]
        )
        assert response.json()["enabled"] is True
        # What was queued before it went off is delivered; what came while off was not queued
        # (a replay `since` recovers it).
        await until(lambda: receiver.ids() == {f"evt_{e.event_id.hex}" for e in events})


async def last_disabled_event(h: Any) -> bytes | None:
    """The last `webhooks.endpoint.disabled.v1` on webhooks' stream, if any."""
    try:
        message = await h.js.get_last_msg(
            h.ns.stream(WEBHOOKS), h.ns.subject(EndpointDisabled.subject)
        )
    except nats.js.errors.NotFoundError:
        return None
    data: bytes | None = message.data
    return data


async def test_a_redirect_is_not_followed_and_the_answer_read_is_bounded(
    start_webhooks: Any,
) -> None:
    async with (
        start_webhooks(response_excerpt_bytes=64) as h,
        receiving(mode=302) as redirecting,
        receiving() as big,
        receiving() as odd,
    ):
        big.answer_body = b"x" * 5_000_000
        odd.answer_body = b"ok\x00\xff"  # a NUL and a byte that is no UTF-8
        strange = await h.endpoint(A_LIVE, odd.url)
        odd.secrets.append(strange["secret"])
        moved = await h.endpoint(A_LIVE, redirecting.url)
        large = await h.endpoint(A_LIVE, big.url)
        big.secrets.append(large["secret"])
        await h.publish(order_paid(A_LIVE))

        async def first_attempt(endpoint: dict[str, Any]) -> dict[str, Any] | None:
            page = await h.http.get(f"{PATH}/{endpoint['id']}/deliveries", headers=h.keys[A_LIVE])
            rows = page.json()
            return rows[-1] if rows else None

        redirected = await until(lambda: first_attempt(moved))
        assert redirected["status_code"] == 302
        assert redirected["delivery_status"] == "pending"  # a redirect is a failure, retried
        answered = await until(lambda: first_attempt(large))
        assert answered["status_code"] == 200
        assert answered["response_excerpt"] == "x" * 64
        logged = await until(lambda: first_attempt(strange))
        assert logged["status_code"] == 200
        assert logged["response_excerpt"] == "ok\ufffd\ufffd"
        assert logged["delivery_status"] == "delivered"
