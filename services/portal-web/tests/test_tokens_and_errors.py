"""Access tokens refreshed behind the page, the friendly upstream-failure page, and the
pure pieces (redirect allowlist, CSRF tokens, the revenue chart)."""

from __future__ import annotations

import json
import re
import secrets
from datetime import date
from typing import Any

import httpx
import pytest

from tessera.devstack.infra import free_port
from tessera.portal.admin.chart import chart
from tessera.portal.app import create_app
from tessera.portal.settings import PortalSettings
from tessera.portal.upstream.billing import Revenue
from tessera.portal.web.security import cache_key, csrf_matches, csrf_token, safe_next
from tessera.shared.settings import InfraSettings


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, html[:2000]
    return found.group(1)


async def signed_in(stack: Any) -> tuple[httpx.AsyncClient, str]:
    email = f"buyer-{secrets.token_hex(4)}@example.com"
    await stack.buy(email)
    client = stack.browser()
    await stack.land(client, await stack.welcome_link(email))
    return client, email


def token_key(stack: Any, client: httpx.AsyncClient) -> str:
    portal = stack.apps["portal"].state.context
    session_id = client.cookies.get("tessera_session")
    assert session_id
    key: str = portal.keys("tok", cache_key(portal.settings.secret_key, session_id))
    return key


async def test_an_expired_token_is_exchanged_again_without_the_person_noticing(
    stack: Any,
) -> None:
    client, _ = await signed_in(stack)
    assert "License key" in await stack.licenses(client)
    redis = stack.apps["portal"].state.context.redis
    key = token_key(stack, client)
    first = json.loads(await redis.get(key))
    await redis.delete(key)  # what its expiry does
    page = await client.get("/orders")
    assert page.status_code == 200
    second = json.loads(await redis.get(key))
    assert second["token"] != first["token"]


async def test_a_token_an_upstream_refuses_is_replaced_and_the_call_retried(stack: Any) -> None:
    email = f"buyer-{secrets.token_hex(4)}@example.com"
    await stack.buy(email)
    await stack.welcome_link(email)
    a, b = stack.browser(), stack.browser()
    await stack.sign_in(a, email, count=1)
    await stack.sign_in(b, email, count=2)
    await stack.licenses(a)
    await stack.licenses(b)
    redis = stack.apps["portal"].state.context.redis
    b_token = json.loads(await redis.get(token_key(stack, b)))["token"]
    # B's session ends at auth directly (not through the portal: no "not before" mark) ...
    async with httpx.AsyncClient(base_url=stack.auth_url) as auth:
        listed = await auth.get("/v1/sessions", headers={"authorization": f"Bearer {b_token}"})
        current = next(s["id"] for s in listed.json()["sessions"] if s["current"])
        gone = await auth.delete(
            f"/v1/sessions/{current}", headers={"authorization": f"Bearer {b_token}"}
        )
        assert gone.status_code == 204
    # ... and A's cache is poisoned with B's dead token: auth refuses it, the portal
    # exchanges A's own session again and the page still works.
    a_key = token_key(stack, a)
    await redis.set(a_key, json.dumps({"token": b_token, "at": 0}), ex=60)
    page = await a.get("/account/sessions")
    assert page.status_code == 200 and "This browser" in page.text
    assert json.loads(await redis.get(a_key))["token"] != b_token
    # B itself is signed out, with the cookie dropped
    out = await b.get("/account/sessions")
    assert out.status_code == 303 and out.headers["location"].startswith("/sign-in")


async def test_an_upstream_that_is_down_gets_the_friendly_page_with_a_reference(
    running: Any, infra_settings: InfraSettings
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    app = create_app(
        PortalSettings(auth_url=down, billing_url=down, licensing_url=down), infra_settings
    )
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            form = await client.get("/sign-in")
            answer = await client.post(
                "/sign-in", data={"email": "a@example.com", "csrf": csrf_of(form.text)}
            )
            missing = await client.get("/no/such/page")
            bad_form = await client.post("/sign-in", data={"csrf": csrf_of(form.text)})
    assert answer.status_code == 502
    assert "Something went wrong on our side" in answer.text
    assert "Traceback" not in answer.text and down not in answer.text
    assert f"Reference: <code>{answer.headers['x-request-id']}</code>" in answer.text
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    assert bad_form.status_code == 400 and "Something is missing" in bad_form.text


async def test_static_assets_are_served_by_the_portal_itself(
    running: Any, infra_settings: InfraSettings
) -> None:
    app = create_app(PortalSettings(), infra_settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            page = await client.get("/sign-in")
            htmx = await client.get("/static/htmx.min.js")
            css = await client.get("/static/portal.css")
    assert htmx.status_code == 200 and "htmx" in htmx.text[:200]
    assert css.status_code == 200 and css.headers["cache-control"] == "public, max-age=86400"
    srcs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert all(s.startswith(("/", "#")) for s in srcs), srcs  # no CDN, no other origin
    assert "style=" not in page.text and "<script>" not in page.text and "onclick" not in page.text


def test_next_paths_stay_on_the_portal() -> None:
    assert safe_next("/licenses") == "/licenses"
    assert safe_next("/admin/accounts/x?done=suspend") == "/admin/accounts/x?done=suspend"
    for hostile in (
        "https://evil.example/licenses",
        "//evil.example/licenses",
        "/\\evil.example",
        "/licenses/../../etc",
        "/sign-out",
        "javascript:alert(1)",
        "/licenses\r\nSet-Cookie: x=1",
        "",
        None,
    ):
        assert safe_next(hostile) is None, hostile


def test_a_csrf_token_belongs_to_one_browser_and_one_secret() -> None:
    browser, other = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    secret = "s" * 40
    token = csrf_token(secret, browser)
    assert csrf_matches(secret, browser, token)
    assert not csrf_matches(secret, other, token)
    assert not csrf_matches("t" * 40, browser, token)
    assert not csrf_matches(secret, browser, None)
    assert not csrf_matches(secret, None, token)
    assert not csrf_matches(secret, "short", csrf_token(secret, "short"))


def test_the_revenue_chart_has_a_bar_per_day_scaled_to_the_peak() -> None:
    summary = Revenue.model_validate(
        {
            "start": "2026-11-01",
            "end": "2026-11-03",
            "currency_totals": {"usd": {"gross": 44700, "net": 29800}},
            "rows": [
                {"day": "2026-11-01", "sku": "a", "currency": "usd", "orders": 2, "gross": 29800,
                 "refunds": 0, "disputes_lost": 0, "net": 29800},
                {"day": "2026-11-03", "sku": "a", "currency": "usd", "orders": 1, "gross": 14900,
                 "refunds": 14900, "disputes_lost": 0, "net": 0},
            ],
        }
    )  # fmt: skip
    drawn = chart(summary)
    assert drawn is not None and drawn.currency == "usd"
    assert [b.day for b in drawn.bars] == [date(2026, 11, d) for d in (1, 2, 3)]
    assert drawn.bars[0].height == drawn.height - 2 * drawn.pad  # the peak fills the plot
    assert drawn.bars[1].height == 0 and drawn.bars[2].height == 0
    empty = Revenue.model_validate(
        {"start": "2026-11-01", "end": "2026-11-01", "currency_totals": {}, "rows": []}
    )
    assert chart(empty) is None


async def test_sign_out_everywhere_on_one_replica_reaches_a_token_cached_by_another(
    stack: Any, infra_settings: InfraSettings, running: Any
) -> None:
    """Two portal replicas share the cache and its "not before" marks through Redis."""
    email = f"buyer-{secrets.token_hex(4)}@example.com"
    await stack.buy(email)
    await stack.welcome_link(email)
    first, second = stack.browser(), stack.browser()
    await stack.sign_in(first, email, count=1)
    await stack.sign_in(second, email, count=2)
    other = create_app(
        stack.apps["portal"].state.context.settings, stack.apps["portal"].state.context.infra
    )
    async with running(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url=stack.portal_url) as replica:
            replica.cookies = second.cookies
            assert (await replica.get("/orders")).status_code == 200  # cached on replica B
            page = await first.get("/account/sessions")
            done = await first.post(
                "/account/sessions/revoke-all", data={"csrf": csrf_of(page.text)}
            )
            assert done.status_code == 200
            gone = await replica.get("/orders")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/sign-in")


async def test_the_portals_own_sign_in_limit_answers_with_a_429_page(
    running: Any, infra_settings: InfraSettings
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    settings = PortalSettings(
        auth_url=down, billing_url=down, licensing_url=down, rl_sign_in_per_ip="2/minute"
    )
    app = create_app(settings, infra_settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            form = await client.get("/sign-in/code")
            data = {"email": "a@example.com", "code": "12345", "csrf": csrf_of(form.text)}
            answers = [await client.post("/sign-in/code", data=data) for _ in range(3)]
    assert [a.status_code for a in answers] == [400, 400, 429]
    assert "Too many attempts" in answers[2].text and "try again in" in answers[2].text


@pytest.mark.parametrize(
    "path", ["/checkout/success?session_id=cs_test_" + "a" * 24, "/downloads/chartgpt"]
)
async def test_pages_that_call_other_services_are_limited_per_ip(
    running: Any, infra_settings: InfraSettings, path: str
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    settings = PortalSettings(
        auth_url=down, billing_url=down, licensing_url=down, rl_lookup_per_ip="2/minute"
    )
    app = create_app(settings, infra_settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            answers = [await client.get(path) for _ in range(3)]
    assert answers[0].status_code != 429 and answers[1].status_code != 429
    assert answers[2].status_code == 429
    assert "Too many attempts" in answers[2].text


def test_access_logs_keep_no_query_string() -> None:
    """The link's landing page carries a sign-in token in its query string."""
    import logging

    from tessera.portal.app import NoQueryStrings

    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/sign-in/link?token=secret", "1.1", 200), None,
    )  # fmt: skip
    assert NoQueryStrings().filter(record)
    assert "secret" not in record.getMessage() and "/sign-in/link" in record.getMessage()
    upstream = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, 'HTTP Request: %s %s "%s %d %s"',
        ("GET", httpx.URL("http://lic/v1/admin/licenses?key=ABCDE-12345"), "HTTP/1.1", 200, "OK"),
        None,
    )  # fmt: skip
    assert NoQueryStrings().filter(upstream)
    assert "ABCDE" not in upstream.getMessage() and "/v1/admin/licenses" in upstream.getMessage()


async def test_names_fall_back_to_readable_words_when_billing_is_down() -> None:
    from tessera.portal.catalog.names import Names, from_slug
    from tessera.portal.upstream.base import Caller, Upstream
    from tessera.portal.upstream.billing import BillingClient, CatalogItem

    async with httpx.AsyncClient(timeout=2) as http:
        down = BillingClient(Upstream("billing", f"http://127.0.0.1:{free_port()}", http))
        names = await Names("ChartGPT").refresh(down, Caller(ip="127.0.0.1", user_agent="t"))
    assert names.items == []
    assert names.plan("chartgpt-lifetime") == "Chartgpt lifetime" == from_slug("chartgpt-lifetime")
    assert names.sku("pro-yearly") == "Pro yearly" and names.product("chartgpt") == "ChartGPT"
    names.items = [
        CatalogItem(sku="old", name="Old name", product="chartgpt", policy="p", active=False),
        CatalogItem(sku="new", name="New name", product="chartgpt", policy="p", active=True),
    ]
    assert names.plan("p") == "New name" and names.sku("old") == "Old name"


def test_production_never_serves_the_dev_download(tmp_path: Any) -> None:
    from tessera.portal.settings import DEV_DOWNLOADS_DIR
    from tessera.shared.settings import Environment

    unset = PortalSettings()
    assert unset.download_root(Environment.PRODUCTION) is None
    assert unset.download_root(Environment.TEST) == DEV_DOWNLOADS_DIR
    assert (DEV_DOWNLOADS_DIR / unset.downloads["chartgpt"]).is_file()
    chosen = PortalSettings(downloads_dir=tmp_path)
    assert chosen.download_root(Environment.PRODUCTION) == tmp_path
    assert PortalSettings(downloads_dir="").downloads_dir is None  # an empty env value
