"""Site test fixtures: builds with unusual links, a real HTTP server, real headless Chromium.

Chromium is Debian's (`/usr/bin/chromium`, installed by `ensure_chromium` when missing and
running as root); Playwright drives it through `executable_path`. A machine without it fails
these tests with the reason: browser tests never skip.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, sync_playwright

from tessera.devstack.browsers import CHROMIUM_ARGS, BrowserUnavailableError, ensure_chromium
from tessera.site.settings import SiteSettings

REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO / "docs" / "screenshots"


def site_settings(dist: Path, **overrides: object) -> SiteSettings:
    values: dict[str, object] = {
        "dist_dir": dist,
        "docs_dir": REPO / "docs",
        "catalog_file": REPO / "deploy" / "catalog.json",
        **overrides,
    }
    return SiteSettings.model_validate(values)


def chromium_path() -> Path:
    try:
        return ensure_chromium()
    except BrowserUnavailableError as error:
        pytest.fail(f"headless Chromium is required for the site's browser tests: {error}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser per module; each test opens its own context (no shared cache)."""
    path = chromium_path()
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(path), args=list(CHROMIUM_ARGS), headless=True
        )
        yield instance
        instance.close()


@contextmanager
def serve_in_thread(app: FastAPI, port: int) -> Iterator[str]:
    """Run an app on a real port in a thread (for sync tests that drive a browser)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail(f"the site server did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@asynccontextmanager
async def serve_in_loop(app: FastAPI, port: int) -> AsyncIterator[str]:
    """Run an app, lifespan included, on a real port in the test's own event loop."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 60
    while not server.started:
        if task.done():
            task.result()  # surfaces the start-up error
            pytest.fail(f"{app.title} stopped during start-up")
        if time.monotonic() > deadline:
            pytest.fail(f"{app.title} did not start on port {port}")
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


# Helpers as fixtures: test modules are not importable from one another (importlib mode).


@pytest.fixture(name="make_settings", scope="session")
def make_settings_fixture() -> Callable[..., SiteSettings]:
    return site_settings


@pytest.fixture(name="serve_thread", scope="session")
def serve_thread_fixture() -> Callable[[FastAPI, int], AbstractContextManager[str]]:
    return serve_in_thread


@pytest.fixture(name="serve_loop", scope="session")
def serve_loop_fixture() -> Callable[[FastAPI, int], AbstractAsyncContextManager[str]]:
    return serve_in_loop


@pytest.fixture(name="chromium")
def chromium_fixture() -> Path:
    return chromium_path()
