"""Billing's settings (environment prefix `TESSERA_BILLING_`)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, Field, PostgresDsn, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from tessera.shared.secret_policy import LIVE_PREFIXES, STRIPE_KEY, WEBHOOK_SECRET, production_audit
from tessera.shared.sellers import Mode
from tessera.shared.settings import DatabaseSettings, InfraSettings, env_name


def key_mode(key: str) -> Mode:
    """The Stripe mode of a secret or restricted key."""
    return "live" if key.startswith(LIVE_PREFIXES) else "test"


DEV_WEBHOOK_SECRET = "whsec_tessera_dev_only_do_not_use_in_production"  # noqa: S105 - refused in production
DEV_CONNECT_WEBHOOK_SECRET = "whsec_tessera_connect_dev_only_not_for_production"  # noqa: S105 - refused in production


class BillingSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_BILLING_", extra="ignore", frozen=True)

    port: int = 8082
    database_url: PostgresDsn = PostgresDsn("postgresql://postgres@127.0.0.1:5432/billing")
    # Empty: no Stripe account; the built-in test checkout stands in for Stripe Checkout.
    stripe_secret_key: SecretStr | None = None
    # Stripe's API base, only to point the official library at a local stand-in in tests.
    stripe_api_base: str | None = None
    # `live`: this stack takes real money, and production refuses a test-mode key
    # (sk_test_/rk_test_). `test`: production refuses a live key. Unset: whichever the key
    # is (a live key makes the stack live).
    stripe_mode: Literal["test", "live"] | None = None
    # Comma-separated: during a rotation both the old and the new secret verify.
    stripe_webhook_secrets: Annotated[list[SecretStr], NoDecode] = [SecretStr(DEV_WEBHOOK_SECRET)]
    # Connect (docs/billing.md, "Connect"): the platform's OAuth client id (`ca_...`, Stripe
    # Dashboard, Connect settings); unset: sellers cannot connect their accounts.
    stripe_connect_client_id: str | None = Field(default=None, pattern=r"^ca_[A-Za-z0-9]{1,250}$")
    # The signing secrets of the Connect webhook endpoint (connected accounts' events),
    # comma-separated like `stripe_webhook_secrets`.
    stripe_connect_webhook_secrets: Annotated[list[SecretStr], NoDecode] = [
        SecretStr(DEV_CONNECT_WEBHOOK_SECRET)
    ]
    # A test-mode key of the same platform beside a live `stripe_secret_key`: sellers'
    # test-mode tenants reach their connected accounts with it (a live key cannot).
    stripe_test_secret_key: SecretStr | None = None
    # The platform's fee on a connected seller's payments, in percent (0: none). One value
    # for every seller for now; the seam for a fee per platform plan (`platform_fee_for`).
    platform_fee_percent: Decimal = Field(default=Decimal(0), ge=0, le=100, decimal_places=2)
    stripe_webhook_tolerance: int = Field(default=300, ge=30, le=3600)
    webhook_max_bytes: int = Field(default=512 * 1024, ge=16 * 1024, le=4 * 1024 * 1024)
    # Where browsers reach billing (test checkout, its self-delivered webhooks).
    public_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8082")
    portal_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8081")
    site_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8080")
    catalog_file: Path = Path("deploy/catalog.json")
    # The catalog's Stripe sync: the first retry of a failed call, in seconds (it doubles
    # on each failure, up to an hour).
    stripe_sync_retry_seconds: float = Field(default=5.0, gt=0, le=3600)
    # How long a claimed row is left to the replica calling Stripe for it before another
    # may take it (the replica died); renewed as each row's turn comes.
    stripe_sync_lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Rate limits (`limits` notation), per client IP.
    webhook_rate_limit: str = "1200/minute"
    checkout_rate_limit: str = "30/minute"
    # Reads of a checkout's outcome (its success page polls every few seconds).
    checkout_status_rate_limit: str = "240/minute"
    api_rate_limit: str = "120/minute"
    # The seller API's budget per API key (its key id), shared by the replicas.
    seller_key_rate_limit: str = "600/minute"

    @field_validator("stripe_webhook_secrets", "stripe_connect_webhook_secrets", mode="before")
    @classmethod
    def split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @field_validator(
        "stripe_mode", "stripe_connect_client_id", "stripe_test_secret_key", mode="before"
    )
    @classmethod
    def empty_mode_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def test_checkout(self) -> bool:
        return self.stripe_secret_key is None or not self.stripe_secret_key.get_secret_value()

    @property
    def live(self) -> bool:
        """Live mode is configured: `stripe_mode=live`, or a live key with no mode set."""
        if self.stripe_mode is not None:
            return self.stripe_mode == "live"
        key = self.stripe_secret_key.get_secret_value() if self.stripe_secret_key else ""
        return key.startswith(LIVE_PREFIXES)

    @property
    def platform_mode(self) -> Mode:
        """The Stripe mode of the platform's key, which its account's events carry
        (`livemode`), whatever `stripe_mode` says the stack sells in. No key: test (the
        test checkout sends test-mode events)."""
        key = self.stripe_secret_key.get_secret_value() if self.stripe_secret_key else ""
        return key_mode(key)


def _stripe_host(base: str | None) -> bool:
    """True when `base` is unset or names a host under stripe.com."""
    if base is None:
        return True
    host = urlsplit(base).hostname or ""
    return host == "stripe.com" or host.endswith(".stripe.com")


def check_production(settings: BillingSettings, infra: InfraSettings) -> None:
    """Production takes real Stripe credentials (tessera.shared.secret_policy): no
    placeholder or dev secret, nothing too short or too regular, no test key where live
    mode is configured, and real passwords in the database, NATS and Redis URLs."""
    audit = production_audit(infra)
    if audit is None:
        return
    key_name = env_name(BillingSettings, "stripe_secret_key")
    if settings.test_checkout:
        audit.problems.append(
            f"{key_name}: required in production (the test checkout is for development only)"
        )
    else:
        assert settings.stripe_secret_key is not None
        key = settings.stripe_secret_key.get_secret_value()
        audit.secret(key_name, key, STRIPE_KEY)
        live_key = key.startswith(LIVE_PREFIXES)
        if settings.live and not live_key:
            audit.problems.append(
                f"{key_name}: a test-mode key is refused where live mode is configured "
                f"({env_name(BillingSettings, 'stripe_mode')}=live)"
            )
        elif settings.stripe_mode == "test" and live_key:
            audit.problems.append(
                f"{key_name}: a live key is refused where "
                f"{env_name(BillingSettings, 'stripe_mode')}=test"
            )
    secrets_name = env_name(BillingSettings, "stripe_webhook_secrets")
    if not settings.stripe_webhook_secrets:
        audit.problems.append(f"{secrets_name}: at least one webhook secret is required")
    for secret in settings.stripe_webhook_secrets:
        audit.secret(secrets_name, secret.get_secret_value(), WEBHOOK_SECRET, [DEV_WEBHOOK_SECRET])
    connect_name = env_name(BillingSettings, "stripe_connect_webhook_secrets")
    # Without a client id the Connect endpoint takes no secret at all (webhooks/service.py).
    for secret in (
        settings.stripe_connect_webhook_secrets if settings.stripe_connect_client_id else []
    ):
        audit.secret(
            connect_name, secret.get_secret_value(), WEBHOOK_SECRET, [DEV_CONNECT_WEBHOOK_SECRET]
        )
    if settings.stripe_test_secret_key is not None:
        test_name = env_name(BillingSettings, "stripe_test_secret_key")
        test_key = settings.stripe_test_secret_key.get_secret_value()
        audit.secret(test_name, test_key, STRIPE_KEY)
        if test_key.startswith(LIVE_PREFIXES):
            audit.problems.append(f"{test_name}: must be a test-mode key (sk_test_ or rk_test_)")
    base = settings.stripe_api_base
    if base is not None and (urlsplit(base).scheme != "https" or not _stripe_host(base)):
        # The stand-in's address (`./dev up`) must never receive a production key.
        audit.problems.append(
            f"{env_name(BillingSettings, 'stripe_api_base')}: production talks to Stripe"
            " itself (unset it, or an https address under stripe.com)"
        )
    audit.url(
        env_name(BillingSettings, "database_url"),
        settings.database_url,
        BillingSettings.model_fields["database_url"].default,
    )
    audit.raise_if_any()
