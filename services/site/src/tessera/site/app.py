"""A small static-file server for the built site (dev and compose; any static host works)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

from tessera.shared.http.health import health_router
from tessera.shared.http.middleware import RequestContextMiddleware
from tessera.shared.http.problems import install_problem_handlers
from tessera.shared.settings import load_settings
from tessera.site.build import build_site
from tessera.site.settings import SiteSettings

# The pages load only their own stylesheet and favicon: a CSP this strict turns any
# accidental inline style, script or third-party asset into a console error the browser
# tests catch.
SITE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "content-security-policy": (
        "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
}


def create_app(settings: SiteSettings | None = None) -> FastAPI:
    site = settings or load_settings(SiteSettings)
    # Rendered at every start, so the pages always carry this environment's links.
    build_site(site)
    app = FastAPI(title="Tessera site", docs_url=None, redoc_url=None, openapi_url=None)
    # A refusal that is not the 404 page (a POST, a path no file system takes) is
    # problem+json, as everywhere else.
    install_problem_handlers(app)
    app.include_router(health_router(lambda: {}))
    app.mount("/", StaticFiles(directory=site.dist_dir, html=True), name="site")
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(RequestContextMiddleware, headers=SITE_HEADERS)
    return app
