"""Settings: every value comes from the environment, with a default that works in dev.

A service's settings are two objects: `InfraSettings` (prefix `TESSERA_`, shared by all
services: NATS, Redis, telemetry, namespace) and its own class (prefix
`TESSERA_<SERVICE>_`, e.g. its database URL and port). `load_settings` turns a validation
error into a one-line message that names the environment variable, and exits.
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    Field,
    NatsDsn,
    PostgresDsn,
    RedisDsn,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

NAMESPACE_PATTERN = r"^[a-z0-9_]{0,32}$"


def _thirty_two_bytes(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("must be base64") from None
    if len(raw) != 32:
        raise ValueError("must decode to exactly 32 bytes")
    return value


# A key-encryption key setting: 32 bytes, base64 (licensing's and webhooks' secrets at rest).
KeyEncryptionKey = Annotated[str, AfterValidator(_thirty_two_bytes)]


def decoded_key(value: str) -> bytes:
    return base64.b64decode(value)


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PRODUCTION = "production"


class InfraSettings(BaseSettings):
    """What every service shares: where NATS and Redis are, telemetry, and the namespace."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore", frozen=True)

    env: Environment = Environment.DEV
    nats_url: NatsDsn = NatsDsn("nats://127.0.0.1:4222")
    redis_url: RedisDsn = RedisDsn("redis://127.0.0.1:6379/0")
    # Production refuses a NATS, Redis or Postgres URL without a password unless this is true
    # (the servers authenticate clients another way: a Unix socket, IAM, mTLS certificates).
    # The code's own default URLs are refused in production either way.
    allow_passwordless_urls: bool = False
    # Prefixes stream names, subjects and Redis keys so that several stacks (or test runs)
    # can share one NATS and one Redis without seeing each other's data.
    namespace: Annotated[str, Field(pattern=NAMESPACE_PATTERN)] = ""
    # Replicas of each JetStream stream a producer declares (3 on a 3-node NATS cluster).
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)
    log_level: str = "INFO"
    log_json: bool = True
    # OTLP/HTTP endpoint, e.g. http://collector:4318: traces and metrics are exported there.
    # The standard OTEL_EXPORTER_OTLP_ENDPOINT; TESSERA_OTEL_EXPORTER_OTLP_ENDPOINT is an
    # older alias (the standard one wins when both are set). Empty: nothing is exported.
    otel_exporter_otlp_endpoint: str = Field(
        default="",
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "TESSERA_OTEL_EXPORTER_OTLP_ENDPOINT",
            "otel_exporter_otlp_endpoint",
        ),
    )
    # The standard OTEL_SERVICE_NAME; empty: tessera-<service>.
    otel_service_name: str = Field(
        default="", validation_alias=AliasChoices("OTEL_SERVICE_NAME", "otel_service_name")
    )
    # A span per SQL statement and Redis command. Costly on hot paths (see
    # docs/performance.md); service, HTTP and messaging spans stay either way.
    otel_client_spans: bool = False
    # Serve /openapi.json and the /docs UI (the public document: admin routes never listed).
    # Unset: on in dev and test, off in production, where an operator turns it on.
    openapi: bool | None = None
    # Where services fetch auth's public keys to verify access tokens locally.
    auth_jwks_url: str = "http://127.0.0.1:8083/.well-known/jwks.json"
    token_issuer: str = "tessera-auth"  # noqa: S105 - an issuer name, not a secret
    token_audience: str = "tessera"  # noqa: S105 - an audience name
    # The audience of a member's seller-session token (docs/sellers.md, "Dashboard
    # sessions"): never `token_audience`, so a customer route refuses such a token.
    seller_session_audience: str = "tessera-seller"
    # Proxies whose X-Forwarded-For names the client (addresses or networks, comma-separated):
    # none by default, so a peer's own X-Forwarded-For is ignored (shared/http/forwarded.py).
    forwarded_allow_ips: Annotated[list[str], NoDecode] = []

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _allowed_proxies(cls, value: object) -> list[str]:
        from tessera.shared.http.forwarded import parse_allowed

        if isinstance(value, str | list | tuple):
            return parse_allowed(value)
        raise ValueError("a comma-separated list of addresses or networks")

    @field_validator("openapi", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def serves_openapi(self) -> bool:
        return self.openapi if self.openapi is not None else self.env != Environment.PRODUCTION


class ServiceSettings(BaseSettings):
    """Base of each service's own settings (subclasses set `env_prefix`)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Largest request body any endpoint reads; routes may set a smaller one.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # Browser origins allowed to call this service (CORS); empty means none.
    cors_origins: list[str] = []
    # Apply pending migrations at start-up (dev default); operators may run the CLI instead.
    auto_migrate: bool = True
    # Run this service's event consumers and outbox relay in this process. Turn it off for
    # replicas that should only serve HTTP (say, a webhook ingress scaled apart from its
    # workers); at least one replica must keep it on.
    run_workers: bool = True


class DatabaseSettings(ServiceSettings):
    """Settings of a service that owns a Postgres database."""

    database_url: PostgresDsn = PostgresDsn("postgresql://postgres@127.0.0.1:5432/postgres")
    db_pool_min: int = Field(default=2, ge=1, le=100)
    db_pool_max: int = Field(default=10, ge=1, le=200)


class ConfigurationError(SystemExit):
    """Raised at start-up when the environment holds an invalid value."""


S = TypeVar("S", bound=BaseSettings)


def env_name(settings_cls: type[BaseSettings], field: str) -> str:
    """The variable a field is read from: its alias (the first of several: the standard
    name), else the class's prefix and the field's name."""
    info = settings_cls.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0].upper()
    if isinstance(alias, str):
        return alias.upper()
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    return f"{prefix}{field}".upper()


def describe_validation_error(settings_cls: type[BaseSettings], error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        problems.append(f"{env_name(settings_cls, field)}: {item['msg']}")
    return "invalid configuration: " + "; ".join(problems)


def load_settings(settings_cls: type[S]) -> S:
    """Read settings from the environment, or exit with a message naming the variable."""
    try:
        return settings_cls()
    except ValidationError as error:
        # SystemExit prints its message to stderr once, with no traceback.
        raise ConfigurationError(describe_validation_error(settings_cls, error)) from None
