"""What auth's routes, subscribers and background tasks share: settings, the secret-derived
keys, the key ring, the Redis store and a nudge for the mail sender.

Built with the app; bound to the runtime (pool, Redis, limiter) when the lifespan starts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from redis.asyncio import Redis

from tessera.auth.secrets import Hasher, sealer_of
from tessera.auth.settings import AuthSettings
from tessera.auth.signing_keys.ring import KeyRingCache
from tessera.shared.http.problems import ServiceUnavailable
from tessera.shared.keys import Sealer
from tessera.shared.redis import Keys, RateLimiter
from tessera.shared.service import Runtime


@dataclass
class Auth:
    settings: AuthSettings
    hasher: Hasher
    sealer: Sealer
    mail_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _runtime: Runtime | None = None
    _keyring: KeyRingCache | None = None

    @classmethod
    def of(cls, settings: AuthSettings) -> Auth:
        return cls(
            settings=settings,
            hasher=Hasher.from_secret(settings.secret_key),
            sealer=sealer_of(settings.key_encryption_key),
        )

    def bind(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._keyring = KeyRingCache(
            runtime.db(),
            self.sealer,
            token_ttl=self.settings.access_token_ttl_seconds,
            cache_seconds=self.settings.signing_key_cache_seconds,
        )

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise ServiceUnavailable("Auth is starting.")
        return self._runtime

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.db()

    @property
    def redis(self) -> Redis:
        if self.runtime.redis is None:
            raise ServiceUnavailable("Redis is not connected.")
        return self.runtime.redis

    @property
    def limiter(self) -> RateLimiter:
        return self.runtime.rate_limiter()

    @property
    def keys(self) -> Keys:
        return self.runtime.keys

    @property
    def keyring(self) -> KeyRingCache:
        if self._keyring is None:
            raise ServiceUnavailable("Auth is starting.")
        return self._keyring


async def get_auth(request: Request) -> Auth:
    auth: Auth = request.app.state.auth
    return auth


AuthDep = Annotated[Auth, Depends(get_auth)]
