"""Billing's settings (environment prefix `TESSERA_BILLING_`)."""

from pathlib import Path
from typing import Annotated

from pydantic import AnyHttpUrl, Field, PostgresDsn, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from tessera.shared.settings import DatabaseSettings

DEV_WEBHOOK_SECRET = "whsec_tessera_dev_only_do_not_use_in_production"  # noqa: S105 - refused in production


class BillingSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_BILLING_", extra="ignore", frozen=True)

    port: int = 8082
    database_url: PostgresDsn = PostgresDsn("postgresql://postgres@127.0.0.1:5432/billing")
    # Empty: no Stripe account; the built-in test checkout stands in for Stripe Checkout.
    stripe_secret_key: SecretStr | None = None
    # Stripe's API base, only to point the official library at a local stand-in in tests.
    stripe_api_base: str | None = None
    # Comma-separated: during a rotation both the old and the new secret verify.
    stripe_webhook_secrets: Annotated[list[SecretStr], NoDecode] = [SecretStr(DEV_WEBHOOK_SECRET)]
    stripe_webhook_tolerance: int = Field(default=300, ge=30, le=3600)
    webhook_max_bytes: int = Field(default=512 * 1024, ge=16 * 1024, le=4 * 1024 * 1024)
    # Where browsers reach billing (test checkout, its self-delivered webhooks).
    public_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8082")
    portal_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8081")
    site_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8080")
    catalog_file: Path = Path("deploy/catalog.json")
    # Rate limits (`limits` notation), per client IP.
    webhook_rate_limit: str = "1200/minute"
    checkout_rate_limit: str = "30/minute"
    # Reads of a checkout's outcome (its success page polls every few seconds).
    checkout_status_rate_limit: str = "240/minute"
    api_rate_limit: str = "120/minute"

    @field_validator("stripe_webhook_secrets", mode="before")
    @classmethod
    def split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @property
    def test_checkout(self) -> bool:
        return self.stripe_secret_key is None or not self.stripe_secret_key.get_secret_value()
