"""Seller-session tokens: a member of a seller acting in the dashboard, in place of a key.

A person in a browser holds a member session (auth's access token of a home-seller user),
never a secret key, and the portal must never hold one either. So auth mints, for a member
of seller `slug` and a mode, a short-lived JWT with its usual signing keys but its own
audience (`InfraSettings.seller_session_audience`, never the customer tokens' one, so no
customer route accepts it and no seller route accepts a customer token). Every service
verifies it locally against the JWKS it already holds and resolves the seller through the
directory it already follows, as it does a key: the routes that take a secret key take this
too, for the same tenant (docs/sellers.md, "Dashboard sessions").

Claims: `iss`, `aud`, `sub` (the member's home user id), `role` = `seller_member`, `mrl`
(`owner` | `developer`), `sel` (slug), `mod` (`test` | `live`), `sid`, `jti`, `iat`, `exp`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import Request

from tessera.shared.api_keys.book import SellerCredential
from tessera.shared.http.problems import Problem
from tessera.shared.tokens import AccessTokenVerifier, Unauthorized

SELLER_SESSION_ROLE = "seller_member"
MEMBER_ROLES = ("owner", "developer")


class OwnerRequired(Problem):
    """The same answer auth's member routes give a developer for an owner's action."""

    status = 403
    slug = "owner-required"
    title = "Only an owner of the seller may do this"

    def __init__(self) -> None:
        super().__init__("Ask an owner of the seller.")


def looks_like_session(request: Request) -> bool:
    """Whether the bearer is a JWT (`eyJ…`, three parts) rather than a key (`sk_…`): which
    of the two checks decides. Either check refuses what is not its own."""
    for name, raw in request.scope["headers"]:
        if name == b"authorization":
            token = raw[7:] if raw[:7].lower() == b"bearer " else b""
            return token.startswith(b"eyJ") and token.count(b".") == 2
    return False


async def session_credential(request: Request, token: str) -> SellerCredential:
    """The seller and mode a member's seller-session token names, as a credential with the
    powers of that tenant's secret key; the one 401 for any defect."""
    context = request.app.state.context
    verifier: AccessTokenVerifier = context.token_verifier
    claims = await verifier.claims(token, audience=context.infra.seller_session_audience)
    return await credential_of_claims(verifier, claims)


async def credential_of_claims(
    verifier: AccessTokenVerifier, claims: dict[str, Any]
) -> SellerCredential:
    if claims.get("role") != SELLER_SESSION_ROLE or claims.get("mrl") not in MEMBER_ROLES:
        raise Unauthorized()
    if not isinstance(claims.get("sel"), str) or claims.get("mod") not in ("test", "live"):
        raise Unauthorized()  # a seller session always names both: no home-live default
    tenant = await verifier.tenant_of(claims)  # unknown or suspended seller: 401
    try:
        member = UUID(claims["sub"])
    except (ValueError, TypeError):
        raise Unauthorized() from None
    return SellerCredential(
        seller_id=tenant.seller_id,
        key_id=member,
        kind="secret",
        mode=tenant.mode,
        member_id=member,
        member_role=claims["mrl"],
    )


def require_owner(credential: SellerCredential) -> None:
    """Owner-only seller actions (those that spend the seller's money): a developer's
    session is refused; a secret key stands for the seller itself and passes."""
    if credential.member_id is not None and credential.member_role != "owner":
        raise OwnerRequired()
