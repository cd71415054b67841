"""Minting a sign-in link: a fresh token and code for an address, replacing any older link.
Called by the mail sender when it sends the mail that carries them, so it is apart from the
link service (which queues that mail, and verifies)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode
from uuid import UUID

from tessera.auth.context import Auth
from tessera.auth.links.store import link_store
from tessera.auth.secrets import new_code, new_token, normalize_email


@dataclass(frozen=True)
class MintedLink:
    url: str
    code: str


async def mint(
    auth: Auth, email: str, *, user_id: UUID | None, binding: str, next_path: str
) -> MintedLink:
    """A live link and code for the address, replacing any older one (called when the
    mail that carries it is sent)."""
    token, code = new_token(), new_code()
    token_hash = auth.hasher("link", token)
    address = normalize_email(email)
    await link_store(auth).issue(
        token_hash,
        auth.hasher("addr", address),
        auth.settings.link_ttl_seconds,
        {
            "email": address,
            "user_id": str(user_id) if user_id else "",
            "binding": binding,
            "next": next_path,
            "code": auth.hasher("code", token_hash, code),
        },
    )
    url = f"{auth.settings.portal_url.rstrip('/')}/sign-in/link?{urlencode({'token': token})}"
    return MintedLink(url=url, code=code)
