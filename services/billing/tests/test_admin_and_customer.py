"""The customer's orders and the admin surface: role boundary, grants, replay, reports."""

import csv
import io
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_admin_routes_are_404_to_customers_and_401_without_a_token(billing: Any) -> None:
    assert (await billing.client.get("/v1/admin/orders")).status_code == 401
    customer = await billing.client.get("/v1/admin/orders", headers=bearer(billing.token()))
    assert customer.status_code == 404
    forged = await billing.client.get(
        "/v1/admin/orders", headers=bearer(billing.token(role="admin") + "x")
    )
    assert forged.status_code == 401
    admin = await billing.client.get(
        "/v1/admin/orders", headers=bearer(billing.token(role="admin"))
    )
    assert admin.status_code == 200


async def test_a_customer_sees_only_their_own_orders(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    mine, _ = stripe_events.purchase("me@example.com")
    theirs, _ = stripe_events.purchase("them@example.com")
    await billing.deliver(mine)
    await billing.deliver(theirs)

    async def my_account() -> Any:
        return await billing.value("SELECT account_id FROM orders WHERE email = 'me@example.com'")

    account_id = await eventually(my_account)
    response = await billing.client.get(
        "/v1/me/orders", headers=bearer(billing.token(account_id=account_id))
    )
    assert response.status_code == 200
    [order] = response.json()
    assert order["email"] == "me@example.com"
    assert order["status"] == "paid"


async def test_an_admin_grant_creates_an_account_and_a_paid_order_like_a_purchase(
    billing: Any, eventually: Any
) -> None:
    response = await billing.client.post(
        "/v1/admin/accounts",
        json={"email": "Friend@Example.com", "sku": "chartgpt-lifetime", "note": "press copy"},
        headers=bearer(billing.token(role="admin")),
    )
    assert response.status_code == 201
    body = response.json()

    async def paid() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await billing.published("billing.order.paid.v1")
        return found

    [event] = await eventually(paid)
    [created] = await billing.published("billing.account.created.v1")
    assert event["source"] == "admin" and created["source"] == "admin"
    assert event["amount_total"] == 0
    assert event["order_id"] == body["order_id"] and event["account_id"] == body["account_id"]
    detail = await billing.client.get(
        f"/v1/admin/accounts/{body['account_id']}", headers=bearer(billing.token(role="admin"))
    )
    assert detail.json()["audit"][0]["action"] == "order.grant"
    assert detail.json()["orders"][0]["source"] == "admin"


async def test_seeding_an_account_needs_a_reason_that_is_not_blank(billing: Any) -> None:
    admin = bearer(billing.token(role="admin"))
    for note in ("", " ", "  \t\n", None):
        body: dict[str, Any] = {"email": "noreason@example.com", "sku": "chartgpt-lifetime"}
        if note is not None:
            body["note"] = note
        answer = await billing.client.post("/v1/admin/accounts", json=body, headers=admin)
        assert answer.status_code == 422, (note, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    assert await billing.value("SELECT count(*) FROM accounts") == 0
    assert await billing.value("SELECT count(*) FROM orders") == 0


async def test_a_failed_event_can_be_replayed_after_the_catalog_is_fixed(
    billing: Any, stripe_events: Any
) -> None:
    # Not paid yet (a paid one is held for review instead: test_held_orders.py).
    event, _ = stripe_events.purchase(sku="chartgpt-team", payment_status="unpaid")
    assert await billing.outcome(event) == "failed"
    admin = bearer(billing.token(role="admin"))
    failed = await billing.client.get("/v1/admin/webhook-events?status=failed", headers=admin)
    assert [e["id"] for e in failed.json()] == [event["id"]]
    async with billing.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO catalog (sku, name, unit_amount, currency, product, policy, seller_id,"
            " mode) VALUES ('chartgpt-team', 'Team', 14900, 'usd', 'chartgpt',"
            " 'chartgpt-lifetime', '00000000-0000-4000-8000-000000000001', 'live')"
        )
    replayed = await billing.client.post(
        f"/v1/admin/webhook-events/{event['id']}/replay", headers=admin
    )
    assert replayed.json()["status"] == "processed"
    again = await billing.client.post(
        f"/v1/admin/webhook-events/{event['id']}/replay", headers=admin
    )
    assert again.json()["status"] == "processed"
    assert await billing.value("SELECT count(*) FROM orders") == 1
    assert await billing.value("SELECT status FROM orders") == "awaiting_payment"
    unknown = await billing.client.post("/v1/admin/webhook-events/evt_nope/replay", headers=admin)
    assert unknown.status_code == 404


async def test_revenue_and_csv_exports_add_up(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    first, ids = stripe_events.purchase("a@example.com")
    second, _ = stripe_events.purchase("b@example.com", quantity=2)
    await billing.deliver(first)
    await billing.deliver(second)
    await billing.deliver(stripe_events.refund(ids, 5000))
    admin = bearer(billing.token(role="admin"))
    summary = (await billing.client.get("/v1/admin/revenue", headers=admin)).json()
    price = stripe_events.price
    assert summary["currency_totals"]["usd"] == {
        "gross": 3 * price,
        "refunds": 5000,
        "disputes_lost": 0,
        "net": 3 * price - 5000,
    }
    orders_csv = await billing.client.get("/v1/admin/exports/orders.csv", headers=admin)
    assert orders_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(orders_csv.text)))
    assert sorted(r["email"] for r in rows) == ["a@example.com", "b@example.com"]
    await eventually(lambda: _accounts(billing, 2))
    accounts_csv = await billing.client.get("/v1/admin/exports/accounts.csv", headers=admin)
    assert len(list(csv.DictReader(io.StringIO(accounts_csv.text)))) == 2
    found = await billing.client.get(f"/v1/admin/accounts?q={ids['payment_intent']}", headers=admin)
    assert [a["email"] for a in found.json()] == ["a@example.com"]
    bad_range = await billing.client.get(
        "/v1/admin/revenue?start=2026-02-01&end=2026-01-01", headers=admin
    )
    assert bad_range.status_code == 422


async def _accounts(billing: Any, n: int) -> bool:
    return bool(await billing.value("SELECT count(*) FROM accounts") == n)


def test_csv_cells_cannot_smuggle_spreadsheet_formulas() -> None:
    from tessera.billing.admin.service import csv_text

    text = csv_text(["email"], [['=HYPERLINK("http://evil")'], ["plain@example.com"]])
    assert "'=HYPERLINK" in text


async def test_revenue_dates_must_be_dates_as_the_openapi_says(billing: Any) -> None:
    admin = bearer(billing.token(role="admin"))
    for query in ("end=0", "start=0", "end=1700000000", "end=0.5", "start=2026-1-1",
                  "end=2026-01-31T00:00:00Z", "end=tomorrow",
                  # Dates a route cannot step from without overflowing (once a 500).
                  "end=0001-01-05", "start=0001-01-01&end=0001-01-05", "end=9999-12-31",
                  "start=1999-12-31", "end=9999-12-31&start=9999-12-01"):  # fmt: skip
        answer = await billing.client.get(f"/v1/admin/revenue?{query}", headers=admin)
        assert answer.status_code == 422, (query, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["errors"][0]["loc"][0] == "query"
    good = await billing.client.get(
        "/v1/admin/revenue?start=2026-01-01&end=2026-01-31", headers=admin
    )
    assert good.status_code == 200 and good.json()["start"] == "2026-01-01"


async def test_the_catalog_is_public_with_names_and_prices(billing: Any) -> None:
    answer = await billing.client.get("/v1/catalog")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=300"
    [item] = [i for i in answer.json() if i["sku"] == "chartgpt-lifetime"]
    assert item["name"] == "ChartGPT — lifetime license"
    assert item["policy"] == "chartgpt-lifetime" and item["product"] == "chartgpt"
    assert item["unit_amount"] > 0 and item["currency"] == "usd" and item["active"] is True
    assert "stripe_price_id" not in item


async def test_the_role_is_checked_before_the_body_is_parsed(billing: Any) -> None:
    # FastAPI parses a body before the role check (a dependency) runs: without the gate, a
    # malformed body got its 400/422 where a non-admin must get what an unknown path gets.
    bodies = (
        ("application/json", b'{"email": "seed@example.com"}'),
        ("application/json", b'{"email": '),
        ("application/json", b"[1, 2"),
        ("text/plain", b"\x00\xff"),
    )
    for who, headers, status in (
        ("anonymous", {}, 401),
        ("customer", bearer(billing.token()), 404),
        ("forged admin", bearer(billing.token(role="admin") + "x"), 401),
    ):
        for path in ("/v1/admin/accounts", "/v1/admin/no-such-route", "/v1/admin"):
            for content_type, body in bodies:
                answer = await billing.client.post(
                    path, content=body, headers={**headers, "content-type": content_type}
                )
                assert answer.status_code == status, (who, path, body, answer.status_code)
                assert answer.headers["content-type"] == "application/problem+json"
            got = await billing.client.get(path, headers=headers)
            assert got.status_code == status, (who, path, got.status_code)
    # An admin's malformed body gets the parser's own answer.
    admin = bearer(billing.token(role="admin"))
    broken = await billing.client.post(
        "/v1/admin/accounts",
        content=b'{"email": ',
        headers={**admin, "content-type": "application/json"},
    )
    assert broken.status_code == 400
    assert broken.json()["type"].endswith(":malformed-body")
