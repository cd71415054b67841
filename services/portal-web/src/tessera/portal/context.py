"""What the portal holds while it runs, beside the kernel's connections (Redis for the
token cache and the form rate limits): settings, the upstream clients and the shared HTTP
client under them, and the product names. Built in `app.create_app`; routes reach it with
`PortalDep`, page helpers with `portal_of`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import Depends, Request

from tessera.portal.catalog.names import Names
from tessera.portal.settings import PortalSettings
from tessera.portal.upstream.auth import AuthClient
from tessera.portal.upstream.base import Upstream
from tessera.portal.upstream.billing import BillingClient
from tessera.portal.upstream.licensing import LicensingClient
from tessera.shared.service import ServiceContext, context_dependency
from tessera.shared.settings import InfraSettings
from tessera.shared.tokens import AccessTokenVerifier, JwksCache


@dataclass(eq=False, kw_only=True)
class Portal(ServiceContext[PortalSettings]):
    name: str = "portal"
    secure: bool
    http: httpx.AsyncClient
    auth: AuthClient
    licensing: LicensingClient
    billing: BillingClient
    names: Names
    # The directory download files are served from (None: files are not served).
    downloads_root: Path | None = None

    @classmethod
    def of(cls, settings: PortalSettings, infra: InfraSettings) -> Portal:
        http = httpx.AsyncClient(timeout=settings.upstream_timeout_seconds)

        def upstream(name: str, url: object) -> Upstream:
            return Upstream(name, str(url), http)

        return cls(
            settings=settings,
            infra=infra,
            secure=settings.secure_cookies(infra.env),
            http=http,
            auth=AuthClient(upstream("auth", settings.auth_url)),
            licensing=LicensingClient(upstream("licensing", settings.licensing_url)),
            billing=BillingClient(upstream("billing", settings.billing_url)),
            names=Names(settings.product_name),
            downloads_root=settings.download_root(infra.env),
        )

    def build_token_verifier(self) -> AccessTokenVerifier:
        # auth's JWKS at the portal's own upstream address, over the shared HTTP client.
        auth_url = str(self.settings.auth_url).rstrip("/")
        return AccessTokenVerifier(
            JwksCache(auth_url + "/.well-known/jwks.json", client=self.http),
            issuer=self.infra.token_issuer,
            audience=self.infra.token_audience,
        )


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.context
    return portal


PortalDep = Annotated[Portal, Depends(context_dependency(Portal))]
