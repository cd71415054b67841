"""What auth holds while it runs, beside the kernel's connections: its settings, the
secret-derived keys, the signing-key ring and a nudge for the mail sender.

Built in `app.create_app`; the key ring is made once the database is connected. Routes
reach it with `AuthDep`, subscribers and the mail sender receive it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends

from tessera.auth.secrets import Hasher, sealer_of
from tessera.auth.settings import AuthSettings
from tessera.auth.signing_keys.jwks import LocalJwks
from tessera.auth.signing_keys.ring import KeyRingCache
from tessera.shared.keys import Sealer
from tessera.shared.service import NotConnected, ServiceContext, context_dependency
from tessera.shared.settings import InfraSettings
from tessera.shared.tokens import AccessTokenVerifier


@dataclass(eq=False, kw_only=True)
class Auth(ServiceContext[AuthSettings]):
    name: str = "auth"
    hasher: Hasher
    sealer: Sealer
    mail_wakeup: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _keyring: KeyRingCache | None = field(default=None, init=False)

    @classmethod
    def of(cls, settings: AuthSettings, infra: InfraSettings) -> Auth:
        return cls(
            settings=settings,
            infra=infra,
            hasher=Hasher.from_secret(settings.secret_key),
            sealer=sealer_of(settings.key_encryption_key),
        )

    def build_token_verifier(self) -> AccessTokenVerifier:
        # Auth checks the tokens it issued against its own key ring, in memory.
        return AccessTokenVerifier(
            LocalJwks(lambda: self.keyring),
            issuer=self.settings.token_issuer,
            audience=self.settings.token_audience,
            sellers=self.sellers,
        )

    def open_keyring(self) -> None:
        self._keyring = KeyRingCache(
            self.pool,
            self.sealer,
            token_ttl=self.settings.access_token_ttl_seconds,
            cache_seconds=self.settings.signing_key_cache_seconds,
        )

    @property
    def keyring(self) -> KeyRingCache:
        if self._keyring is None:
            raise NotConnected("Auth is starting.")
        return self._keyring


AuthDep = Annotated[Auth, Depends(context_dependency(Auth))]
