"""`GET /.well-known/jwks.json`: the public keys that verify access tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from tessera.auth.context import AuthDep
from tessera.shared.http.openapi import JWKS_RESPONSE

router = APIRouter(tags=["tokens"])


@router.get("/.well-known/jwks.json", response_model=None, responses=JWKS_RESPONSE)
async def jwks(auth: AuthDep, response: Response) -> dict[str, Any]:
    # Cacheable for a minute: verifiers refetch on an unknown kid anyway.
    response.headers["cache-control"] = "public, max-age=60"
    return await auth.keyring.jwks()
