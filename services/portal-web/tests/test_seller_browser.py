"""The seller dashboard in real headless Chromium (Debian's, through Playwright's
`executable_path`), against the real stack: a developer who signed a seller up signs in,
sees only their seller, switches between test and live mode, creates a test key pair (the
secret shown once, with a Copy button that JavaScript reveals), rotates it with an overlap
and revokes it; another seller's pages and, for a customer, every seller page are the 404
page. Every page fits a phone's width; no console error (a CSP violation would be one), no
request to another origin.

`TESSERA_SCREENSHOTS=1` also writes docs/screenshots/portal-seller-<page>-<width>.png.
"""

from __future__ import annotations

import re
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page

from .test_browser import (
    VIEWPORTS,
    Watch,
    chromium,  # noqa: F401 - the fixture
    new_page,
    shoot,
    sign_in_by_form,
)
from .test_customer import new_email
from .test_seller import sign_up_seller

pytestmark = pytest.mark.timeout(900)


async def fits(page: Page) -> bool:
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return bool(overflow <= 0)


async def test_a_member_runs_its_seller_in_chromium_and_no_one_else_does(
    stack: Any,
    chromium: Browser,  # noqa: F811 - the fixture, by name
) -> None:
    owner = new_email()
    await sign_up_seller(stack, owner, "northwind", "Northwind Tools")
    await sign_up_seller(stack, new_email(), "rival-co", "Rival Co")
    watch = Watch({urlsplit(stack.portal_url).netloc})
    context, page = await new_page(chromium, watch)
    await sign_in_by_form(page, stack, owner, 1)

    await page.goto(stack.portal_url + "/seller")
    await page.get_by_role("link", name="Northwind Tools").wait_for()
    assert await page.get_by_text("Rival Co").count() == 0
    await shoot(page, "seller-list")
    await page.get_by_role("link", name="Northwind Tools").click()
    await page.get_by_text("TEST MODE", exact=True).wait_for()
    await shoot(page, "seller-overview")
    await page.get_by_role("link", name="Live mode").click()
    await page.get_by_text("LIVE MODE", exact=True).wait_for()
    assert await page.get_by_text("TEST MODE", exact=True).count() == 0
    await shoot(page, "seller-overview-live")

    await page.get_by_role("link", name="API keys", exact=True).click()
    await page.get_by_text("No test keys yet").wait_for()
    test_section = page.locator("section.mode-test")
    await test_section.get_by_label("Name").fill("staging")
    await test_section.get_by_role("button", name="Create test keys").click()
    secret = (await page.locator("#secret-key").inner_text()).strip()
    assert re.fullmatch(r"sk_test_[A-Za-z0-9]+", secret)
    assert await page.get_by_role("button", name="Copy secret key").is_visible()
    await page.get_by_text("This is the only time it is shown").wait_for()
    await shoot(page, "seller-key-created")

    await page.get_by_role("link", name="back to the keys").click()
    assert await page.get_by_text(secret).count() == 0  # shown once, never again
    await page.get_by_text(f"sk_test_…{secret[-4:]}").wait_for()
    await shoot(page, "seller-keys")
    await test_section.get_by_label("Old keys keep working for").select_option("3600")
    await test_section.get_by_role("button", name="Rotate the test pair staging").click()
    rotated = (await page.locator("#secret-key").inner_text()).strip()
    assert rotated != secret and rotated.startswith("sk_test_")
    await page.get_by_role("link", name="back to the keys").click()
    revoke = page.locator("section.mode-test").get_by_role(
        "button", name="Revoke now the test pair staging"
    )
    await revoke.first.click()
    await page.get_by_text("The key pair was revoked").wait_for()

    # The same pages on a phone: nothing scrolls sideways.
    phone, phone_page = await new_page(chromium, watch, viewport="phone")
    # The same browser's cookies (Playwright's two cookie types differ only in typing).
    await phone.add_cookies(cast(Any, await context.cookies()))
    for path, name in (
        ("/seller", "seller-list"),
        ("/seller/northwind", "seller-overview"),
        ("/seller/northwind/keys", "seller-keys"),
    ):
        await phone_page.goto(stack.portal_url + path)
        assert await fits(phone_page), f"{path} scrolls sideways at phone width"
        await shoot(phone_page, name, "phone")
    assert VIEWPORTS["phone"][0] == 390

    # Another seller's pages: the plain 404, as for any unknown address.
    for path in ("/seller/rival-co", "/seller/rival-co/keys"):
        response = await page.goto(stack.portal_url + path)
        assert response is not None and response.status == 404
        await page.get_by_text("Page not found").wait_for()

    # A customer sees no seller page at all.
    buyer = new_email()
    await stack.buy(buyer)
    await stack.welcome_link(buyer)
    customer, customer_page = await new_page(chromium, watch)
    await sign_in_by_form(customer_page, stack, buyer, 1)
    for path in ("/seller", "/seller/northwind", "/seller/northwind/keys"):
        response = await customer_page.goto(stack.portal_url + path)
        assert response is not None and response.status == 404, path

    for ctx in (context, phone, customer):
        await ctx.close()
    # Chrome logs every 4xx page load as a console error; those 404s were the point.
    watch.errors = [e for e in watch.errors if "Failed to load resource" not in e]
    assert watch.errors == []
    assert watch.foreign == []
