"""What the portal holds while it runs: settings, upstream clients, Redis, the token
verifier. Routes reach it with `PortalDep`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import Depends, Request
from redis.asyncio import Redis

from tessera.portal.catalog.names import Names
from tessera.portal.settings import PortalSettings
from tessera.portal.upstream.auth import AuthClient
from tessera.portal.upstream.base import Upstream
from tessera.portal.upstream.billing import BillingClient
from tessera.portal.upstream.licensing import LicensingClient
from tessera.shared.http.problems import ServiceUnavailable
from tessera.shared.redis import Keys, RateLimiter
from tessera.shared.tokens import AccessTokenVerifier, JwksCache


@dataclass
class Portal:
    settings: PortalSettings
    secure: bool
    http: httpx.AsyncClient
    auth: AuthClient
    licensing: LicensingClient
    billing: BillingClient
    verifier: AccessTokenVerifier
    issuer: str
    redis: Redis | None = None
    limiter: RateLimiter | None = None
    keys: Keys = field(default_factory=lambda: Keys("tessera:portal:"))
    names: Names = field(default_factory=lambda: Names("ChartGPT"))
    # The directory download files are served from (None: files are not served).
    downloads_root: Path | None = None

    @classmethod
    def of(cls, settings: PortalSettings, secure: bool, issuer: str, audience: str) -> Portal:
        http = httpx.AsyncClient(timeout=settings.upstream_timeout_seconds)

        def upstream(name: str, url: object) -> Upstream:
            return Upstream(name, str(url), http)

        auth_url = str(settings.auth_url).rstrip("/")
        return cls(
            settings=settings,
            secure=secure,
            http=http,
            auth=AuthClient(upstream("auth", auth_url)),
            licensing=LicensingClient(upstream("licensing", settings.licensing_url)),
            billing=BillingClient(upstream("billing", settings.billing_url)),
            verifier=AccessTokenVerifier(
                JwksCache(auth_url + "/.well-known/jwks.json", client=http),
                issuer=issuer,
                audience=audience,
            ),
            issuer=issuer,
            names=Names(settings.product_name),
        )

    def store(self) -> Redis:
        if self.redis is None:
            raise ServiceUnavailable("The token cache is not connected.")
        return self.redis

    def rate_limiter(self) -> RateLimiter:
        if self.limiter is None:
            raise ServiceUnavailable("Rate limiting is unavailable.")
        return self.limiter


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


async def get_portal(request: Request) -> Portal:
    # async on purpose: FastAPI runs a plain-function dependency in a worker thread.
    return portal_of(request)


PortalDep = Annotated[Portal, Depends(get_portal)]
