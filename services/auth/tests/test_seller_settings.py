"""A seller's settings: members read them, owners change them (a merge of top-level fields,
audited with the names of the fields that changed), bad values are a 422 problem and
change nothing, and another seller's member learns nothing (404). The directory record
carrying them to other processes: tests/test_seller_settings.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from test_sellers import (  # type: ignore[import-not-found]
    JOIN_LINK,
    bearer,
    developer_token,
    seller_id_of,
)

from tessera.auth.sellers import service as sellers
from tessera.shared.events.auth import SellerSettings

pytestmark = pytest.mark.integration

DEFAULTS = SellerSettings().model_dump(mode="json")


async def join_as_developer(h: Any, owner: str, slug: str) -> str:
    """A developer (not an owner) of `slug`, invited and joined; their access token."""
    email = h.new_email()
    invited = await h.client.post(
        f"/v1/sellers/{slug}/invites", json={"email": email}, headers=bearer(owner)
    )
    assert invited.status_code == 201, invited.text
    message = await h.mailbox.wait_for(email, "Join")
    token = JOIN_LINK.search(message["Text"])
    assert token is not None
    joined = await h.client.post(
        "/v1/sellers/invites/accept", json={"token": token.group(1), "browser": h.new_browser()}
    )
    assert joined.status_code == 200, joined.text
    access: str = await h.access_token(joined.json()["session_id"])
    return access


async def settings_audit(h: Any, slug: str) -> list[list[str]]:
    rows = await h.auth.pool.fetch(
        "SELECT detail FROM audit_events WHERE seller_id = $1 AND action = $2 ORDER BY at",
        await seller_id_of(h, slug),
        "seller.settings_changed",
    )
    return [json.loads(r["detail"])["fields"] for r in rows]


async def test_owners_change_settings_and_developers_read_them(harness: Any) -> None:
    async with harness() as h:
        owner = await developer_token(h, h.new_email(), "set-co")
        developer = await join_as_developer(h, owner, "set-co")
        first = await h.client.get("/v1/sellers/set-co/settings", headers=bearer(developer))
        changed = await h.client.patch(
            "/v1/sellers/set-co/settings",
            json={
                "upgrade_url": "https://set.example/upgrade?plan=pro",
                "support_email": "help@set.example",
                "branding": {"display_name": "  Set Co  ", "accent_color": "#12abEF"},
                "usage_thresholds": [100, 50, 90],
            },
            headers=bearer(owner),
        )
        # A merge: only the named field changes; the same values again change nothing.
        second = await h.client.patch(
            "/v1/sellers/set-co/settings",
            json={"past_due_grace_days": 0, "upgrade_url": "https://set.example/upgrade?plan=pro"},
            headers=bearer(owner),
        )
        unchanged = await h.client.patch(
            "/v1/sellers/set-co/settings", json={"past_due_grace_days": 0}, headers=bearer(owner)
        )
        # `null` takes a field back to its default.
        reset = await h.client.patch(
            "/v1/sellers/set-co/settings",
            json={"usage_thresholds": None, "branding": None},
            headers=bearer(owner),
        )
        read = await h.client.get("/v1/sellers/set-co/settings", headers=bearer(developer))
        seller = await sellers.by_slug(h.auth.pool, "set-co")
        held = h.auth.sellers.by_slug("set-co")
        audited = await settings_audit(h, "set-co")
    assert first.status_code == 200 and first.json() == DEFAULTS
    assert changed.status_code == 200, changed.text
    assert changed.json() == DEFAULTS | {
        "upgrade_url": "https://set.example/upgrade?plan=pro",
        "support_email": "help@set.example",
        "branding": {"display_name": "Set Co", "logo_url": None, "accent_color": "#12abEF"},
        "usage_thresholds": [50, 90, 100],
    }
    assert second.json()["past_due_grace_days"] == 0
    assert second.json()["usage_thresholds"] == [50, 90, 100]
    assert unchanged.status_code == 200
    assert reset.json() == DEFAULTS | {
        "upgrade_url": "https://set.example/upgrade?plan=pro",
        "support_email": "help@set.example",
        "past_due_grace_days": 0,
    }
    assert read.json() == reset.json()
    # Three changes, each one version and one audit entry naming what changed.
    assert seller is not None and seller.version == 4
    assert held is not None and held.version == 4
    assert held.settings.model_dump(mode="json") == reset.json()
    assert audited == [
        ["support_email", "upgrade_url", "branding", "usage_thresholds"],
        ["past_due_grace_days"],
        ["branding", "usage_thresholds"],
    ]


async def test_a_developer_cannot_change_settings(harness: Any) -> None:
    async with harness() as h:
        owner = await developer_token(h, h.new_email(), "dev-only")
        developer = await join_as_developer(h, owner, "dev-only")
        refused = await h.client.patch(
            "/v1/sellers/dev-only/settings",
            json={"upgrade_url": "https://evil.example"},
            headers=bearer(developer),
        )
        seller = await sellers.by_slug(h.auth.pool, "dev-only")
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:tessera:problem:owner-required"
    assert seller is not None and seller.settings == SellerSettings() and seller.version == 1


async def test_another_seller_s_member_gets_404(harness: Any) -> None:
    async with harness() as h:
        await developer_token(h, h.new_email(), "victim-co")
        intruder = await developer_token(h, h.new_email(), "intruder")
        read = await h.client.get("/v1/sellers/victim-co/settings", headers=bearer(intruder))
        write = await h.client.patch(
            "/v1/sellers/victim-co/settings",
            json={"upgrade_url": "https://evil.example"},
            headers=bearer(intruder),
        )
        anonymous = await h.client.get("/v1/sellers/victim-co/settings")
        seller = await sellers.by_slug(h.auth.pool, "victim-co")
    for response in (read, write):
        assert response.status_code == 404
        assert response.json()["type"] == "urn:tessera:problem:unknown-seller"
    assert anonymous.status_code == 401
    assert seller is not None and seller.settings == SellerSettings() and seller.version == 1


BAD = {
    "http-upgrade-url": {"upgrade_url": "http://acme.example/upgrade"},
    "relative-upgrade-url": {"upgrade_url": "/upgrade"},
    "url-with-password": {"upgrade_url": "https://user:pw@acme.example/"},
    "long-url": {"upgrade_url": "https://acme.example/" + "a" * 2000},
    "not-an-email": {"support_email": "help-at-acme"},
    "long-display-name": {"branding": {"display_name": "x" * 81}},
    "empty-display-name": {"branding": {"display_name": "   "}},
    "http-logo": {"branding": {"logo_url": "http://acme.example/logo.png"}},
    "short-colour": {"branding": {"accent_color": "#fff"}},
    "named-colour": {"branding": {"accent_color": "red"}},
    "unknown-branding-field": {"branding": {"font": "Comic Sans"}},
    "grace-too-long": {"past_due_grace_days": 31},
    "grace-negative": {"past_due_grace_days": -1},
    "no-thresholds": {"usage_thresholds": []},
    "six-thresholds": {"usage_thresholds": [10, 20, 30, 40, 50, 60]},
    "repeated-threshold": {"usage_thresholds": [80, 80]},
    "zero-threshold": {"usage_thresholds": [0, 100]},
    "over-100-threshold": {"usage_thresholds": [101]},
    "unknown-field": {"theme": "dark"},
    "valid-then-bad": {"support_email": "ok@acme.example", "past_due_grace_days": 99},
    "not-an-object": ["upgrade_url"],
}


async def test_bad_values_are_a_422_problem_and_change_nothing(harness: Any) -> None:
    async with harness() as h:
        owner = await developer_token(h, h.new_email(), "strict-co")
        answers = {
            name: await h.client.patch(
                "/v1/sellers/strict-co/settings", json=body, headers=bearer(owner)
            )
            for name, body in BAD.items()
        }
        seller = await sellers.by_slug(h.auth.pool, "strict-co")
        audited = await settings_audit(h, "strict-co")
    for name, response in answers.items():
        assert response.status_code == 422, (name, response.text)
        assert re.match(r"application/problem\+json", response.headers["content-type"]), name
    assert seller is not None and seller.settings == SellerSettings() and seller.version == 1
    assert audited == []
