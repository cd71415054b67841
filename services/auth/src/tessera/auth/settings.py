"""Auth's settings (environment prefix `TESSERA_AUTH_`)."""

from pydantic import PostgresDsn
from pydantic_settings import SettingsConfigDict

from tessera.shared.settings import DatabaseSettings


class AuthSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_AUTH_", extra="ignore", frozen=True)

    port: int = 8083
    database_url: PostgresDsn = PostgresDsn("postgresql://postgres@127.0.0.1:5432/auth")
