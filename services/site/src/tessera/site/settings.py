"""Site build settings (environment prefix `TESSERA_SITE_`): every outbound link comes from
here at build time, nothing is hard-coded in templates."""

from pathlib import Path

from pydantic import AnyHttpUrl
from pydantic_settings import SettingsConfigDict

from tessera.shared.settings import ServiceSettings


class SiteSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_SITE_", extra="ignore", frozen=True)

    port: int = 8080
    dist_dir: Path = Path("services/site/dist")
    # The site's own public address: canonical links, Open Graph, sitemap.xml, robots.txt.
    base_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8080")
    portal_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8081")
    billing_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8082")
    auth_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8083")
    licensing_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8084")
    product_sku: str = "chartgpt-lifetime"
    # Sources read at build time when present (relative to the working directory, the repo
    # root under ./dev): the services' markdown docs become the integrator reference, and
    # billing's catalog seed gives the price, so neither can drift from what the site says.
    docs_dir: Path = Path("docs")
    catalog_file: Path = Path("deploy/catalog.json")
