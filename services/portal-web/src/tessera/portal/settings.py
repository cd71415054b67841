"""Portal-web's settings (environment prefix `TESSERA_PORTAL_`).

The secret key has a dev default so that `./dev up` works out of the box; start-up refuses it
when `TESSERA_ENV=production` (see `refuse_dev_secrets`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, Field, field_validator
from pydantic_settings import SettingsConfigDict

from tessera.shared.secret_policy import KEY, production_audit
from tessera.shared.settings import Environment, InfraSettings, ServiceSettings, env_name

# A small real archive shipped with the package, served in dev and test in place of the add-on.
DEV_DOWNLOADS_DIR = Path(__file__).resolve().parent / "dev_downloads"
DEV_SECRET_KEY = "dev-only-portal-secret-key-change-me-00000000"  # noqa: S105 - refused in prod


class PortalSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_PORTAL_", extra="ignore", frozen=True)

    port: int = 8081
    auth_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8083")
    billing_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8082")
    licensing_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8084")
    # Keys the CSRF tokens (HMAC) and the access-token cache keys. Changing it invalidates
    # every open form and cached token (not the sessions themselves: auth owns those).
    secret_key: str = Field(default=DEV_SECRET_KEY, min_length=32)
    # None: Secure cookies everywhere but dev and test (which serve plain http://127.0.0.1).
    cookie_secure: bool | None = None
    # How long an upstream call may take before the page says so.
    upstream_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Per client IP, on the sign-in forms (auth limits per address and IP as well).
    rl_sign_in_per_ip: str = "30/10 minutes"
    # Per client IP, on every other form post.
    rl_post_per_ip: str = "120/minute"
    # Per client IP, on the pages that call other services for anyone who asks: the checkout
    # success page (polled every 3 s while it waits) and each product's download.
    rl_lookup_per_ip: str = "60/minute"
    # Where the Stripe customer portal lives (allowed as a form target by the CSP).
    stripe_portal_origin: str = "https://billing.stripe.com"
    # The policy and SKU the admin forms offer by default.
    default_policy: str = "chartgpt-lifetime"
    default_sku: str = "chartgpt-lifetime"
    product_name: str = "ChartGPT"
    # What `/downloads/{product}` gives a customer holding an active license of that
    # licensing product: a file name inside `downloads_dir` (served by the portal), or an
    # https:// URL (the portal redirects there after the license check). A product not
    # listed has no download.
    downloads: dict[str, str] = {"chartgpt": "ChartGPT-for-NinjaTrader-dev.zip"}
    # Where those files are. Unset: the small dev archive shipped with the package.
    downloads_dir: Path | None = None

    @field_validator("downloads_dir", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    def download_root(self, env: Environment) -> Path | None:
        """Where download files are read from. Production never serves the dev archive: with
        no directory set there, only the https:// URLs of `downloads` work."""
        if self.downloads_dir is not None:
            return self.downloads_dir
        return None if env == Environment.PRODUCTION else DEV_DOWNLOADS_DIR

    def secure_cookies(self, env: Environment) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return env not in (Environment.DEV, Environment.TEST)


def refuse_dev_secrets(settings: PortalSettings, infra: InfraSettings) -> None:
    """Production brings its own secret (tessera.shared.secret_policy), and real passwords
    in the NATS and Redis URLs."""
    audit = production_audit(infra)
    if audit is None:
        return
    audit.secret(env_name(PortalSettings, "secret_key"), settings.secret_key, KEY, [DEV_SECRET_KEY])
    audit.raise_if_any()
