"""Portal-web's settings (environment prefix `TESSERA_PORTAL_`)."""

from pydantic import AnyHttpUrl
from pydantic_settings import SettingsConfigDict

from tessera.shared.settings import ServiceSettings


class PortalSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_PORTAL_", extra="ignore", frozen=True)

    port: int = 8081
    auth_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8083")
    billing_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8082")
    licensing_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8084")
