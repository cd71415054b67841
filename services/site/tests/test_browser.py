"""Every page in real headless Chromium, at desktop and phone widths, served by the site's own
server (so its Content-Security-Policy applies): no console errors, no request to another
origin, under the transfer budget, no sideways scrolling on a phone.

`TESSERA_SCREENSHOTS=1` also writes docs/screenshots/site-<page>-<width>.png.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, ConsoleMessage, Page, Request

from tessera.devstack.infra import free_port
from tessera.site.app import create_app
from tessera.site.build import site_pages
from tessera.site.docs import render_reference
from tessera.site.settings import SiteSettings

REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO / "docs" / "screenshots"
BUDGET = 100 * 1024
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
MISSING = "/no/such/page/"
# A long page is cut here in screenshots: enough to show it, without megabytes of PNG.
SCREENSHOT_MAX_HEIGHT = 3200

# The first browser test may install Chromium from Debian's packages (minutes, once).
pytestmark = pytest.mark.timeout(900)


def page_paths() -> list[str]:
    docs = render_reference(REPO / "docs", {})
    return [MISSING if p.path == "/404.html" else p.path for p in site_pages(docs)]


def shot_name(path: str) -> str:
    if path == MISSING:
        return "404"
    return path.strip("/").replace("/", "-") or "home"


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    make_settings: Callable[..., SiteSettings],
    serve_thread: Callable[[FastAPI, int], AbstractContextManager[str]],
) -> Iterator[str]:
    port = free_port()
    settings = make_settings(
        tmp_path_factory.mktemp("site"), base_url=f"http://127.0.0.1:{port}", port=port
    )
    with serve_thread(create_app(settings), port) as url:
        yield url


@pytest.fixture(scope="module")
def tabs(browser: Browser) -> Iterator[Callable[[str], Page]]:
    """One tab per viewport, reused across pages (a new context per page costs more than
    the page itself), with the HTTP cache off so each page's transfer counts in full."""
    opened: dict[str, Page] = {}

    def tab(viewport: str) -> Page:
        if viewport not in opened:
            width, height = VIEWPORTS[viewport]
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
            opened[viewport] = page
        return opened[viewport]

    yield tab
    for page in opened.values():
        page.context.close()


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize("path", page_paths(), ids=shot_name)
def test_page_loads_cleanly(
    tabs: Callable[[str], Page], site: str, path: str, viewport: str
) -> None:
    width = VIEWPORTS[viewport][0]
    page = tabs(viewport)
    errors: list[str] = []
    requests: list[str] = []
    failed: list[str] = []
    handlers: list[tuple[str, Callable[..., None]]] = [
        ("console", lambda m: _console(m, errors)),
        ("pageerror", lambda e: errors.append(f"page error: {e}")),
        ("request", lambda r: requests.append(r.url)),
        ("requestfailed", lambda r: failed.append(_failure(r))),
    ]
    for event, handler in handlers:
        page.on(event, handler)  # type: ignore[call-overload]
    try:
        response = page.goto(site + path, wait_until="load")
        assert response is not None
        expected = 404 if path == MISSING else 200
        assert response.status == expected
        if path == MISSING:
            # Chromium reports the 404 document itself as a failed resource; that one is
            # the point of this page, anything else is not.
            errors = [e for e in errors if "status of 404" not in e]
        assert errors == [], f"console errors on {path}: {errors}"
        assert failed == [], f"failed requests on {path}: {failed}"
        origin = urlsplit(site).netloc
        foreign = [u for u in requests if urlsplit(u).netloc != origin]
        assert foreign == [], f"{path} requested another origin: {foreign}"
        transferred = page.evaluate(
            "() => performance.getEntriesByType('navigation')"
            ".concat(performance.getEntriesByType('resource'))"
            ".reduce((sum, e) => sum + e.transferSize, 0)"
        )
        assert 0 < transferred < BUDGET, f"{path}: {transferred} bytes transferred"
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}px"
        assert page.locator("h1").count() == 1
        header = page.evaluate(
            "() => getComputedStyle(document.querySelector('header.top')).backgroundColor"
        )
        assert header == "rgb(11, 18, 32)", "the stylesheet did not load or apply"
        if os.environ.get("TESSERA_SCREENSHOTS") == "1":
            _screenshot(page, path, width)
    finally:
        for event, handler in handlers:
            page.remove_listener(event, handler)


def test_buy_is_a_plain_link_that_works_without_javascript(browser: Browser, site: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(site + "/")
        buy = page.get_by_role("link", name="Buy ChartGPT").last
        assert buy.is_visible()
        assert buy.get_attribute("href") == "http://127.0.0.1:8082/buy/chartgpt-lifetime"
        summary = page.locator("#faq summary").first
        summary.click()  # <details> opens without script
        assert page.locator("#faq details").first.get_attribute("open") is not None
    finally:
        context.close()


def _console(message: ConsoleMessage, errors: list[str]) -> None:
    if message.type in {"error", "warning"}:
        errors.append(f"{message.type}: {message.text}")


def _failure(request: Request) -> str:
    return f"{request.url}: {request.failure}"


def _screenshot(page: Page, path: str, width: int) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    full = page.evaluate("() => document.documentElement.scrollHeight")
    page.screenshot(
        path=SCREENSHOTS / f"site-{shot_name(path)}-{width}.png",
        full_page=True,
        clip={"x": 0, "y": 0, "width": width, "height": min(full, SCREENSHOT_MAX_HEIGHT)},
    )
