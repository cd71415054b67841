"""An invite's token, minted when the mail that carries it is sent (the mail queue holds
no secret; a retried mail carries a fresh token and the older one stops working)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from tessera.auth.context import Auth
from tessera.auth.members import queries
from tessera.auth.secrets import new_token


@dataclass(frozen=True)
class MintedInvite:
    token: str
    role: str
    seller_name: str


async def mint_token(auth: Auth, invite_id: UUID) -> MintedInvite | None:
    """A fresh token for an open invite; None when it was accepted, revoked or expired."""
    token = new_token()
    row = await queries.set_invite_token(auth.pool, invite_id, auth.hasher("invite", token))
    if row is None:
        return None
    return MintedInvite(token=token, role=row["role"], seller_name=row["seller_name"])
