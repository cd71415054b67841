"""The online half: call the desktop API, check every answer's signature, nonce and date
against lease keys that a pinned root vouched for, and keep the lease for offline use."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from nacl.signing import VerifyKey

from tessera.licensing_client.jose import (
    JoseError,
    b64url,
    b64url_decode,
    keys_by_kid,
    verify_signature,
)
from tessera.licensing_client.lease import SKEW_SECONDS, Lease, LeaseError, verify_lease
from tessera.licensing_client.store import LeaseStore
from tessera.licensing_client.trust import KeySet, KeySetError, Roots, pinned_jwks

SIGNATURE_HEADER = "tessera-signature"
VERSION = "tessera-response-v1"
SIGNATURE = re.compile(r'^kid="([^"]+)", created=(\d+), sig="([A-Za-z0-9_-]+)"$')


class ResponseRejected(Exception):
    """The answer did not come from licensing (bad or missing signature, a key no pinned
    root vouches for, a key set no pinned root signed), or is stale or replayed (date
    outside the skew, nonce not ours)."""


class UnknownKey(ResponseRejected):
    """Signed with a kid the trusted key set does not list (perhaps a rotation: the one case
    where fetching the root-signed key set again can help)."""


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
    response: httpx.Response, keys: dict[str, VerifyKey], now: float, skew: int = SKEW_SECONDS
) -> int:
    """The signed `created` time of a genuine answer; ResponseRejected otherwise."""
    match = SIGNATURE.match(response.headers.get(SIGNATURE_HEADER, ""))
    if match is None:
        raise ResponseRejected("missing or malformed signature header")
    kid, created, sig = match.group(1), int(match.group(2)), match.group(3)
    key = keys.get(kid)
    if key is None:
        raise UnknownKey("signed by a key no pinned root vouches for")
    message = signing_input(
        response.request.method, response.request.url.path, created, response.content
    )
    try:
        signature = b64url_decode(sig)
    except JoseError:
        signature = b""
    if not verify_signature(key, message, signature):
        raise ResponseRejected("bad signature")
    if abs(created - now) > skew:
        raise ResponseRejected("answer dated outside the allowed clock skew")
    return created


class LicensingClient:
    """`async with LicensingClient(url, store, roots=[PIN]) as c: await c.validate(key, fp)`.

    `roots`: the seller's root public keys (base64url Ed25519), pinned in the app at build
    time; lease keys are taken only from a key set one of them signed. Or `lease_keys`: a
    JWKS of lease keys pinned directly (no rotation without a new build). One is required."""

    def __init__(
        self,
        base_url: str,
        store: LeaseStore,
        *,
        roots: Iterable[str] = (),
        lease_keys: dict[str, Any] | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        pins = list(roots)
        if bool(pins) == (lease_keys is not None):
            raise ValueError("pin either root public keys (roots=) or lease keys (lease_keys=)")
        self.store = store
        self._roots = Roots(pins) if pins else None
        self._pinned = pinned_jwks(lease_keys) if lease_keys is not None else None
        self._key_set: KeySet | None = None
        # Closed on exit only if made here: a caller's client stays the caller's.
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=10.0)

    @property
    def _jwks(self) -> dict[str, Any]:
        if self._pinned is not None:
            return self._pinned
        return self._key_set.jwks if self._key_set is not None else {"keys": []}

    @property
    def key_set(self) -> KeySet | None:
        """The key set accepted last (None before the first fetch, or with pinned keys)."""
        return self._key_set

    async def __aenter__(self) -> LicensingClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def public_keys(self) -> dict[str, Any]:
        """Fetch the key set and accept it only if a pinned root signed it, it has not
        expired, and its version is not lower than any this machine accepted before. Returns
        the JWKS of the lease keys it vouches for (the pinned JWKS when keys are pinned)."""
        if self._roots is None:
            return self._jwks
        response = await self._http.get("/v1/public-keys")
        if response.status_code != 200:
            raise ResponseRejected(f"public keys: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ResponseRejected("public keys: not JSON") from None
        tokens = body.get("key_sets") if isinstance(body, dict) else None
        floor = max(self.store.accepted_version(), self._key_set.version if self._key_set else 0)
        try:
            key_set = self._roots.verify(tokens, now=time.time(), min_version=floor)
        except KeySetError as error:
            raise ResponseRejected(f"key set rejected: {error.code}") from None
        self._key_set = key_set
        return key_set.jwks

    def _vouch(self, token: str | None) -> tuple[dict[str, Any], float]:
        """For the store: the lease keys a cached key set vouches for, re-verified against
        the pinned roots (never trusted because it is in the file)."""
        if self._pinned is not None:
            return self._pinned, float("inf")
        assert self._roots is not None
        try:
            key_set = self._roots.verify(token, now=None)
        except KeySetError as error:
            raise LeaseError("CACHE_TAMPERED", f"key set {error.code}") from None
        return key_set.jwks, float(key_set.expires_at)

    async def _call(self, path: str, payload: dict[str, Any], headers: dict[str, str]) -> Answer:
        nonce = secrets.token_urlsafe(16)
        response = await self._http.post(path, json={**payload, "nonce": nonce}, headers=headers)
        try:
            created = verify_response(response, keys_by_kid(self._jwks), time.time())
        except UnknownKey:
            if self._roots is None:
                raise
            # Maybe rotated: the only refetch, and what it brings is trusted only if a pinned
            # root signed it. A bad signature by a known key is never a reason to refetch.
            await self.public_keys()
            created = verify_response(response, keys_by_kid(self._jwks), time.time())
        try:
            body = response.json()
        except ValueError:
            raise ResponseRejected("answer is not JSON") from None
        if not isinstance(body, dict):
            raise ResponseRejected("answer is not a JSON object")
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
            key_set = self._key_set
            self.store.save(
                lease,
                key_set.token if key_set and self._roots else None,
                key_set.version if key_set and self._roots else 0,
                created,
            )
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
        return self.store.check(fingerprint, time.time() if now is None else now, self._vouch)


__all__ = [
    "Answer",
    "JoseError",
    "LicensingClient",
    "ResponseRejected",
    "UnknownKey",
    "verify_response",
]
