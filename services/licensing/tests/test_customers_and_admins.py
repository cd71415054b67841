"""The customer's own licenses and the admin API: every admin action audited, CSV export."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
from licensing_factories import Harness, an_order_paid  # type: ignore[import-not-found]

pytestmark = pytest.mark.integration


async def bought(harness: Harness, **overrides: Any) -> tuple[Any, str]:
    paid = an_order_paid(**overrides)
    await harness.publish(paid)
    (key,) = await harness.issued(paid.order_id)
    return paid, key


async def test_a_customer_sees_their_licenses_and_frees_a_seat(harness: Harness) -> None:
    paid, key = await bought(harness)
    await harness.http.post(
        "/v1/licenses/activate",
        json={"key": key, "fingerprint": "machine-a-0001", "machine_name": "Desk"},
    )
    me = harness.mint.bearer(paid.account_id)
    r = await harness.http.get("/v1/me/licenses", headers=me)
    assert r.status_code == 200
    (lic,) = r.json()
    assert lic["key"] == key
    assert lic["entitlements"] == ["chartgpt.core"]
    assert lic["max_machines"] == 3
    assert [a["machine_name"] for a in lic["activations"]] == ["Desk"]
    activation = lic["activations"][0]["id"]

    stranger = harness.mint.bearer(uuid.uuid4())
    assert (await harness.http.get("/v1/me/licenses", headers=stranger)).json() == []
    path = f"/v1/me/licenses/{lic['id']}/activations/{activation}"
    assert (await harness.http.delete(path, headers=stranger)).status_code == 404
    assert (await harness.http.delete(path, headers=me)).status_code == 204
    assert (await harness.http.delete(path, headers=me)).status_code == 404
    assert (await harness.http.get("/v1/me/licenses", headers=me)).json()[0]["activations"] == []
    removed = await harness.fetch(
        "SELECT payload->>'by' AS by FROM outbox WHERE subject = 'licensing.activation.removed.v1'"
    )
    assert [r["by"] for r in removed] == ["customer"]
    audit = await harness.fetch("SELECT action, actor_role FROM audit_log")
    assert [(a["action"], a["actor_role"]) for a in audit] == [("activation.removed", "customer")]


async def test_without_a_token_the_customer_api_says_401(harness: Harness) -> None:
    r = await harness.http.get("/v1/me/licenses")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"


async def test_the_admin_api_is_hidden_from_customers(harness: Harness) -> None:
    r = await harness.http.get(
        "/v1/admin/licenses?email=a@b.c", headers=harness.mint.bearer(uuid.uuid4())
    )
    assert r.status_code == 404


async def test_an_admin_searches_grants_changes_and_every_action_is_audited(
    harness: Harness,
) -> None:
    paid, key = await bought(harness, email="Someone@Example.com")
    admin = harness.mint.bearer(uuid.uuid4(), role="admin")
    by_key = (
        await harness.http.get("/v1/admin/licenses", params={"key": key}, headers=admin)
    ).json()
    by_email = (
        await harness.http.get(
            "/v1/admin/licenses", params={"email": "someone@example.com"}, headers=admin
        )
    ).json()
    by_account = (
        await harness.http.get(
            "/v1/admin/licenses", params={"account_id": str(paid.account_id)}, headers=admin
        )
    ).json()
    assert (
        [x["key"] for x in by_key]
        == [x["key"] for x in by_email]
        == [x["key"] for x in by_account]
        == [key]
    )
    assert (await harness.http.get("/v1/admin/licenses", headers=admin)).status_code == 400
    license_id = by_key[0]["id"]

    granted = await harness.http.post(
        "/v1/admin/licenses",
        json={
            "account_id": str(paid.account_id),
            "email": "someone@example.com",
            "policy": "chartgpt-lifetime",
            "reason": "press copy",
        },
        headers=admin,
    )
    assert granted.status_code == 201, granted.text
    assert granted.json()[0]["source"] == "complimentary"
    unknown = await harness.http.post(
        "/v1/admin/licenses",
        json={
            "account_id": str(paid.account_id),
            "email": "someone@example.com",
            "policy": "nope",
            "reason": "x",
        },
        headers=admin,
    )
    assert unknown.status_code == 422

    await harness.http.post(
        "/v1/licenses/activate", json={"key": key, "fingerprint": "machine-a-0001"}
    )
    base = f"/v1/admin/licenses/{license_id}"
    assert (
        await harness.http.post(f"{base}/suspend", json={"reason": "fraud check"}, headers=admin)
    ).json()["status"] == "suspended"
    assert (
        await harness.http.post(f"{base}/reinstate", json={"reason": "cleared"}, headers=admin)
    ).json()["status"] == "active"
    reset = (
        await harness.http.post(
            f"{base}/reset-activations", json={"reason": "new pc"}, headers=admin
        )
    ).json()
    assert reset["activations"] == []
    extended = await harness.http.post(
        f"{base}/extend",
        json={"expires_at": "2030-01-01T00:00:00Z", "reason": "goodwill"},
        headers=admin,
    )
    assert extended.json()["expires_at"].startswith("2030-01-01")
    for bad in (0, 1893456000, "0.5", "2030-01-01", "2030-01-01T00:00:00", "soon"):
        refused_date = await harness.http.post(
            f"{base}/extend", json={"expires_at": bad, "reason": "goodwill"}, headers=admin
        )
        assert refused_date.status_code == 422, (bad, refused_date.text)
        assert refused_date.headers["content-type"] == "application/problem+json"
    assert (
        await harness.http.post(f"{base}/revoke", json={"reason": "chargeback"}, headers=admin)
    ).json()["status"] == "revoked"
    refused = await harness.http.post(f"{base}/reinstate", json={"reason": "oops"}, headers=admin)
    assert refused.status_code == 409
    missing = await harness.http.post(
        f"/v1/admin/licenses/{uuid.uuid4()}/suspend", json={"reason": "x"}, headers=admin
    )
    assert missing.status_code == 404

    audit = (
        await harness.http.get("/v1/admin/audit", params={"license_id": license_id}, headers=admin)
    ).json()
    assert [a["action"] for a in reversed(audit)] == [
        "license.suspended", "license.reinstated", "activations.reset",
        "license.expiry_changed", "license.revoked",
    ]  # fmt: skip
    assert all(a["actor_role"] == "admin" for a in audit)
    subjects = await harness.outbox_subjects()
    for s in ("suspended", "reinstated", "revoked"):
        assert f"licensing.license.{s}.v1" in subjects
    assert subjects.count("licensing.license.issued.v1") == 2


async def test_the_csv_export_lists_every_license_without_keys(harness: Harness) -> None:
    _, key = await bought(harness, email="=cmd@example.com")
    await bought(harness)
    admin = harness.mint.bearer(uuid.uuid4(), role="admin")
    r = await harness.http.get("/v1/admin/licenses.csv", headers=admin)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 2
    assert key not in r.text
    assert {row["email"] for row in rows} == {"'=cmd@example.com", "buyer@example.com"}


async def test_the_role_is_checked_before_the_body_is_parsed(harness: Harness) -> None:
    # FastAPI parses a body before the role check (a dependency) runs: without the gate, a
    # malformed body got its 400/422 where a non-admin must get what an unknown path gets.
    good = b'{"email": "a@example.com", "sku": "chartgpt-lifetime", "reason": "r"}'
    bodies = (good, b'{"email": ', b"[1, 2", b'{"email": 5}')
    for who, headers, status in (
        ("anonymous", {}, 401),
        ("customer", harness.mint.bearer(uuid.uuid4()), 404),
    ):
        for path in ("/v1/admin/licenses", "/v1/admin/no-such-route"):
            for body in bodies:
                answer = await harness.http.post(
                    path, content=body, headers={**headers, "content-type": "application/json"}
                )
                assert answer.status_code == status, (who, path, body, answer.status_code)
                assert answer.headers["content-type"] == "application/problem+json"
            got = await harness.http.get(path, headers=headers)
            assert got.status_code == status, (who, path, got.status_code)
    assert await harness.fetch("SELECT id FROM licenses") == []
    admin = harness.mint.bearer(uuid.uuid4(), role="admin")
    broken = await harness.http.post(
        "/v1/admin/licenses",
        content=b'{"email": ',
        headers={**admin, "content-type": "application/json"},
    )
    assert broken.status_code == 400


async def test_every_destructive_admin_api_refuses_a_blank_reason(harness: Harness) -> None:
    paid, key = await bought(harness, email="blank-reason@example.com")
    admin = harness.mint.bearer(uuid.uuid4(), role="admin")
    [found] = (
        await harness.http.get("/v1/admin/licenses", params={"key": key}, headers=admin)
    ).json()
    base = f"/v1/admin/licenses/{found['id']}"
    grant = {"account_id": str(paid.account_id), "email": "blank-reason@example.com",
             "policy": "chartgpt-lifetime"}  # fmt: skip
    calls: list[tuple[str, dict[str, Any]]] = [
        ("/v1/admin/licenses", grant),
        (f"{base}/suspend", {}),
        (f"{base}/reinstate", {}),
        (f"{base}/revoke", {}),
        (f"{base}/reset-activations", {}),
        (f"{base}/extend", {"expires_at": "2030-01-01T00:00:00Z"}),
    ]
    for path, body in calls:
        for reason in ("", " ", "   \t\n", None):
            sent = body if reason is None else {**body, "reason": reason}
            answer = await harness.http.post(path, json=sent, headers=admin)
            assert answer.status_code == 422, (path, reason, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
    # Nothing was changed: the license is as it was, and nothing new was granted.
    [after] = (
        await harness.http.get("/v1/admin/licenses", params={"key": key}, headers=admin)
    ).json()
    assert after["status"] == found["status"]
    mine = await harness.http.get(
        "/v1/admin/licenses", params={"account_id": str(paid.account_id)}, headers=admin
    )
    assert len(mine.json()) == 1
