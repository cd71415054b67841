"""Billing's settings (environment prefix `TESSERA_BILLING_`)."""

from pydantic import PostgresDsn
from pydantic_settings import SettingsConfigDict

from tessera.shared.settings import DatabaseSettings


class BillingSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_BILLING_", extra="ignore", frozen=True)

    port: int = 8082
    database_url: PostgresDsn = PostgresDsn("postgresql://postgres@127.0.0.1:5432/billing")
