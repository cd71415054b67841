"""Sellers' own return pages: a one-time or subscription checkout made with a secret key may
name `success_url` and `cancel_url` (Stripe fills `{CHECKOUT_SESSION_ID}`); a publishable
key, or none, may not (403), and a URL that is not an absolute http(s) one (https with a
live key) is a 422 with no session made, at Stripe or on the built-in test checkout, which
sends its buyer to them as Stripe does."""

from __future__ import annotations

from typing import Any

import pytest
from test_checkout_outcome import seller_keys, trial_tier  # type: ignore[import-not-found]

from tessera.devstack.stripe_standin.testing import StandInServer
from tessera.shared.sellers import HOME_LIVE

pytestmark = pytest.mark.integration

SUCCESS = "https://shop.example.com/thanks?order={CHECKOUT_SESSION_ID}#done"
CANCEL = "https://shop.example.com/pricing"
ROUTE = {"one-time": "/v1/checkout/sessions", "subscription": "/v1/checkout/subscriptions"}
BODY = {"one-time": {"sku": "chartgpt-lifetime"}, "subscription": {"tier": "pro"}}
NEED_SECRET = "urn:tessera:problem:return-urls-need-secret-key"
INVALID = "urn:tessera:problem:invalid-return-url"


async def sessions_made(standin: StandInServer) -> list[Any]:
    listed = await standin.client().v1.checkout.sessions.list_async({"limit": 100})
    return list(listed.data)


@pytest.fixture
async def shop(on_standin: Any, standin: StandInServer) -> Any:
    """Billing on the stand-in, the home seller's tier `pro` in Stripe."""
    await trial_tier(on_standin)
    return on_standin


@pytest.mark.parametrize("kind", ["one-time", "subscription"])
async def test_a_secret_key_names_its_own_return_pages(
    shop: Any, standin: StandInServer, kind: str
) -> None:
    keys = await seller_keys(shop, [(HOME_LIVE, "secret")])
    own = {**BODY[kind], "success_url": SUCCESS, "cancel_url": CANCEL}
    made = await shop.client.post(ROUTE[kind], json=own, headers=keys["secret"])
    assert made.status_code == 201, made.text
    # Without them, the defaults: the portal's success page, which asks billing, and the site.
    plain = await shop.client.post(ROUTE[kind], json=BODY[kind], headers=keys["secret"])
    assert plain.status_code == 201, plain.text
    stripe = standin.client()
    mine = await stripe.v1.checkout.sessions.retrieve_async(made.json()["id"])
    assert (mine.success_url, mine.cancel_url) == (SUCCESS, CANCEL)
    default = await stripe.v1.checkout.sessions.retrieve_async(plain.json()["id"])
    portal = str(shop.settings.portal_url).rstrip("/")
    assert default.success_url == f"{portal}/checkout/success?session_id={{CHECKOUT_SESSION_ID}}"
    assert default.cancel_url == str(shop.settings.site_url)
    # Only one given: the other is the default.
    half = await shop.client.post(
        ROUTE[kind], json={**BODY[kind], "cancel_url": CANCEL}, headers=keys["secret"]
    )
    halved = await stripe.v1.checkout.sessions.retrieve_async(half.json()["id"])
    assert (halved.success_url, halved.cancel_url) == (default.success_url, CANCEL)


@pytest.mark.parametrize("kind", ["one-time", "subscription"])
@pytest.mark.parametrize("field", ["success_url", "cancel_url"])
async def test_a_publishable_key_cannot_name_return_pages(
    shop: Any, standin: StandInServer, kind: str, field: str
) -> None:
    keys = await seller_keys(shop, [(HOME_LIVE, "publishable")])
    url = SUCCESS if field == "success_url" else CANCEL
    refused = await shop.client.post(
        ROUTE[kind], json={**BODY[kind], field: url}, headers=keys["publishable"]
    )
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == NEED_SECRET
    if kind == "one-time":  # the home seller's checkout without a key: the same
        anonymous = await shop.client.post(ROUTE[kind], json={**BODY[kind], field: url})
        assert anonymous.json()["type"] == NEED_SECRET
    assert await sessions_made(standin) == []
    # The same key without return pages still sells.
    fine = await shop.client.post(ROUTE[kind], json=BODY[kind], headers=keys["publishable"])
    assert fine.status_code == 201, fine.text


BAD = [
    ("script", "success_url", "javascript:alert(document.cookie)", INVALID),
    ("relative", "success_url", "/thanks?order={CHECKOUT_SESSION_ID}", INVALID),
    ("http-in-live-mode", "cancel_url", "http://shop.example.com/pricing", INVALID),
    ("credentials", "success_url", "https://shop.example.com@evil.example/x", INVALID),
    ("backslash", "cancel_url", "https://evil.example\\@shop.example.com/", INVALID),
    ("space", "success_url", "https://shop.example.com/a b", INVALID),
    ("other-braces", "success_url", "https://shop.example.com/{ORDER_ID}", INVALID),
    ("placeholder-in-cancel", "cancel_url", "https://shop.example.com/{CHECKOUT_SESSION_ID}", INVALID),
    ("placeholder-in-host", "success_url", "https://{CHECKOUT_SESSION_ID}.example.com/", INVALID),
    ("port-out-of-range", "success_url", "https://shop.example.com:70000/", INVALID),
    ("unbalanced-ipv6", "success_url", "https://[abc/x", INVALID),
    ("not-ipv6", "cancel_url", "https://[zz]/x", INVALID),
    ("empty", "cancel_url", "", "urn:tessera:problem:validation-failed"),
    ("too-long", "success_url", "https://shop.example.com/" + "a" * 2048,
     "urn:tessera:problem:validation-failed"),
]  # fmt: skip


@pytest.mark.parametrize("kind", ["one-time", "subscription"])
async def test_a_bad_return_url_is_refused_and_no_session_is_made(
    shop: Any, standin: StandInServer, kind: str
) -> None:
    keys = await seller_keys(shop, [(HOME_LIVE, "secret")])
    for case, field, url, problem in BAD:
        refused = await shop.client.post(
            ROUTE[kind], json={**BODY[kind], field: url}, headers=keys["secret"]
        )
        assert refused.status_code == 422, (case, refused.text)
        assert refused.headers["content-type"] == "application/problem+json", case
        body = refused.json()
        assert body["type"] == problem, (case, body)
        if problem == INVALID:
            assert body["field"] == field and body["detail"].startswith(field), (case, body)
        assert not url or url[:40] not in refused.text, case  # never echoed back
    assert await sessions_made(standin) == []


async def test_the_test_checkout_returns_to_the_sellers_pages(billing: Any) -> None:
    """No Stripe key: the built-in test checkout links its Cancel to the seller's page and,
    once paid, sends the buyer to the success page with the session id filled in."""
    keys = await seller_keys(billing, [(HOME_LIVE, "secret"), (HOME_LIVE, "publishable")])
    own = {"sku": "chartgpt-lifetime", "success_url": SUCCESS, "cancel_url": CANCEL}
    refused = await billing.client.post(
        "/v1/checkout/sessions", json=own, headers=keys["publishable"]
    )
    assert refused.json()["type"] == NEED_SECRET
    bad = await billing.client.post(
        "/v1/checkout/sessions",
        json={**own, "success_url": "ftp://shop.example.com/"},
        headers=keys["secret"],
    )
    assert bad.json()["type"] == INVALID
    assert await billing.value("SELECT count(*) FROM test_checkout_sessions") == 0

    made = await billing.client.post("/v1/checkout/sessions", json=own, headers=keys["secret"])
    assert made.status_code == 201 and made.json()["test_mode"] is True, made.text
    session_id = made.json()["id"]
    page = await billing.client.get(f"/test-checkout/{session_id}")
    assert f'href="{CANCEL}"' in page.text
    # A browser holds a form's redirect to the page's form-action: the seller's origin is in it.
    csp = page.headers["content-security-policy"]
    assert "form-action 'self' https://shop.example.com;" in csp
    paid = await billing.client.post(
        f"/test-checkout/{session_id}/pay", data={"email": "own@example.com"}
    )
    assert paid.status_code == 303
    assert paid.headers["location"] == SUCCESS.replace("{CHECKOUT_SESSION_ID}", session_id)

    # Without them: its own confirmation page, and Cancel goes to the site.
    plain = await billing.client.post(
        "/v1/checkout/sessions", json={"sku": "chartgpt-lifetime"}, headers=keys["secret"]
    )
    plain_id = plain.json()["id"]
    plain_page = await billing.client.get(f"/test-checkout/{plain_id}")
    assert f'href="{billing.settings.site_url}"' in plain_page.text
    assert "form-action 'self';" in plain_page.headers["content-security-policy"]
    done = await billing.client.post(
        f"/test-checkout/{plain_id}/pay", data={"email": "plain@example.com"}
    )
    assert done.headers["location"] == f"/test-checkout/{plain_id}/complete"
