"""Device-flow requests and responses (RFC 8628 field names)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from tessera.auth.device.store import Grant


class DeviceAuthorization(BaseModel):
    device_code: str
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a type, not a secret
    expires_in: int
    refresh_token: str


class UserCodeEntry(BaseModel):
    user_code: str = Field(min_length=8, max_length=12)


class Decision(UserCodeEntry):
    decision: Literal["approve", "deny"]


class PendingGrant(BaseModel):
    """What the approval page shows before the person presses Approve or Deny."""

    client_id: str
    client_name: str
    client_version: str | None
    ip: str
    requested_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, grant: Grant, client_name: str) -> PendingGrant:
        return cls(
            client_id=grant.client_id,
            client_name=client_name,
            client_version=grant.client_version or None,
            ip=grant.ip,
            requested_at=datetime.fromtimestamp(grant.created_at, UTC),
            expires_at=datetime.fromtimestamp(grant.expires_at, UTC),
        )


class Decided(BaseModel):
    decision: Literal["approve", "deny"]


# --- the OAuth endpoints' wire format, for the OpenAPI document (RFC 8628, RFC 6749) ------
# The routes read these bodies themselves (form.py's rules: one value per name, 4 KiB).

FORM = "application/x-www-form-urlencoded"


class AuthorizeForm(BaseModel):
    """`POST /v1/device/authorize` (RFC 8628 §3.1)."""

    client_id: str = Field(max_length=512, description="The desktop app's registered id.")
    client_version: str | None = Field(None, max_length=512, description="Shown on approval.")


class TokenForm(BaseModel):
    """`POST /v1/device/token`: poll with the device code (RFC 8628 §3.4), or refresh
    (RFC 6749 §6)."""

    grant_type: Literal["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]
    client_id: str = Field(max_length=512)
    device_code: str | None = Field(
        None, max_length=512, description="Required with the device_code grant."
    )
    refresh_token: str | None = Field(
        None, max_length=512, description="Required with the refresh_token grant."
    )


class OAuthErrorBody(BaseModel):
    """RFC 6749 §5.2 error (these two endpoints speak OAuth, not problem+json). While the
    person has not decided, polling answers `authorization_pending` or `slow_down`
    (RFC 8628 §3.5)."""

    error: Literal[
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unsupported_grant_type",
        "authorization_pending",
        "slow_down",
        "access_denied",
        "expired_token",
    ]
    error_description: str | None = None


def form_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a form body the route parses itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {FORM: {"schema": model.model_json_schema()}},
        }
    }


def oauth_responses(success: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"model": success, "description": "Granted (sent with `cache-control: no-store`)."},
        400: {"model": OAuthErrorBody, "description": "An OAuth error (RFC 6749 §5.2)."},
        401: {"model": OAuthErrorBody, "description": "`invalid_client`."},
    }
