"""The online half: call the desktop API, check every answer's signature, nonce and date,
and keep the lease for offline use."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from tessera.licensing_client.jose import JoseError, b64url, b64url_decode, keys_by_kid
from tessera.licensing_client.lease import SKEW_SECONDS, Lease, LeaseError, verify_lease
from tessera.licensing_client.store import LeaseStore

SIGNATURE_HEADER = "tessera-signature"
VERSION = "tessera-response-v1"
SIGNATURE = re.compile(r'^kid="([^"]+)", created=(\d+), sig="([A-Za-z0-9_-]+)"$')


class ResponseRejected(Exception):
    """The answer did not come from licensing (bad or missing signature), or is stale or
    replayed (date outside the skew, nonce not ours)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    lease: Lease | None = None

    @property
    def code(self) -> str:
        return str(self.body.get("code", ""))

    @property
    def valid(self) -> bool:
        return bool(self.body.get("valid"))


def signing_input(method: str, path: str, created: int, body: bytes) -> bytes:
    digest = b64url(hashlib.sha256(body).digest())
    return f"{VERSION}\n{method}\n{path}\n{created}\n{digest}".encode()


def verify_response(
    response: httpx.Response, jwks: dict[str, Any], now: float, skew: int = SKEW_SECONDS
) -> int:
    """The signed `created` time of a genuine answer; ResponseRejected otherwise."""
    match = SIGNATURE.match(response.headers.get(SIGNATURE_HEADER, ""))
    if match is None:
        raise ResponseRejected("missing or malformed signature header")
    kid, created, sig = match.group(1), int(match.group(2)), match.group(3)
    key = keys_by_kid(jwks).get(kid)
    if key is None:
        raise ResponseRejected("signed by an unknown key")
    message = signing_input(
        response.request.method, response.request.url.path, created, response.content
    )
    try:
        key.verify(message, b64url_decode(sig))
    except Exception:
        raise ResponseRejected("bad signature") from None
    if abs(created - now) > skew:
        raise ResponseRejected("answer dated outside the allowed clock skew")
    return created


class LicensingClient:
    """`async with LicensingClient(url, store) as c: await c.validate(key, fingerprint)`."""

    def __init__(
        self, base_url: str, store: LeaseStore, *, http: httpx.AsyncClient | None = None
    ) -> None:
        self.store = store
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=10.0)
        self._jwks: dict[str, Any] = {"keys": []}

    async def __aenter__(self) -> LicensingClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.aclose()

    async def public_keys(self) -> dict[str, Any]:
        response = await self._http.get("/v1/public-keys")
        response.raise_for_status()
        jwks: dict[str, Any] = response.json()
        # The JWKS answer is signed by a key it lists; check that before trusting it.
        verify_response(response, jwks, time.time())
        self._jwks = jwks
        return jwks

    async def _call(self, path: str, payload: dict[str, Any], headers: dict[str, str]) -> Answer:
        nonce = secrets.token_urlsafe(16)
        response = await self._http.post(path, json={**payload, "nonce": nonce}, headers=headers)
        try:
            created = verify_response(response, self._jwks, time.time())
        except ResponseRejected:
            await self.public_keys()  # maybe rotated: refresh once, then decide
            created = verify_response(response, self._jwks, time.time())
        body: dict[str, Any] = response.json()
        if response.status_code == 200 and body.get("nonce") != nonce:
            raise ResponseRejected("nonce not echoed: a replayed answer")
        lease = None
        token = body.get("lease")
        if response.status_code == 200 and body.get("valid") and isinstance(token, str):
            try:
                lease = verify_lease(
                    token, self._jwks, fingerprint=payload["fingerprint"], now=time.time()
                )
            except LeaseError as error:
                raise ResponseRejected(f"lease rejected: {error.code}") from None
            self.store.save(token, self._jwks, max(float(created), time.time()))
        return Answer(response.status_code, body, lease)

    async def activate(
        self, fingerprint: str, *, key: str | None = None, token: str | None = None, **machine: str
    ) -> Answer:
        """Activate with a license key, or with a device-flow access token (`token`)."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        payload: dict[str, Any] = {"fingerprint": fingerprint, **machine}
        if key is not None:
            payload["key"] = key
        return await self._call("/v1/licenses/activate", payload, headers)

    async def validate(self, key: str, fingerprint: str) -> Answer:
        return await self._call(
            "/v1/licenses/validate", {"key": key, "fingerprint": fingerprint}, {}
        )

    async def deactivate(self, key: str, fingerprint: str) -> Answer:
        answer = await self._call(
            "/v1/licenses/deactivate", {"key": key, "fingerprint": fingerprint}, {}
        )
        if answer.code == "DEACTIVATED":
            self.store.clear()
        return answer

    def offline(self, fingerprint: str, now: float | None = None) -> Lease:
        """The cached lease, if it still holds on this machine now (no network)."""
        return self.store.check(fingerprint, time.time() if now is None else now)


__all__ = ["Answer", "JoseError", "LicensingClient", "ResponseRejected", "verify_response"]
