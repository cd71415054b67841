"""Licensing's settings (environment prefix `TESSERA_LICENSING_`)."""

from __future__ import annotations

import base64

from pydantic import Field, PostgresDsn, field_validator
from pydantic_settings import SettingsConfigDict

from tessera.shared.secret_policy import production_audit
from tessera.shared.settings import (
    DatabaseSettings,
    Environment,
    InfraSettings,
    KeyEncryptionKey,
    decoded_key,
    env_name,
)

# Dev/test only: anyone can read it here. Start-up refuses it when TESSERA_ENV=production.
DEV_KEY_ENCRYPTION_KEY = base64.b64encode(b"tessera-dev-only-licensing-kek!!").decode()


class LicensingSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_LICENSING_", extra="ignore", frozen=True)

    port: int = 8084
    database_url: PostgresDsn = PostgresDsn("postgresql://postgres@127.0.0.1:5432/licensing")
    # The desktop API's bodies are a key, a fingerprint and a few labels: keep them small.
    max_body_bytes: int = Field(default=8 * 1024, ge=1024, le=16 * 1024 * 1024)
    # 32 bytes, base64: seals the private halves of lease-signing keys and the license keys.
    key_encryption_key: KeyEncryptionKey = DEV_KEY_ENCRYPTION_KEY
    # Auth's JWKS, for customer, admin and device-flow access tokens.
    auth_jwks_url: str = "http://127.0.0.1:8083/.well-known/jwks.json"
    auth_issuer: str = "tessera-auth"
    auth_audience: str = "tessera"
    # Rate limits per sliding window of `rate_window_seconds`, per client IP and per license key.
    rate_window_seconds: int = Field(default=60, ge=1, le=3600)
    rate_per_ip: int = Field(default=600, ge=1)
    rate_per_key: int = Field(default=120, ge=1)
    # The seller API's budget per API key (its key id), in the same window.
    rate_per_seller_key: int = Field(default=600, ge=1)
    # The usage API's budget per caller (a seller key, or a customer's account), in the same
    # window: it is called on every billable action, so far above the seller API's; each
    # customer's own rate is its tier's `rate_per_minute` (docs/usage.md).
    rate_per_usage_caller: int = Field(default=60_000, ge=1)
    # Connections of validate's own read-only pool (beside the main pool, db_pool_max).
    read_pool_max: int = Field(default=8, ge=1, le=200)
    # validate's in-memory view of licenses: forgotten at once on any committed change
    # (Postgres NOTIFY), and after this many seconds regardless.
    cache_ttl_seconds: float = Field(default=60.0, gt=0, le=3600)
    cache_max_entries: int = Field(default=100_000, ge=0)
    # Per-request trace spans for validate, fast path and full stack alike, when telemetry
    # is collecting (off: it is the call every running copy makes, and its span costs about
    # a third of its CPU; activate and deactivate stay traced).
    trace_validate: bool = False
    # Python's gen-0 GC threshold for this process (0: Python's default of 700). A collection
    # holds the event loop for as long as it takes, and its time grows with the threshold:
    # at 20 000 one took 8-20 ms of CPU and a gen-1 40 ms, for no measurable CPU saved, as
    # validate's path leaves almost nothing for the collector (docs/performance.md,
    # "Validate's stall").
    gc_gen0_threshold: int = Field(default=0, ge=0)
    # Log the event loop's stalls of this many milliseconds or more (`loop.stall`: the loop
    # thread's CPU, GC, run-queue and blocked time over it) and garbage collections of 10 ms
    # or more, or of the threshold if lower (`gc.pause`); 0: off. Costs a wake-up every
    # 20 ms (or every threshold, if lower).
    # docs/performance.md, "Validate's stall".
    stall_log_ms: float = Field(default=0.0, ge=0)
    # Heartbeats are answered from memory and written in one batch this often (seconds).
    heartbeat_flush_seconds: float = Field(default=1.0, gt=0, le=60)
    # How often the sweeper deactivates machines whose heartbeats lapsed (seconds).
    heartbeat_sweep_seconds: float = Field(default=15.0, gt=0, le=3600)
    # How often a replica re-reads the signing keys (picks up an operator's rotation).
    signing_key_refresh_seconds: float = Field(default=10.0, gt=0, le=300)
    # Keep a root key sealed in the database (made at first start) and let the service sign
    # the key set itself. False: the root lives offline with the operator, who signs each set
    # with `tessera-licensing keys sign-set --root-key FILE` (docs/licensing.md, "Root keys").
    # Unset (None, or empty): true in dev and test, false in production, where whoever holds
    # the database and the key-encryption key could otherwise sign a trusted key set.
    sealed_root: bool | None = None
    # How long a signed key set is good for. A sealed root re-signs at half of it; with an
    # offline root the operator must sign again before it runs out.
    key_set_lifetime_seconds: int = Field(default=30 * 86400, ge=3600, le=400 * 86400)

    @field_validator("sealed_root", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def with_sealed_root_for(self, env: Environment) -> LicensingSettings:
        """These settings with `sealed_root` decided: as set, else false in production."""
        if self.sealed_root is not None:
            return self
        return self.model_copy(update={"sealed_root": env != Environment.PRODUCTION})

    @property
    def kek(self) -> bytes:
        return decoded_key(self.key_encryption_key)


def refuse_dev_secrets(settings: LicensingSettings, infra: InfraSettings) -> None:
    """Production brings its own key-encryption key (tessera.shared.secret_policy: not the
    public dev default, no placeholder, 32 random-looking bytes) and real passwords in URLs."""
    audit = production_audit(infra)
    if audit is None:
        return
    audit.raw_key(
        env_name(LicensingSettings, "key_encryption_key"),
        settings.key_encryption_key,
        settings.kek,
        [DEV_KEY_ENCRYPTION_KEY],
    )
    audit.url(
        env_name(LicensingSettings, "database_url"),
        settings.database_url,
        LicensingSettings.model_fields["database_url"].default,
    )
    audit.raise_if_any()
