"""Licensing's settings (environment prefix `TESSERA_LICENSING_`)."""

from pydantic import PostgresDsn
from pydantic_settings import SettingsConfigDict

from tessera.shared.settings import DatabaseSettings


class LicensingSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_LICENSING_", extra="ignore", frozen=True)

    port: int = 8084
    database_url: PostgresDsn = PostgresDsn("postgresql://postgres@127.0.0.1:5432/licensing")
