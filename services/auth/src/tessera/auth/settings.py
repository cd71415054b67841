"""Auth's settings (environment prefix `TESSERA_AUTH_`).

The two secrets have dev defaults so that `./dev up` works out of the box; start-up refuses
them, and any weak or placeholder secret, when `TESSERA_ENV=production` (see `refuse_dev_secrets`).
"""

from __future__ import annotations

from pydantic import EmailStr, Field, PostgresDsn
from pydantic_settings import SettingsConfigDict

from tessera.shared.secret_policy import KEY, PASSWORD, production_audit
from tessera.shared.settings import DatabaseSettings, InfraSettings, env_name

DEV_SECRET_KEY = "dev-only-auth-secret-key-change-me-0000000000"  # noqa: S105 - refused in prod
DEV_KEY_ENCRYPTION_KEY = "dev-only-auth-key-encryption-key-change-me-00"


class AuthSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_AUTH_", extra="ignore", frozen=True)

    port: int = 8083
    database_url: PostgresDsn = PostgresDsn("postgresql://postgres@127.0.0.1:5432/auth")

    # --- secrets -------------------------------------------------------------------------
    # Keys the HMAC under which link tokens, codes and session ids are stored. Changing it
    # signs everyone out (every stored hash stops matching).
    secret_key: str = Field(default=DEV_SECRET_KEY, min_length=32)
    # Encrypts the token-signing private keys at rest in Postgres (AES-256-GCM).
    key_encryption_key: str = Field(default=DEV_KEY_ENCRYPTION_KEY, min_length=32)

    # --- the home seller (docs/sellers.md) ------------------------------------------------
    # The operator's own business: its row is made at first start with these (a seller's
    # slug is fixed once made; the name is the one shown in mails).
    home_seller_slug: str = Field(default="home", pattern=r"^[a-z0-9][a-z0-9-]{2,39}$")
    home_seller_name: str = Field(default="Tessera", min_length=1, max_length=100)

    # --- users ---------------------------------------------------------------------------
    # The home seller's signup policy: closed unless true, when an unknown address may get
    # an account (after it proves the address with the same link). Applied at every start.
    allow_signup: bool = False
    # Addresses that are admins as soon as their user exists (and at every start-up).
    bootstrap_admins: list[EmailStr] = []

    # --- access tokens -------------------------------------------------------------------
    token_issuer: str = "tessera-auth"  # noqa: S105
    token_audience: str = "tessera"  # noqa: S105
    access_token_ttl_seconds: int = Field(default=300, ge=1, le=3600)
    # A member's seller-session token (the dashboard's, docs/sellers.md): short, because it
    # has a secret key's powers and a removed member keeps it until it ends.
    seller_session_ttl_seconds: int = Field(default=300, ge=1, le=900)
    # How long a replica keeps using its cached idea of the active signing key.
    signing_key_cache_seconds: int = Field(default=10, ge=0, le=300)

    # --- magic links ---------------------------------------------------------------------
    portal_url: str = "http://127.0.0.1:8081"
    link_ttl_seconds: int = Field(default=600, ge=1, le=600)
    code_max_attempts: int = Field(default=5, ge=1, le=20)
    # `next` after sign-in: relative paths starting with one of these prefixes.
    next_path_prefixes: list[str] = [
        "/account",
        "/licenses",
        "/downloads",
        "/orders",
        "/device",
        "/admin",
        "/seller",  # the seller dashboard (docs/portal.md)
    ]

    # --- sessions ------------------------------------------------------------------------
    session_idle_seconds: int = Field(default=3 * 24 * 3600, ge=60)
    session_absolute_seconds: int = Field(default=30 * 24 * 3600, ge=60)

    # --- device flow (RFC 8628) ----------------------------------------------------------
    device_code_ttl_seconds: int = Field(default=600, ge=1, le=1800)
    device_poll_interval_seconds: int = Field(default=5, ge=1, le=60)
    device_slow_down_seconds: int = Field(default=5, ge=1, le=60)
    # client_id -> the name a person sees on the approval page.
    device_clients: dict[str, str] = {"chartgpt-desktop": "ChartGPT for NinjaTrader"}
    # Only a browser session signed in at most this many seconds ago may look up or approve
    # a device code (an older one is asked to sign in again, like GitHub's sudo mode).
    device_approval_max_age_seconds: int = Field(default=1800, ge=60, le=24 * 3600)
    refresh_token_ttl_seconds: int = Field(default=90 * 24 * 3600, ge=60)
    # A spent refresh token presented again within this many seconds is treated as a lost
    # response, not as theft.
    refresh_reuse_grace_seconds: int = Field(default=5, ge=0, le=60)

    # --- rate limits (`limits` notation: "N/period" or "N per M unit") --------------------
    rl_link_per_address_burst: str = "1/minute"
    rl_link_per_address: str = "5/hour"
    rl_link_per_ip: str = "20/hour"
    rl_link_global: str = "600/hour"
    rl_verify_per_ip: str = "30/10 minutes"
    rl_code_per_account: str = "10/hour"
    rl_token_per_session: str = "120/minute"  # noqa: S105
    rl_sessions_per_user: str = "120/minute"
    rl_device_authorize_per_ip: str = "20/hour"
    rl_device_token_per_ip: str = "120/minute"  # noqa: S105
    rl_device_entry_per_user: str = "10/15 minutes"
    rl_device_wrong_entries_per_user: str = "5/15 minutes"
    rl_admin_per_user: str = "300/minute"
    rl_sellers_per_user: str = "120/minute"
    rl_customers_per_key: str = "600/minute"

    # --- sellers -------------------------------------------------------------------------
    invite_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60, le=30 * 24 * 3600)

    # --- email ---------------------------------------------------------------------------
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: str = ""
    # "none", "starttls" (upgrade after connect) or "tls" (implicit TLS, port 465).
    smtp_security: str = Field(default="none", pattern="^(none|starttls|tls)$")
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    mail_from: str = "Tessera <no-reply@tessera.local>"
    mail_reply_to: str = ""
    product_name: str = "Tessera"
    # Retry backoff of a failed send: base * 2^attempt, capped.
    mail_retry_base_seconds: float = Field(default=2.0, gt=0)
    mail_retry_max_seconds: float = Field(default=900.0, gt=0)
    mail_poll_seconds: float = Field(default=1.0, gt=0)


def refuse_dev_secrets(settings: AuthSettings, infra: InfraSettings) -> None:
    """Production brings its own secrets (tessera.shared.secret_policy): no placeholder, no
    dev default, nothing too short or too regular, no weak or missing password in a URL, and
    a real SMTP password whenever an SMTP user name is set."""
    audit = production_audit(infra)
    if audit is None:
        return
    audit.secret(env_name(AuthSettings, "secret_key"), settings.secret_key, KEY, [DEV_SECRET_KEY])
    audit.secret(
        env_name(AuthSettings, "key_encryption_key"),
        settings.key_encryption_key,
        KEY,
        [DEV_KEY_ENCRYPTION_KEY],
    )
    audit.url(
        env_name(AuthSettings, "database_url"),
        settings.database_url,
        AuthSettings.model_fields["database_url"].default,
    )
    if settings.smtp_username:
        # A relay that authenticates: its password is a secret like any other (the k8s
        # base ships REPLACE_ME for both).
        audit.secret(env_name(AuthSettings, "smtp_password"), settings.smtp_password, PASSWORD)
    audit.raise_if_any()
