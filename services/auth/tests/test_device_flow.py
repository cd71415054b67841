"""The device authorization grant (RFC 8628) driven by oauthlib's DeviceClient, with the
approval done as the portal's page does it, and refresh-token rotation."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from oauthlib.oauth2 import DeviceClient
from oauthlib.oauth2.rfc6749.errors import AccessDeniedError, OAuth2Error

pytestmark = pytest.mark.integration

CLIENT_ID = "chartgpt-desktop"
FORM = {"content-type": "application/x-www-form-urlencoded"}
BASE = "https://auth.test"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class Desktop:
    """The desktop app: oauthlib prepares every request and parses every answer."""

    def __init__(self, http: httpx.AsyncClient, client_id: str = CLIENT_ID) -> None:
        self.http = http
        self.oauth = DeviceClient(client_id)

    async def authorize(self, version: str = "1.4.2") -> dict[str, Any]:
        uri = self.oauth.prepare_request_uri(f"{BASE}/v1/device/authorize", client_version=version)
        response = await self.http.post(
            "/v1/device/authorize", content=urlsplit(uri).query, headers=FORM
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def poll(self, device_code: str) -> dict[str, Any]:
        """Tokens, or raises the OAuth error oauthlib parses from the answer."""
        body = self.oauth.prepare_request_body(device_code, include_client_id=True)
        response = await self.http.post("/v1/device/token", content=body, headers=FORM)
        token: dict[str, Any] = self.oauth.parse_request_body_response(response.text)
        return token

    async def refresh(self, refresh_token: str) -> httpx.Response:
        body = self.oauth.prepare_refresh_body(refresh_token=refresh_token, client_id=CLIENT_ID)
        return await self.http.post("/v1/device/token", content=body, headers=FORM)


def error_of(call: Any) -> Any:
    async def run() -> str:
        try:
            await call
        except OAuth2Error as error:
            return str(error.error)
        return "no error"

    return run()


async def test_authorize_approve_and_poll_to_tokens(harness: Any) -> None:
    async with harness() as h:
        _, email = await h.user()
        token, _ = await h.signed_in_token(email)
        desktop = Desktop(h.client_from("203.0.113.7"))
        grant = await desktop.authorize()
        pending = await error_of(desktop.poll(grant["device_code"]))  # too early
        await asyncio.sleep(grant["interval"] + 1.1)  # after slow_down added a second
        waiting = await error_of(desktop.poll(grant["device_code"]))
        entry = grant["user_code"].lower().replace("-", "")
        shown = await h.client.post(
            "/v1/device/lookup", json={"user_code": entry}, headers=bearer(token)
        )
        approved = await h.client.post(
            "/v1/device/approve",
            json={"user_code": grant["user_code"], "decision": "approve"},
            headers=bearer(token),
        )
        await asyncio.sleep(grant["interval"] + 1.1)
        tokens = await desktop.poll(grant["device_code"])
        await asyncio.sleep(grant["interval"] + 1.1)
        reused = await error_of(desktop.poll(grant["device_code"]))
        sessions = (await h.client.get("/v1/sessions", headers=bearer(token))).json()["sessions"]
    code = grant["user_code"]
    assert (
        len(code) == 9
        and code[4] == "-"
        and set(code.replace("-", "")) <= set("BCDFGHJKLMNPQRSTVWXZ")
    )
    assert grant["expires_in"] == 600 and grant["verification_uri"] == "https://portal.test/device"
    assert "verification_uri_complete" not in grant  # no one-click approval link
    assert len(grant["device_code"]) >= 22
    assert pending == "slow_down" and waiting == "authorization_pending"
    assert shown.status_code == 200, shown.text
    assert shown.json()["client_name"] == "ChartGPT for NinjaTrader"
    assert shown.json()["client_version"] == "1.4.2" and shown.json()["ip"] == "203.0.113.7"
    assert approved.status_code == 200
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"] and tokens["access_token"]
    assert reused == "invalid_grant"
    device = [s for s in sessions if s["kind"] == "device"]
    assert len(device) == 1 and device[0]["client_version"] == "1.4.2"


async def test_slow_down_adds_to_the_interval_and_is_remembered(harness: Any) -> None:
    async with harness() as h:
        desktop = Desktop(h.client)
        grant = await desktop.authorize()
        assert grant["interval"] == 1
        await asyncio.sleep(1.05)
        first = await error_of(desktop.poll(grant["device_code"]))  # on time: accepted
        second = await error_of(desktop.poll(grant["device_code"]))  # early: interval 2
        await asyncio.sleep(1.2)
        third = await error_of(desktop.poll(grant["device_code"]))  # 1.2 s < 2 s: interval 3
        await asyncio.sleep(3.1)
        fourth = await error_of(desktop.poll(grant["device_code"]))
    assert [first, second, third, fourth] == [
        "authorization_pending",
        "slow_down",
        "slow_down",
        "authorization_pending",
    ]


async def test_denial_expiry_and_wrong_codes(harness: Any) -> None:
    async with harness(
        device_code_ttl_seconds=2, rl_device_wrong_entries_per_user="3/15 minutes"
    ) as h:
        _, email = await h.user()
        token, _ = await h.signed_in_token(email)
        desktop = Desktop(h.client)
        denied_grant = await desktop.authorize()
        expiring = await desktop.authorize()
        await h.client.post(
            "/v1/device/approve",
            json={"user_code": denied_grant["user_code"], "decision": "deny"},
            headers=bearer(token),
        )
        await asyncio.sleep(1.05)
        denied: str
        try:
            await desktop.poll(denied_grant["device_code"])
            denied = "no error"
        except AccessDeniedError:
            denied = "access_denied"
        await asyncio.sleep(1.1)
        expired = await error_of(desktop.poll(expiring["device_code"]))
        late_approval = await h.client.post(
            "/v1/device/approve",
            json={"user_code": expiring["user_code"], "decision": "approve"},
            headers=bearer(token),
        )
        wrong = [
            await h.client.post(
                "/v1/device/lookup", json={"user_code": "BCDF-GHJK"}, headers=bearer(token)
            )
            for _ in range(2)
        ]
        locked = await h.client.post(
            "/v1/device/lookup", json={"user_code": "BCDF-GHJK"}, headers=bearer(token)
        )
    assert denied == "access_denied"
    assert expired == "expired_token"
    assert late_approval.status_code == 404  # counted as the first wrong entry
    assert [w.status_code for w in wrong] == [404, 404]
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0


async def test_a_device_code_is_bound_to_its_client(harness: Any) -> None:
    settings = {"device_clients": {CLIENT_ID: "ChartGPT", "other-app": "Other"}}
    async with harness(**settings) as h:
        grant = await Desktop(h.client).authorize()
        await asyncio.sleep(1.05)
        other = await error_of(Desktop(h.client, "other-app").poll(grant["device_code"]))
        unknown = await h.client.post(
            "/v1/device/authorize", content="client_id=nobody", headers=FORM
        )
    assert other == "invalid_grant"
    assert unknown.status_code == 401 and unknown.json() == {
        "error": "invalid_client",
        "error_description": "Unknown client.",
    }


async def signed_in_desktop(h: Any) -> tuple[Desktop, dict[str, Any], str]:
    _, email = await h.user()
    token, _ = await h.signed_in_token(email)
    desktop = Desktop(h.client)
    grant = await desktop.authorize()
    await h.client.post(
        "/v1/device/approve",
        json={"user_code": grant["user_code"], "decision": "approve"},
        headers=bearer(token),
    )
    await asyncio.sleep(grant["interval"] + 0.05)
    return desktop, await desktop.poll(grant["device_code"]), token


async def test_refresh_tokens_rotate_and_reuse_revokes_the_family(
    harness: Any, database_url: str
) -> None:
    async with harness(refresh_reuse_grace_seconds=0) as h:
        desktop, tokens, web_token = await signed_in_desktop(h)
        first = tokens["refresh_token"]
        rotated = await desktop.refresh(first)
        second = rotated.json()["refresh_token"]
        await asyncio.sleep(0.01)
        replayed = await desktop.refresh(first)  # theft (or a bug): the family dies
        after = await desktop.refresh(second)
        sessions = (await h.client.get("/v1/sessions", headers=bearer(web_token))).json()
        audit = await h.auth.pool.fetchval(
            "SELECT count(*) FROM audit_events WHERE action = 'refresh.reuse_detected'"
        )
    assert rotated.status_code == 200 and second != first
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
    assert [s for s in sessions["sessions"] if s["kind"] == "device"] == []
    assert audit == 1


async def test_a_lost_refresh_response_may_be_retried_within_the_grace(harness: Any) -> None:
    async with harness(refresh_reuse_grace_seconds=5) as h:
        desktop, tokens, _ = await signed_in_desktop(h)
        first = tokens["refresh_token"]
        lost = await desktop.refresh(first)  # the app never saw this answer
        retried = await desktop.refresh(first)
        onward = await desktop.refresh(retried.json()["refresh_token"])
        lost_one = await desktop.refresh(lost.json()["refresh_token"])
    assert [lost.status_code, retried.status_code, onward.status_code] == [200, 200, 200]
    assert lost_one.status_code == 400  # replaced by the retry's token; reuse kills family


async def test_revoking_the_device_session_ends_the_desktop_sign_in(harness: Any) -> None:
    async with harness() as h:
        desktop, tokens, web_token = await signed_in_desktop(h)
        sessions = (await h.client.get("/v1/sessions", headers=bearer(web_token))).json()
        device = next(s for s in sessions["sessions"] if s["kind"] == "device")
        revoked = await h.client.delete(f"/v1/sessions/{device['id']}", headers=bearer(web_token))
        refreshed = await desktop.refresh(tokens["refresh_token"])
    assert revoked.status_code == 204
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


async def test_malformed_token_requests_get_oauth_errors(harness: Any) -> None:
    async with harness() as h:
        answers = [
            await h.client.post(
                "/v1/device/token",
                content="grant_type=password&client_id=chartgpt-desktop",
                headers=FORM,
            ),
            await h.client.post(
                "/v1/device/token", content="client_id=chartgpt-desktop", headers=FORM
            ),
            await h.client.post("/v1/device/token", json={"grant_type": "x"}),
            await h.client.post(
                "/v1/device/token",
                content="grant_type=refresh_token&client_id=chartgpt-desktop&client_id=x&refresh_token=y",
                headers=FORM,
            ),
        ]
    assert [a.json()["error"] for a in answers] == [
        "unsupported_grant_type",
        "invalid_request",
        "invalid_request",
        "invalid_request",
    ]
    assert all(a.status_code == 400 and a.headers["cache-control"] == "no-store" for a in answers)


async def test_only_a_recent_browser_sign_in_approves_a_device(harness: Any) -> None:
    async with harness(device_approval_max_age_seconds=600) as h:
        # A desktop signed in by a device grant holds a perfectly valid access token ...
        _, tokens, _ = await signed_in_desktop(h)
        device_token = tokens["access_token"]
        assert (await h.client.get("/v1/sessions", headers=bearer(device_token))).status_code == 200
        # ... which can neither look up nor approve another device's code.
        grant = await Desktop(h.client_from("198.51.100.9")).authorize()
        entry = {"user_code": grant["user_code"]}
        by_device = [
            await h.client.post("/v1/device/lookup", json=entry, headers=bearer(device_token)),
            await h.client.post(
                "/v1/device/approve",
                json={**entry, "decision": "approve"},
                headers=bearer(device_token),
            ),
        ]
        for answer in by_device:
            assert answer.status_code == 403, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["type"].endswith("browser-session-required")
        # A browser session signed in longer ago than the limit is asked to sign in again.
        _, email = await h.user()
        stale_token, stale = await h.signed_in_token(email)
        key = h.auth.keys("sess", h.auth.hasher("session", stale["session_id"]))
        await h.auth.redis.hset(key, "created_at", repr(time.time() - 601))
        by_stale = await h.client.post(
            "/v1/device/approve", json={**entry, "decision": "approve"}, headers=bearer(stale_token)
        )
        assert by_stale.status_code == 403, by_stale.text
        assert by_stale.json()["type"].endswith("reauthentication-required")
        assert by_stale.json()["max_age"] == 600
        # Nothing was approved: the new desktop is still waiting.
        await asyncio.sleep(grant["interval"] + 0.05)
        waiting = await error_of(Desktop(h.client).poll(grant["device_code"]))
        assert waiting == "authorization_pending"
        # A fresh browser sign-in approves.
        fresh_token, _ = await h.signed_in_token(email)
        by_fresh = await h.client.post(
            "/v1/device/approve", json={**entry, "decision": "approve"}, headers=bearer(fresh_token)
        )
        assert by_fresh.status_code == 200, by_fresh.text
        await asyncio.sleep(grant["interval"] + 0.05)
        assert (await Desktop(h.client).poll(grant["device_code"]))["refresh_token"]
