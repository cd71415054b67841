"""Signed responses: every answer of the desktop API carries

    Tessera-Signature: kid="<kid>", created=<unix seconds>, sig="<base64url Ed25519>"

over `tessera-response-v1 \\n METHOD \\n path \\n created \\n base64url(sha256(body))`, made with
the current lease-signing key (published in /v1/public-keys). With the `nonce` the app sent
(echoed in the body, so covered by the digest) it can reject a spoofed or replayed answer.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.shared.keys import Signer, b64url

HEADER = b"tessera-signature"
VERSION = "tessera-response-v1"


def signing_input(method: str, path: str, created: int, body: bytes) -> bytes:
    digest = b64url(hashlib.sha256(body).digest())
    return f"{VERSION}\n{method}\n{path}\n{created}\n{digest}".encode()


def signature_header(signer: Signer, method: str, path: str, body: bytes, now: float) -> bytes:
    created = int(now)
    sig = b64url(signer.sign(signing_input(method, path, created, body)))
    return f'kid="{signer.kid}", created={created}, sig="{sig}"'.encode()


class SignedResponses:
    """Pure ASGI: buffers the (small) answers under `prefixes` and adds the signature header,
    problem+json errors (429, 422, 413) included; an answer that carries the header already
    (validate's, signed by desktop/validate.py) passes as it is."""

    def __init__(
        self, app: ASGIApp, signer: Callable[[], Signer | None], prefixes: tuple[str, ...]
    ) -> None:
        self.app = app
        self.signer = signer
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if any(name == HEADER for name, _ in message.get("headers", ())):
                    await send(message)  # signed already (validate signs its own answers)
                    return
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                # Also a signed answer's body, passed on as it comes.
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            signer = self.signer()
            if signer is not None:
                value = signature_header(signer, scope["method"], path, body, time.time())
                start["headers"] = [*start.get("headers", []), (HEADER, value)]
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered)
