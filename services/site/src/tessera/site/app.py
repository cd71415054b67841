"""A small static-file server for the built site (dev; operators may use any static host)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from tessera.shared.http.health import health_router
from tessera.shared.http.middleware import RequestContextMiddleware
from tessera.shared.settings import load_settings
from tessera.site.build import build_site
from tessera.site.settings import SiteSettings

SITE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'",
}


def create_app(settings: SiteSettings | None = None) -> FastAPI:
    site = settings or load_settings(SiteSettings)
    if not (site.dist_dir / "index.html").exists():
        build_site(site)
    app = FastAPI(title="Tessera site", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health_router(lambda: {}))
    app.mount("/", StaticFiles(directory=site.dist_dir, html=True), name="site")
    app.add_middleware(RequestContextMiddleware, security_headers=SITE_HEADERS)
    return app
