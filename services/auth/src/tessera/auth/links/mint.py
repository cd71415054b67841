"""Minting a sign-in link: a fresh token and code for an address, replacing any older link.
Called by the mail sender when it sends the mail that carries them, so it is apart from the
link service (which queues that mail, and verifies)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from tessera.auth.context import Auth
from tessera.auth.links.store import link_store
from tessera.auth.secrets import new_code, new_token
from tessera.shared.accounts import normalize_email
from tessera.shared.sellers import HOME_LIVE, Tenant

SIGN_IN_PAGE = "/sign-in/link"


@dataclass(frozen=True)
class MintedLink:
    url: str
    code: str


def address_key(auth: Auth, tenant: Tenant, address: str) -> str:
    """The keyed hash that names an address's one live link (and its rate limits): one per
    address per seller and mode, so the same person at two sellers holds two links. The home
    seller's keeps its pre-seller form, so links in flight at an upgrade stay live."""
    if tenant == HOME_LIVE:
        return auth.hasher("addr", address)
    return auth.hasher("addr", str(tenant.seller_id), tenant.mode, address)


async def mint(
    auth: Auth,
    email: str,
    *,
    tenant: Tenant,
    user_id: UUID | None,
    binding: str,
    next_path: str,
    purpose: str = "sign_in",
    data: dict[str, Any] | None = None,
    page: str = SIGN_IN_PAGE,
) -> MintedLink:
    """A live link and code for the address at `tenant`, replacing any older one (called
    when the mail that carries it is sent). `purpose` says what verifying it does (sign in,
    or sign up a seller) and `data` what that needs; each verify accepts only its own."""
    token, code = new_token(), new_code()
    token_hash = auth.hasher("link", token)
    address = normalize_email(email)
    await link_store(auth).issue(
        token_hash,
        address_key(auth, tenant, address),
        auth.settings.link_ttl_seconds,
        {
            "email": address,
            "user_id": str(user_id) if user_id else "",
            "binding": binding,
            "next": next_path,
            "code": auth.hasher("code", token_hash, code),
            "seller_id": str(tenant.seller_id),
            "mode": tenant.mode,
            "purpose": purpose,
            "data": json.dumps(data or {}),
        },
    )
    url = f"{auth.settings.portal_url.rstrip('/')}{page}?{urlencode({'token': token})}"
    return MintedLink(url=url, code=code)
