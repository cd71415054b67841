"""Every address a page links to outside the site, derived from settings at build time.

Templates never spell a host: they read these fields, so one build carries one
environment's links and a test can prove it by building with unusual ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import AnyHttpUrl

from tessera.site.settings import SiteSettings


def _root(url: AnyHttpUrl) -> str:
    return str(url).rstrip("/")


@dataclass(frozen=True)
class Links:
    site: str
    buy: str
    portal: str
    licensing: str
    activate: str
    validate: str
    deactivate: str
    public_keys: str
    auth: str
    jwks: str
    device_authorize: str
    device_token: str

    @classmethod
    def of(cls, settings: SiteSettings) -> Links:
        licensing = _root(settings.licensing_url)
        auth = _root(settings.auth_url)
        return cls(
            site=_root(settings.base_url),
            buy=f"{_root(settings.billing_url)}/buy/{settings.product_sku}",
            portal=f"{_root(settings.portal_url)}/",
            licensing=licensing,
            activate=f"{licensing}/v1/licenses/activate",
            validate=f"{licensing}/v1/licenses/validate",
            deactivate=f"{licensing}/v1/licenses/deactivate",
            public_keys=f"{licensing}/v1/public-keys",
            auth=auth,
            jwks=f"{auth}/.well-known/jwks.json",
            device_authorize=f"{auth}/v1/device/authorize",
            device_token=f"{auth}/v1/device/token",
        )

    def absolute(self, path: str) -> str:
        """A site path as a full URL (canonical links, Open Graph, the sitemap)."""
        return f"{self.site}{path}"

    def dev_defaults(self, settings: SiteSettings) -> dict[str, str]:
        """Dev addresses as the repo's markdown docs spell them -> this build's addresses."""
        ports = {
            8080: self.site,
            8081: _root(settings.portal_url),
            8082: _root(settings.billing_url),
            8083: self.auth,
            8084: self.licensing,
        }
        return {
            f"http://{host}:{port}": url
            for port, url in ports.items()
            for host in ("127.0.0.1", "localhost")
        }
