"""Portal-web's process: server-rendered pages over auth, licensing and billing."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from tessera.portal.account import routes as account_routes
from tessera.portal.admin import held_orders as held_order_routes
from tessera.portal.admin import routes as admin_routes
from tessera.portal.checkout import routes as checkout_routes
from tessera.portal.context import Portal
from tessera.portal.downloads import routes as download_routes
from tessera.portal.seller import routes as seller_routes
from tessera.portal.settings import PortalSettings, refuse_dev_secrets
from tessera.portal.signin import routes as signin_routes
from tessera.portal.upstream.health import upstream_checks
from tessera.portal.web.pages import install_page_handlers
from tessera.shared.service import ServiceSpec, create_service_app
from tessera.shared.settings import InfraSettings, load_settings

STATIC = Path(__file__).parent / "static"


class Static(StaticFiles):
    """Assets change only with a release: let browsers keep them for a day."""

    async def get_response(self, path: str, scope: Scope):  # type: ignore[no-untyped-def]
        response = await super().get_response(path, scope)
        response.headers["cache-control"] = "public, max-age=86400"
        return response


class NoQueryStrings(logging.Filter):
    """Logs without query strings: the link's landing page carries a sign-in token, and the
    admin search an email or a license key. (uvicorn's access log passes the path as a
    string; httpx passes the URL it called.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_without_query(arg) for arg in record.args)
        return True


def _without_query(arg: object) -> object:
    if isinstance(arg, httpx.URL):
        return arg.copy_with(query=None)
    if isinstance(arg, str) and arg.startswith("/") and "?" in arg:
        return arg.split("?", 1)[0]
    return arg


def create_app(
    settings: PortalSettings | None = None, infra: InfraSettings | None = None
) -> FastAPI:
    portal_settings = settings or load_settings(PortalSettings)
    infra = infra or load_settings(InfraSettings)
    refuse_dev_secrets(portal_settings, infra)
    portal = Portal.of(portal_settings, infra)

    async def start(portal: Portal) -> None:
        portal.tasks.append(_closer(portal))

    app = create_service_app(
        ServiceSpec(
            context=portal,
            title="Tessera portal",
            version="0.1.0",
            uses_redis=True,  # the access-token cache and the form rate limits
            uses_nats=False,
            api_keys=False,  # no route of the portal takes a seller key
            routers=(
                signin_routes.router,
                account_routes.router,
                download_routes.router,
                checkout_routes.router,
                admin_routes.router,
                held_order_routes.router,
                seller_routes.router,
            ),
            on_startup=(start,),
            extra_checks=lambda portal: upstream_checks(portal.settings),
            serve_openapi=False,  # HTML pages for browsers: no API contract to publish
        )
    )
    app.mount("/static", Static(directory=STATIC), name="static")
    install_page_handlers(app)
    logging.getLogger("uvicorn.access").addFilter(NoQueryStrings())
    # httpx logs every URL it calls, and the admin search puts emails and license keys in
    # query strings.
    logging.getLogger("httpx").addFilter(NoQueryStrings())
    return app


def _closer(portal: Portal) -> asyncio.Task[None]:
    """A task that closes the shared HTTP client when the runtime cancels it at shutdown."""

    async def wait_then_close() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await portal.http.aclose()

    return asyncio.create_task(wait_then_close())
