"""Device flow over HTTP.

`/v1/device/authorize` and `/v1/device/token` speak OAuth (form bodies, RFC 6749 §5.2
errors) to the desktop app; `/v1/device/lookup` and `/v1/device/approve` serve the
portal's approval page for a signed-in person.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tessera.auth.context import AuthDep
from tessera.auth.device import service
from tessera.auth.device.errors import OAuthError
from tessera.auth.device.schemas import (
    AuthorizeForm,
    Decided,
    Decision,
    DeviceAuthorization,
    PendingGrant,
    TokenForm,
    TokenResponse,
    UserCodeEntry,
    form_body,
    oauth_responses,
)
from tessera.auth.requests import client_ip
from tessera.shared.tokens import PrincipalDep

router = APIRouter(prefix="/v1/device", tags=["device"])

NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
MAX_FORM_BYTES = 4096


async def form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body; a repeated parameter is an error
    (RFC 6749 §3.1)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        raise OAuthError("invalid_request", "Send application/x-www-form-urlencoded.")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "Body too large.")
    try:
        parsed = parse_qs(body.decode(), keep_blank_values=False, strict_parsing=False)
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "Body is not UTF-8.") from None
    if any(len(v) > 1 for v in parsed.values()):
        raise OAuthError("invalid_request", "A parameter was repeated.")
    return {k: v[0] for k, v in parsed.items()}


def oauth_error(error: OAuthError) -> JSONResponse:
    body = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    return JSONResponse(body, status_code=error.status, headers=NO_STORE)


def required(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value or len(value) > 512:
        raise OAuthError("invalid_request", f"`{name}` is required.")
    return value


@router.post(
    "/authorize",
    response_model=None,
    responses=oauth_responses(DeviceAuthorization),
    openapi_extra=form_body(AuthorizeForm),
)
async def authorize(request: Request, auth: AuthDep) -> JSONResponse:
    try:
        params = await form(request)
        result = await service.authorize(
            auth,
            required(params, "client_id"),
            params.get("client_version", ""),
            ip=client_ip(request),
        )
    except OAuthError as error:
        return oauth_error(error)
    return JSONResponse(result.model_dump(), headers=NO_STORE)


@router.post(
    "/token",
    response_model=None,
    responses=oauth_responses(TokenResponse),
    openapi_extra=form_body(TokenForm),
)
async def token(request: Request, auth: AuthDep) -> JSONResponse:
    ip = client_ip(request)
    await auth.limiter.enforce(auth.settings.rl_device_token_per_ip, "device-token-ip", ip)
    try:
        params = await form(request)
        grant_type = required(params, "grant_type")
        client_id = required(params, "client_id")
        if grant_type == service.DEVICE_CODE_GRANT:
            result = await service.exchange_device_code(
                auth, required(params, "device_code"), client_id, ip=ip
            )
        elif grant_type == "refresh_token":
            result = await service.refresh(
                auth, required(params, "refresh_token"), client_id, ip=ip
            )
        else:
            raise OAuthError("unsupported_grant_type")
    except OAuthError as error:
        return oauth_error(error)
    return JSONResponse(result.model_dump(), headers=NO_STORE)


@router.post("/lookup")
async def lookup(
    body: UserCodeEntry, auth: AuthDep, principal: PrincipalDep, request: Request
) -> PendingGrant:
    return await service.lookup(auth, principal, body.user_code, ip=client_ip(request))


@router.post("/approve")
async def approve(
    body: Decision, auth: AuthDep, principal: PrincipalDep, request: Request
) -> Decided:
    await service.decide(auth, principal, body.user_code, body.decision, ip=client_ip(request))
    return Decided(decision=body.decision)
