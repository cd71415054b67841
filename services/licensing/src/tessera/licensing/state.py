"""What licensing holds beside the shared runtime: its settings, the sealer for secrets at
rest, the signing-key ring (swapped whole when it is refreshed) and the desktop limiter."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from fastapi import Request

from tessera.licensing.cache import LicenseCache
from tessera.licensing.heartbeats.service import Heartbeats
from tessera.licensing.settings import LicensingSettings
from tessera.licensing.signing.service import KeyRing
from tessera.shared.http.problems import ServiceUnavailable
from tessera.shared.keys import Sealer
from tessera.shared.synced_limits import Rule, SyncedLimiter


@dataclass
class Licensing:
    settings: LicensingSettings
    sealer: Sealer
    ring: KeyRing | None = None
    # validate's own pool (see app.open_read_pool); None until start-up.
    read_pool: asyncpg.Pool | None = None
    limiter: SyncedLimiter | None = None
    per_ip: Rule = field(init=False)
    per_key: Rule = field(init=False)
    cache: LicenseCache = field(init=False)
    # Heartbeats heard, written in batches (heartbeats/service.py).
    heartbeats: Heartbeats = field(default_factory=Heartbeats)

    def __post_init__(self) -> None:
        self.cache = LicenseCache(
            ttl=self.settings.cache_ttl_seconds, max_entries=self.settings.cache_max_entries
        )
        window = float(self.settings.rate_window_seconds)
        self.per_ip = Rule("ip", self.settings.rate_per_ip, window)
        self.per_key = Rule("key", self.settings.rate_per_key, window)

    def key_ring(self) -> KeyRing:
        if self.ring is None:
            raise ServiceUnavailable("Signing keys are not loaded yet.")
        return self.ring


async def of(request: Request) -> Licensing:
    # async on purpose: FastAPI would run a plain function in a worker thread.
    state: Licensing = request.app.state.licensing
    return state


def for_settings(settings: LicensingSettings) -> Licensing:
    return Licensing(settings=settings, sealer=Sealer(settings.kek))
