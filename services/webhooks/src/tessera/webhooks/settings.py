"""Webhooks' settings (environment prefix `TESSERA_WEBHOOKS_`)."""

from __future__ import annotations

import base64

from pydantic import Field, PostgresDsn, field_validator
from pydantic_settings import SettingsConfigDict

from tessera.shared.secret_policy import production_audit
from tessera.shared.settings import (
    DatabaseSettings,
    InfraSettings,
    KeyEncryptionKey,
    decoded_key,
    env_name,
)

# Dev/test only: anyone can read it here. Start-up refuses it when TESSERA_ENV=production.
DEV_KEY_ENCRYPTION_KEY = base64.b64encode(b"tessera-dev-only-webhooks-kek!!!").decode()

# The retry schedule after the first attempt, in seconds (docs/webhooks.md, "Retries"):
# Svix's published schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), extended as Stripe
# does to about three days in all. Each delay gets +-20 % jitter.
DEFAULT_RETRY_SCHEDULE = (
    5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0, 72000.0, 86400.0,
)  # fmt: skip


class WebhooksSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_WEBHOOKS_", extra="ignore", frozen=True)

    port: int = 8085
    database_url: PostgresDsn = PostgresDsn("postgresql://postgres@127.0.0.1:5432/webhooks")
    # The seller API's bodies are an endpoint's settings: small.
    max_body_bytes: int = Field(default=16 * 1024, ge=1024, le=16 * 1024 * 1024)
    # 32 bytes, base64: seals the endpoints' signing secrets at rest.
    key_encryption_key: KeyEncryptionKey = DEV_KEY_ENCRYPTION_KEY
    # The seller API's budget per API key (its key id), per window.
    rate_window_seconds: int = Field(default=60, ge=1, le=3600)
    rate_per_seller_key: int = Field(default=600, ge=1)
    # Delays before each retry (seconds); an event is given up after the last.
    retry_schedule: list[float] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE), min_length=1, max_length=30
    )
    # Random spread of each delay (0.2: +-20 %), so endpoints that failed together do not
    # all retry in the same second.
    retry_jitter: float = Field(default=0.2, ge=0, le=0.5)
    # An endpoint whose every attempt failed for this long is disabled (seconds; 5 days).
    disable_after_seconds: float = Field(default=5 * 86400, gt=0)
    # Per attempt: connecting, and the whole exchange (a receiver trickling bytes is cut off).
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    attempt_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    # What is kept of a receiver's answer in the delivery log; no more is read.
    response_excerpt_bytes: int = Field(default=1024, ge=0, le=64 * 1024)
    # A public event's body is never larger (a bus event that would translate larger is
    # refused, not sent).
    max_payload_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    # Attempts in flight per process, and per endpoint: one slow endpoint uses at most its
    # own share, never the others'.
    max_in_flight: int = Field(default=64, ge=1, le=1000)
    max_in_flight_per_endpoint: int = Field(default=4, ge=1, le=100)
    # How often the worker looks for due deliveries when nothing woke it (seconds).
    poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # Deliver only to https URLs whose addresses are all public (docs/webhooks.md, "Safety"):
    # always in production; true enforces it elsewhere too (a staging stack).
    public_targets_only: bool = False
    # Retention (docs/webhooks.md, "Retention"): the delivery log and the events kept for
    # replays are swept once older than this (seconds; 90 days, as Svix keeps messages),
    # never what is still due. At least the retry window, so a log outlives its retries.
    retention_seconds: float = Field(default=90 * 86400, gt=0)
    # Rows deleted per transaction, and how often a worker sweeps (seconds).
    retention_batch: int = Field(default=1000, ge=1, le=100_000)
    retention_sweep_seconds: float = Field(default=3600.0, gt=0)
    # Longest a rotation's overlap may be (seconds; 7 days).
    max_rotation_overlap_seconds: int = Field(default=7 * 86400, ge=0)

    @property
    def kek(self) -> bytes:
        return decoded_key(self.key_encryption_key)

    @field_validator("retry_schedule")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(delay <= 0 for delay in value):
            raise ValueError("every delay must be positive")
        return value


def refuse_dev_secrets(settings: WebhooksSettings, infra: InfraSettings) -> None:
    """Production brings its own key-encryption key (not the public dev default, no
    placeholder, 32 random-looking bytes) and real passwords in URLs
    (tessera.shared.secret_policy)."""
    audit = production_audit(infra)
    if audit is None:
        return
    audit.raw_key(
        env_name(WebhooksSettings, "key_encryption_key"),
        settings.key_encryption_key,
        settings.kek,
        [DEV_KEY_ENCRYPTION_KEY],
    )
    audit.url(
        env_name(WebhooksSettings, "database_url"),
        settings.database_url,
        WebhooksSettings.model_fields["database_url"].default,
    )
    audit.raise_if_any()
