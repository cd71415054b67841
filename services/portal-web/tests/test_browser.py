"""The journey the issue asks for, in real headless Chromium (Debian's, driven by Playwright
through `executable_path`) against the real stack: buy through the test checkout, read the
welcome mail from the mail catcher, sign in, see the license, activate a machine with the
licensing client and remove it in the portal; approve a desktop sign-in with JavaScript off;
an admin suspends the license and validate says SUSPENDED; the customer cannot reach /admin;
a forged POST fails. No page logs a console error (a CSP violation would), and no request
leaves the portal's origin.

`TESSERA_SCREENSHOTS=1` also writes docs/screenshots/portal-<page>-<width>.png.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tessera.devstack.browsers import CHROMIUM_ARGS, BrowserUnavailableError, ensure_chromium
from tessera.devstack.pins import root_pins
from tessera.licensing_client.client import LicensingClient
from tessera.licensing_client.store import LeaseStore

# The first browser test may install Chromium from Debian's packages (minutes, once).
pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO / "docs" / "screenshots"
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
ADMIN = "operator@example.com"
KEY = re.compile(r"[0-9A-Z]{5}(?:-[0-9A-Z]{5}){4}")


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    try:
        path = ensure_chromium()
    except BrowserUnavailableError as error:
        pytest.fail(f"headless Chromium is required for the portal's browser tests: {error}")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(path), args=list(CHROMIUM_ARGS), headless=True
        )
        yield browser
        await browser.close()


class Watch:
    """Console errors and requests to other origins, across every page of a context."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.errors: list[str] = []
        self.foreign: list[str] = []

    def attach(self, page: Page) -> Page:
        page.on(
            "console",
            lambda m: self.errors.append(f"{page.url}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))
        page.on("request", self._request)
        return page

    def _request(self, request: Any) -> None:
        origin = urlsplit(request.url).netloc
        if origin and origin not in self.allowed:
            self.foreign.append(request.url)


async def new_page(
    browser: Browser, watch: Watch, *, javascript: bool = True, viewport: str = "desktop"
) -> tuple[BrowserContext, Page]:
    width, height = VIEWPORTS[viewport]
    context = await browser.new_context(
        java_script_enabled=javascript, viewport={"width": width, "height": height}
    )
    return context, watch.attach(await context.new_page())


async def shoot(page: Page, name: str, viewport: str = "desktop") -> None:
    if os.environ.get("TESSERA_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(
            path=str(SCREENSHOTS / f"portal-{name}-{viewport}.png"), full_page=True
        )


async def sign_in_by_form(page: Page, stack: Any, email: str, count: int) -> None:
    await page.goto(stack.portal_url + "/sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Email me a sign-in link").click()
    await page.wait_for_url("**/sign-in/check-email")
    text = await stack.mailbox.wait_for(email, "Sign in to", count)
    link = re.search(r"http://\S+/sign-in/link\?token=[A-Za-z0-9_\-]+", text)
    assert link, text
    await page.goto(link.group(0))
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/licenses")


async def poll_device_token(auth_url: str, device_code: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=auth_url) as auth:
        for _ in range(20):
            await asyncio.sleep(1.1)
            answer = await auth.post(
                "/v1/device/token",
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                    "device_code": device_code,
                    "client_id": "chartgpt-desktop",
                },
            )
            body: dict[str, Any] = answer.json()
            if answer.status_code == 200:
                return body
            assert body["error"] in ("authorization_pending", "slow_down"), body
    raise AssertionError("the device was never approved")


async def test_the_customer_and_admin_journey_in_chromium(
    stack: Any, chromium: Browser, tmp_path: Path
) -> None:
    allowed = {urlsplit(u).netloc for u in (stack.portal_url, stack.billing_url)}
    watch = Watch(allowed)
    email = f"buyer-{secrets.token_hex(4)}@example.com"

    # 1. Buy through billing's test checkout, in the browser.
    customer_ctx, page = await new_page(chromium, watch)
    await page.goto(stack.billing_url + "/buy/chartgpt-lifetime")
    await page.get_by_label("Email").fill(email)
    await page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    await page.wait_for_load_state()

    # 2. The welcome mail, read from the mail catcher's API; its link's landing page.
    text = await stack.mailbox.wait_for(email, "Welcome to")
    link = re.search(r"http://\S+/sign-in/link\?token=[A-Za-z0-9_\-]+", text)
    assert link, text
    await page.goto(link.group(0))
    await shoot(page, "link")
    assert "tessera_session" not in {c["name"] for c in await customer_ctx.cookies()}
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/licenses")
    session = next(c for c in await customer_ctx.cookies() if c["name"] == "tessera_session")
    assert session["httpOnly"] and session["sameSite"] == "Lax"

    # 3. The license, with its key.
    for _ in range(50):
        if await page.get_by_text("License key").count():
            break
        await asyncio.sleep(0.2)
        await page.reload()
    key_text = await page.locator("code.key").first.inner_text()
    key = KEY.fullmatch(key_text.strip())
    assert key, key_text
    await page.get_by_role("button", name="Copy license key").is_visible()

    # 4. A machine activated with the licensing client appears; Remove frees it (htmx).
    fingerprint = secrets.token_hex(16)
    async with LicensingClient(
        stack.licensing_url,
        LeaseStore(tmp_path / "lease.json"),
        roots=await root_pins(stack.licensing_url),
    ) as app:
        await app.public_keys()
        activated = await app.activate(
            fingerprint, key=key.group(0), machine_name="TRADING-PC", platform="windows-x64"
        )
        assert activated.code == "VALID"
        await page.reload()
        await page.get_by_text("TRADING-PC").wait_for()
        await shoot(page, "licenses")
        await page.get_by_role("button", name="Remove TRADING-PC").click()
        await page.get_by_text("Machine removed; its seat is free.").wait_for()
        assert (await app.validate(key.group(0), fingerprint)).code == "NOT_ACTIVATED"
        # activate again, so the admin has a machine to see
        await app.activate(fingerprint, key=key.group(0), machine_name="TRADING-PC")

    # 5. Orders with the receipt; sessions.
    await page.goto(stack.portal_url + "/orders")
    await page.get_by_role("link", name=re.compile("Receipt")).first.wait_for()
    await shoot(page, "orders")
    await page.goto(stack.portal_url + "/downloads")
    async with page.expect_download() as pending:
        await page.get_by_role("link", name="Download ChartGPT").click()
    download = await pending.value
    assert download.suggested_filename == "ChartGPT-for-NinjaTrader-dev.zip"
    assert (await download.path()).read_bytes().startswith(b"PK\x03\x04")
    await shoot(page, "downloads")
    await page.goto(stack.portal_url + "/account/sessions")
    await page.get_by_text("This browser", exact=True).wait_for()
    await shoot(page, "sessions")

    # 6. The customer cannot reach /admin, and a forged POST without the token fails.
    response = await page.goto(stack.portal_url + "/admin")
    assert response is not None and response.status == 404
    await shoot(page, "404")
    # Chrome logs every 4xx page load as a console error; this one was the point.
    expected = f"{stack.portal_url}/admin: Failed to load resource"
    watch.errors = [e for e in watch.errors if not e.startswith(expected)]
    forged = await page.request.post(
        stack.portal_url + "/account/sessions/revoke-all", form={"keep": "x"}
    )
    assert forged.status == 403
    still = await page.goto(stack.portal_url + "/licenses")
    assert still is not None and still.status == 200

    # 7. Desktop sign-in approved on the device page, with JavaScript off (sign-in by code).
    async with httpx.AsyncClient(base_url=stack.auth_url) as auth:
        grant = (
            await auth.post(
                "/v1/device/authorize",
                data={"client_id": "chartgpt-desktop", "client_version": "1.4.2"},
            )
        ).json()
    nojs_ctx, nojs = await new_page(chromium, watch, javascript=False)
    await nojs.goto(stack.portal_url + "/sign-in")
    await nojs.get_by_label("Email address").fill(email)
    await nojs.get_by_role("button", name="Email me a sign-in link").click()
    await nojs.wait_for_url("**/sign-in/check-email")
    await shoot(nojs, "check-email")
    mail = await stack.mailbox.wait_for(email, "Sign in to")
    code = re.search(r"enter this code: (\d{6})", mail)
    assert code
    await nojs.goto(stack.portal_url + "/sign-in/code")
    await nojs.get_by_label("Email address").fill(email)
    await nojs.get_by_label("6-digit code from the email").fill(code.group(1))
    await nojs.get_by_role("button", name="Sign in").click()
    await nojs.wait_for_url("**/licenses")
    await nojs.goto(stack.portal_url + "/device")
    await nojs.get_by_label("Enter the code shown in ChartGPT").fill(grant["user_code"].lower())
    await nojs.get_by_role("button", name="Continue").click()
    await nojs.get_by_text("ChartGPT for NinjaTrader 1.4.2").wait_for()
    await shoot(nojs, "device")
    await nojs.get_by_role("button", name="Approve").click()
    await nojs.get_by_text("Approved.").wait_for()
    tokens = await poll_device_token(stack.auth_url, grant["device_code"])
    assert tokens["access_token"] and tokens["refresh_token"]
    await nojs_ctx.close()

    # The desktop sign-in is now a session; signing it out (htmx, in place) ends it.
    await page.goto(stack.portal_url + "/account/sessions")
    device_row = page.locator("tr", has_text="ChartGPT for NinjaTrader")
    await device_row.get_by_role("button", name="Sign out that session").click()
    await page.get_by_text("Session signed out.").wait_for()
    assert page.url.endswith("/account/sessions")  # replaced in place: no navigation
    async with httpx.AsyncClient(base_url=stack.auth_url) as auth:
        refreshed = await auth.post(
            "/v1/device/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": "chartgpt-desktop",
            },
        )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"

    # 8. An admin suspends the license; the desktop's validate says SUSPENDED.
    await stack.buy(ADMIN)
    await stack.mailbox.wait_for(ADMIN, "Welcome to")
    admin_ctx, admin = await new_page(chromium, watch)
    await sign_in_by_form(admin, stack, ADMIN, 1)
    await admin.get_by_role("link", name="Admin").click()
    await admin.get_by_label("Search by email, license key, order id or Stripe id").fill(email)
    await admin.get_by_role("button", name="Search").click()
    await shoot(admin, "admin-search")
    await admin.get_by_role("link", name=email).click()
    await admin.get_by_text("TRADING-PC").wait_for()
    await shoot(admin, "admin-account")
    await admin.get_by_role("link", name="Suspend").click()
    await admin.get_by_label("Reason (kept in the audit log)").fill("chargeback investigation")
    await shoot(admin, "admin-confirm")
    await admin.get_by_role("button", name="Yes, suspend license").click()
    await admin.get_by_text("Done: suspend license.").wait_for()
    async with LicensingClient(
        stack.licensing_url,
        LeaseStore(tmp_path / "l2.json"),
        roots=await root_pins(stack.licensing_url),
    ) as app:
        await app.public_keys()
        assert (await app.validate(key.group(0), fingerprint)).code == "SUSPENDED"
    await page.goto(stack.portal_url + "/licenses")
    await page.get_by_text("This license is suspended").wait_for()
    await admin.get_by_role("link", name="Webhook events").click()
    await admin.get_by_text("checkout.session.completed").first.wait_for()
    await shoot(admin, "admin-webhooks")
    await admin.get_by_role("link", name="Revenue").click()
    await admin.locator("svg.chart rect.bar").first.wait_for(state="attached")
    await shoot(admin, "admin-revenue")

    # 9. Every main page at phone width (and desktop): nothing scrolls sideways.
    anonymous_ctx, anonymous = await new_page(chromium, watch)
    await anonymous.goto(stack.portal_url + "/sign-in")
    await shoot(anonymous, "sign-in")
    pages = [
        (anonymous, "/sign-in", "sign-in"),
        (anonymous, "/sign-in/code", "code"),
        (page, "/licenses", "licenses"),
        (page, "/orders", "orders"),
        (page, "/downloads", "downloads"),
        (page, "/account/sessions", "sessions"),
        (page, "/device", "device-entry"),
        (admin, f"/admin?q={email}", "admin-search"),
        (admin, "/admin/webhooks", "admin-webhooks"),
        (admin, "/admin/revenue", "admin-revenue"),
    ]
    for tab, path, name in pages:
        for viewport in ("phone", "desktop"):
            width, height = VIEWPORTS[viewport]
            await tab.set_viewport_size({"width": width, "height": height})
            await tab.goto(stack.portal_url + path)
            overflow = await tab.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways at {viewport} width"
            if viewport == "phone" or name in ("code", "device-entry"):
                await shoot(tab, name, viewport)

    await anonymous_ctx.close()
    await customer_ctx.close()
    await admin_ctx.close()
    assert watch.errors == []
    assert watch.foreign == []


NET_CELLS = """() => [...document.querySelectorAll("main table")].flatMap((table) => {
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  const net = heads.indexOf("Net");
  if (net < 0) return [];
  const wrapper = table.closest(".table") || table.parentElement;
  return [...table.tBodies[0].rows].filter((row) => row.cells.length > net).map((row) => {
    const rect = row.cells[net].getBoundingClientRect();
    return {text: row.cells[net].textContent.trim(), left: rect.left, right: rect.right,
            width: window.innerWidth,
            hiddenInWrapper: wrapper.scrollWidth > wrapper.clientWidth};
  });
})"""


async def test_revenue_tables_show_the_net_column_on_a_phone(stack: Any, chromium: Browser) -> None:
    watch = Watch({urlsplit(stack.portal_url).netloc})
    await stack.buy(ADMIN)
    await stack.mailbox.wait_for(ADMIN, "Welcome to")
    context, admin = await new_page(chromium, watch, viewport="phone")
    await sign_in_by_form(admin, stack, ADMIN, 1)
    await admin.goto(stack.portal_url + "/admin/revenue")
    await admin.locator("svg.chart rect.bar").first.wait_for(state="attached")
    cells = await admin.evaluate(NET_CELLS)
    assert len(cells) >= 2, cells  # the totals and at least one day
    for cell in cells:
        assert cell["text"] == "149.00 USD", cell
        assert cell["left"] >= 0 and cell["right"] <= cell["width"], cell
        assert not cell["hiddenInWrapper"], cell
    overflow = await admin.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await shoot(admin, "admin-revenue", "phone")
    await context.close()
    assert watch.errors == [] and watch.foreign == []


async def test_a_sellers_return_page_and_a_subscriptions_success_page_in_chromium(
    stack: Any, chromium: Browser, home_keys: Any
) -> None:
    """A checkout made with a secret key and the seller's own return pages: the test
    checkout's Pay lands the browser there, the session id filled in (the page's CSP lets
    the form's redirect go to the seller's origin). A subscription's success page, open while
    billing waits for Stripe, turns into "trial started" by itself and then stops asking."""
    from .test_admin_held_orders import signed
    from .test_checkout_success import subscription_checkout

    shop = "shop.example.test"
    watch = Watch({urlsplit(u).netloc for u in (stack.portal_url, stack.billing_url)} | {shop})
    keys = await home_keys()
    own = {"sku": "chartgpt-lifetime", "success_url": f"https://{shop}/thanks?cs={{CHECKOUT_SESSION_ID}}",
           "cancel_url": f"https://{shop}/pricing"}  # fmt: skip
    async with httpx.AsyncClient(base_url=stack.billing_url, timeout=20) as api:
        for _ in range(100):  # until billing's key book has the new key
            made = await api.post("/v1/checkout/sessions", json=own, headers=keys["secret"])
            if made.status_code not in (401, 503):
                break
            await asyncio.sleep(0.1)
    assert made.status_code == 201, made.text
    session_id = made.json()["id"]
    context, page = await new_page(chromium, watch)
    landed: list[str] = []

    async def the_shop(route: Any) -> None:
        landed.append(route.request.url)
        await route.fulfill(content_type="text/html", body="<!doctype html><h1>Thanks, shop</h1>")

    await context.route(f"https://{shop}/**", the_shop)
    await page.goto(made.json()["url"])
    assert (
        await page.get_by_role("link", name="Cancel and go back").get_attribute("href")
        == (own["cancel_url"])
    )
    await page.get_by_label("Email").fill(f"shop-{secrets.token_hex(4)}@example.com")
    await page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    await page.get_by_text("Thanks, shop").wait_for()
    assert landed == [f"https://{shop}/thanks?cs={session_id}"]

    subscription = "cs_test_" + secrets.token_hex(12)
    await page.goto(f"{stack.portal_url}/checkout/success?session_id={subscription}")
    await page.get_by_text("Confirming your payment").wait_for()
    events = subscription_checkout(subscription, "trial@example.com", "trialing", trial_days=7)
    for event in events:
        await signed(stack, event)
    await page.get_by_text("Your trial has started").wait_for(timeout=20000)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/checkout/success" in r.url else None)
    await asyncio.sleep(4)  # longer than the 3 s poll
    assert asked == []
    assert watch.errors == [] and watch.foreign == []
    await context.close()
