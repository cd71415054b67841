"""What licensing holds while it runs, beside the kernel's connections: its settings, the
sealer for secrets at rest, the license cache, the desktop rate-limit rules, validate's own
read pool, the signing-key ring (swapped whole when it is refreshed) and the heartbeats
heard but not yet written.

Built in `app.create_app`; routes reach it with `LicensingDep` (validate, on the hot path,
reads it off the app), subscribers and start-up hooks receive it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import asyncpg
from fastapi import Depends

from tessera.licensing.cache import LicenseCache
from tessera.licensing.heartbeats.service import Heartbeats
from tessera.licensing.settings import LicensingSettings
from tessera.licensing.signing.service import KeyRing
from tessera.shared.keys import Sealer
from tessera.shared.sellers import HOME_LIVE
from tessera.shared.service import NotConnected, ServiceContext, context_dependency
from tessera.shared.settings import InfraSettings
from tessera.shared.synced_limits import Rule
from tessera.shared.tokens import AccessTokenVerifier, JwksCache

# Whose data the operator's admin routes and CLI act on: the home seller's, live (the
# admin role is the operator's; a seller's own dashboard comes with its keys).
OPERATOR_TENANT = HOME_LIVE


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False, kw_only=True)
class Licensing(ServiceContext[LicensingSettings]):
    name: str = "licensing"
    sealer: Sealer
    # The ring in use; `signing.keep_fresh` swaps in a new one whole. None until start-up.
    loaded_ring: KeyRing | None = field(default=None, init=False)
    cache: LicenseCache = field(init=False)
    per_ip: Rule = field(init=False)
    per_key: Rule = field(init=False)
    # Heartbeats and check-ins count per key apart from validate and activate/checkout.
    per_key_beat: Rule = field(init=False)
    per_seller_key: Rule = field(init=False)
    per_usage_caller: Rule = field(init=False)
    # The usage API's clock: which period a record counts in. Tests replace it to cross a
    # period's boundary (docs/usage.md).
    usage_clock: Callable[[], datetime] = field(default_factory=lambda: utc_now, init=False)
    _read_pool: asyncpg.Pool | None = field(default=None, init=False)
    # Heartbeats heard, written in batches (heartbeats/service.py).
    heartbeats: Heartbeats = field(default_factory=Heartbeats, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cache = LicenseCache(
            ttl=self.settings.cache_ttl_seconds, max_entries=self.settings.cache_max_entries
        )
        window = float(self.settings.rate_window_seconds)
        self.per_ip = Rule("ip", self.settings.rate_per_ip, window)
        self.per_key = Rule("key", self.settings.rate_per_key, window)
        self.per_key_beat = Rule("beat", self.settings.rate_per_key, window)
        self.per_seller_key = Rule("seller-key", self.settings.rate_per_seller_key, window)
        self.per_usage_caller = Rule("usage-caller", self.settings.rate_per_usage_caller, window)

    @classmethod
    def of(cls, settings: LicensingSettings, infra: InfraSettings) -> Licensing:
        return cls(settings=settings, infra=infra, sealer=Sealer(settings.kek))

    def build_token_verifier(self) -> AccessTokenVerifier:
        # Customer, admin and device-flow tokens: auth's JWKS at licensing's own settings.
        return AccessTokenVerifier(
            JwksCache(self.settings.auth_jwks_url),
            issuer=self.settings.auth_issuer,
            audience=self.settings.auth_audience,
        )

    @property
    def ring(self) -> KeyRing:
        if self.loaded_ring is None:
            raise NotConnected("Signing keys are not loaded yet.")
        return self.loaded_ring

    @property
    def read_pool(self) -> asyncpg.Pool:
        """validate's own pool: a burst of writes cannot starve it of connections."""
        if self._read_pool is None:
            raise NotConnected("The database is not connected.")
        return self._read_pool

    def use_read_pool(self, pool: asyncpg.Pool) -> None:
        self._read_pool = pool


LicensingDep = Annotated[Licensing, Depends(context_dependency(Licensing))]
