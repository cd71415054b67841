"""Magic links over HTTP (called by the portal's server on behalf of a browser)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tessera.auth.context import Auth, AuthDep
from tessera.auth.links import service
from tessera.auth.links.errors import CodeRequired, SignInFailed
from tessera.auth.links.schemas import LinkAccepted, LinkRequest, SignedIn, VerifyRequest, safe_next
from tessera.auth.requests import client_ip, user_agent
from tessera.auth.sellers import service as sellers
from tessera.auth.sellers.schemas import Slug
from tessera.shared.api_keys.dependencies import credential_of
from tessera.shared.http.openapi import problems
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.sellers import HOME_LIVE, Tenant
from tessera.shared.tokens import Forbidden, Unauthorized

router = APIRouter(prefix="/v1/magic-links", tags=["magic links"])
# A seller's own sign-in page. The slug only names the page: the link goes to the owner of
# the address, and what it signs into is that seller's customer, nothing else.
seller_router = APIRouter(prefix="/v1/sellers/{slug}/sign-in", tags=["magic links"])


class UnsafeNext(Problem):
    status = 422
    slug = "unsafe-next"
    title = "Unsafe next path"


class KeyAndSeller(Problem):
    status = 422
    slug = "key-and-seller"
    title = "Key and seller disagree"

    def __init__(self) -> None:
        super().__init__(
            "The publishable key names the seller; leave `seller` out (or give the key's own)."
        )


def key_tenant(auth: Auth, request: Request) -> Tenant | None:
    """The seller and mode of a publishable key in `Authorization`, or None without one. A
    secret key is refused here: it never belongs in a browser or app, which is who signs a
    customer in."""
    if "authorization" not in request.headers:
        return None
    key = credential_of(request)
    if key.is_secret:
        raise Forbidden("Sign in with the publishable key; keep the secret key secret.")
    sellers.require_active_key(auth, key)
    return Tenant(key.seller_id, key.mode)


def link_tenant(auth: Auth, request: Request) -> Tenant:
    """Whose customer the link is for: a publishable key's seller and mode, or the home
    seller (live) without one."""
    return key_tenant(auth, request) or HOME_LIVE


# The publishable key is optional: a sign-in without one is the home seller's.
OPTIONAL_KEY: dict[str, Any] = {"security": [{}, {"apiKey": []}]}


@router.post(
    "",
    status_code=202,
    responses=problems(UnsafeNext, Unauthorized, Forbidden),
    openapi_extra=OPTIONAL_KEY,
)
async def request_link(body: LinkRequest, auth: AuthDep, request: Request) -> LinkAccepted:
    """A sign-in link for a customer of the home seller, or, with `Authorization: Bearer
    pk_…`, of the key's seller in the key's mode (its signup policy decides whether an
    unknown address gets a link). The same answer whether or not the address is known."""
    if not safe_next(body.next, auth.settings.next_path_prefixes):
        raise UnsafeNext("`next` must be a relative path under an allowed prefix.")
    tenant = link_tenant(auth, request)
    await service.request_link(
        auth, tenant, body.email, body.next, body.browser, ip=client_ip(request)
    )
    return LinkAccepted()


class UnknownSeller(NotFound):
    slug = "unknown-seller"
    title = "Unknown seller"


@seller_router.post("/links", status_code=202, responses=problems(UnknownSeller))
async def request_seller_link(
    slug: Slug, body: LinkRequest, auth: AuthDep, request: Request
) -> LinkAccepted:
    """A sign-in link for a customer of the seller `slug` (live). Closed signup: an unknown
    address gets nothing, and the same answer; open signup: it gets a link whose
    verification makes the customer."""
    if not safe_next(body.next, auth.settings.next_path_prefixes):
        raise UnsafeNext("`next` must be a relative path under an allowed prefix.")
    seller = await sellers.by_slug(auth.pool, slug)
    if seller is None or seller.status != "active":
        raise UnknownSeller("No seller has this sign-in page.")
    await service.request_link(
        auth,
        sellers.tenant_live(seller),
        body.email,
        body.next,
        body.browser,
        ip=client_ip(request),
    )
    return LinkAccepted()


@router.post(
    "/verify",
    responses=problems(SignInFailed, CodeRequired, KeyAndSeller, Unauthorized, Forbidden),
    openapi_extra=OPTIONAL_KEY,
)
async def verify(body: VerifyRequest, auth: AuthDep, request: Request) -> SignedIn:
    """Finish a sign-in with the link's token, or with `email` and the mailed `code`. For a
    code, the seller and mode are those of the start: the same publishable key as
    `POST /v1/magic-links` (a test key finishes a test-mode sign-in), or `seller` (the slug
    of a sign-in page, live), or neither (the home seller, live). A link names its seller
    and mode itself."""
    tenant = key_tenant(auth, request)
    if tenant is not None and body.seller is not None:
        seller = auth.sellers.by_id(tenant.seller_id)
        if seller is None or seller.slug != body.seller:
            raise KeyAndSeller()
    return await service.verify(
        auth, body, ip=client_ip(request), device=user_agent(request), key=tenant
    )
