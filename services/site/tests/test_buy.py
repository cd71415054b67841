"""Buy, followed in real headless Chromium from the site to billing's test checkout: the real
billing app on real Postgres, Redis and JetStream, the site built with billing's address."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import async_playwright

from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.devstack.browsers import CHROMIUM_ARGS
from tessera.devstack.infra import free_port
from tessera.shared.settings import InfraSettings
from tessera.site.app import create_app as create_site
from tessera.site.settings import SiteSettings

# The first browser test may install Chromium from Debian's packages (minutes, once).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[3]

Serve = Callable[[FastAPI, int], AbstractAsyncContextManager[str]]


async def test_buy_on_the_site_lands_on_billings_test_checkout(
    tmp_path: Path,
    database_url: str,
    infra_settings: InfraSettings,
    chromium: Path,
    make_settings: Callable[..., SiteSettings],
    serve_loop: Serve,
) -> None:
    billing_port, site_port = free_port(), free_port()
    billing_url = f"http://127.0.0.1:{billing_port}"
    site_url = f"http://127.0.0.1:{site_port}"
    billing = create_billing(
        BillingSettings(
            database_url=database_url,
            catalog_file=REPO / "deploy" / "catalog.json",
            public_url=billing_url,
            site_url=site_url,
        ),
        infra_settings,
    )
    site = create_site(make_settings(tmp_path, base_url=site_url, billing_url=billing_url))
    errors: list[str] = []
    async with (
        serve_loop(billing, billing_port),
        serve_loop(site, site_port),
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            page = await browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(site_url + "/")
            buy = page.get_by_role("link", name=re.compile(r"^Buy ChartGPT")).first
            assert await buy.get_attribute("href") == f"{billing_url}/buy/chartgpt-lifetime"
            await buy.click()
            await page.wait_for_url(re.compile(rf"{re.escape(billing_url)}/test-checkout/\w+"))
            heading = await page.locator("h1").inner_text()
            body = await page.locator("body").inner_text()
        finally:
            await browser.close()
    assert "ChartGPT" in heading
    assert "149.00 USD" in body  # the price the site showed is the price billing charges
    assert errors == []
