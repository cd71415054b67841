"""Access tokens: verify auth's short-lived EdDSA JWTs locally, against a cached JWKS.

Auth signs; every other service verifies here with no call per request. The JWKS is
fetched once and refreshed when a token names a `kid` it has not seen (key rotation) or
when the cache is older than `max_age` — but at most once per `min_refresh` interval, so a
flood of tokens with made-up kids cannot turn into a flood of JWKS fetches.

Claims (set by auth): `iss`, `aud`, `sub` (user id), `acc` (account id), `role`
(`customer` | `admin`), `sid` (session or device-grant id), `sel` (the seller's slug), `mod`
(`test` | `live`), `iat`, `exp`, `jti`.

The token names its seller by public slug, never by internal id; the verifier resolves the
slug through the process's seller directory (`SellerBook`, followed from JetStream), so
`Principal.tenant` is the seller the token was issued for. A token without `sel` (issued
before sellers) is the home seller's, live.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

import httpx
import jwt
from fastapi import Depends, Request

from tessera.shared.directory.sellers import SellerBook
from tessera.shared.http.problems import NotFound, Problem, ServiceUnavailable
from tessera.shared.sellers import HOME_LIVE, MODES, Tenant

ALGORITHMS = ["EdDSA"]
LEEWAY_SECONDS = 30


class Unauthorized(Problem):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str = "A valid access token is required.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="tessera"'})


class Forbidden(Problem):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the access token says."""

    user_id: UUID
    account_id: UUID
    role: Literal["customer", "admin"]
    session_id: str
    token_id: str
    # The seller and mode the token was issued for (docs/sellers.md).
    tenant: Tenant = HOME_LIVE

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class JwksCache:
    def __init__(
        self,
        jwks_url: str,
        *,
        max_age: float = 300.0,
        min_refresh: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.jwks_url = jwks_url
        self.max_age = max_age
        self.min_refresh = min_refresh
        self._client = client
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    def load(self, jwks: dict[str, Any]) -> None:
        keys = {}
        for data in jwks.get("keys", []):
            if data.get("kty") == "OKP" and data.get("crv") == "Ed25519" and data.get("kid"):
                keys[data["kid"]] = jwt.PyJWK.from_dict(data, algorithm="EdDSA")
        self._keys = keys
        self._fetched_at = time.monotonic()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        stale = time.monotonic() - self._fetched_at > self.max_age
        if kid not in self._keys or stale:
            await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < self.min_refresh and self._keys:
                return
            client = self._client or httpx.AsyncClient(timeout=2.0)
            try:
                response = await client.get(self.jwks_url)
                response.raise_for_status()
                self.load(response.json())
            except (httpx.HTTPError, ValueError):
                # Keep the keys we have: auth being briefly away must not log everyone out.
                self._fetched_at = time.monotonic() - self.max_age + self.min_refresh
            finally:
                if self._client is None:
                    await client.aclose()


class DirectoryLoading(ServiceUnavailable):
    slug = "directory-loading"
    title = "Starting"


class AccessTokenVerifier:
    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        sellers: SellerBook | None = None,
    ) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        # The process's seller directory; the service context hands it over when it builds
        # the verifier (tessera.shared.service). Without one, only tokens that name no
        # seller verify.
        self.sellers = sellers

    async def tenant_of(self, claims: dict[str, Any]) -> Tenant:
        """The seller and mode a token was issued for: `Unauthorized` for a seller that is
        unknown or suspended, `DirectoryLoading` (503) while the directory is replaying."""
        slug, mode = claims.get("sel"), claims.get("mod", "live")
        if mode not in MODES:
            raise Unauthorized()
        if slug is None:
            if mode != "live":
                raise Unauthorized()
            return HOME_LIVE
        if not isinstance(slug, str) or self.sellers is None:
            raise Unauthorized()
        entry = await self.sellers.find_slug(slug)
        if entry is None:
            if self.sellers.settling:
                raise DirectoryLoading("The seller directory is loading; try again shortly.")
            raise Unauthorized()
        if not entry.active:
            raise Unauthorized()
        return Tenant(entry.seller_id, mode)

    async def verify(self, token: str) -> Principal:
        """The token's principal, or `Unauthorized` for any defect (the same answer for
        every defect: expired, foreign key, tampered, wrong audience, malformed)."""
        claims = await self.claims(token, audience=self.audience)
        try:
            return Principal(
                user_id=UUID(claims["sub"]),
                account_id=UUID(claims["acc"]),
                role=claims["role"] if claims.get("role") == "admin" else "customer",
                session_id=str(claims.get("sid", "")),
                token_id=str(claims.get("jti", "")),
                tenant=await self.tenant_of(claims),
            )
        except (KeyError, ValueError, TypeError):
            raise Unauthorized() from None

    async def claims(self, token: str, *, audience: str) -> dict[str, Any]:
        """The claims of a token auth signed for `audience`, or `Unauthorized`: the one
        check behind customer tokens and members' seller-session tokens alike."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized() from None
        if header.get("alg") not in ALGORITHMS or not isinstance(header.get("kid"), str):
            raise Unauthorized()
        key = await self.jwks.key(header["kid"])
        if key is None:
            raise Unauthorized()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                audience=audience,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError):
            raise Unauthorized() from None
        return claims


def bearer_token(request: Request) -> str:
    # The raw ASGI headers (names arrive lower-cased), not `request.headers`: building that
    # mapping for one lookup cost every keyed request about a µs.
    headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    for name, raw in headers:
        if name == b"authorization":
            scheme, _, token = raw.decode("latin-1").partition(" ")
            break
    else:
        raise Unauthorized()
    if scheme.lower() != "bearer" or not token or len(token) > 4096:
        raise Unauthorized()
    return token.strip()


async def current_principal(request: Request) -> Principal:
    # The service's context (service.py) holds the one verifier of the process.
    verifier: AccessTokenVerifier = request.app.state.context.token_verifier
    return await verifier.verify(bearer_token(request))


async def current_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    # An admin route answers a non-admin with 404: it does not confirm the route exists.
    if not principal.is_admin:
        raise NotFound()
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
AdminDep = Annotated[Principal, Depends(current_admin)]
