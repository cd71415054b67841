"""`POST /v1/licenses/validate`'s common case, answered straight off the ASGI server.

Every running copy of the app calls validate, so its cost per request is the service's
capacity. Through the full stack, the framework's layers (two error middlewares, the
tracing middleware's URL check, FastAPI's own telemetry and body-limit layers, routing,
dependency solving, request-body validation) cost more than validate's own work. This
layer sits outermost and answers the common case itself, with the same answer, headers and
signature the full stack gives:

- a JSON body within the limit (declared by Content-Length) that parses as a
  `ValidateRequest`,
- within the rate limits,
- and a service that answers.

Anything else (no or a lying Content-Length, a body too big or malformed, a refusal by the
limiter, an error) goes down the full stack with the body replayed, so every error is
rendered by the one code that renders errors. A hit the limiter refused is not counted, so
the full stack's own check refuses it again without counting it twice.
"""

from __future__ import annotations

import time

import orjson
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.licensing.desktop import service
from tessera.licensing.desktop.routes import key_id_of
from tessera.licensing.desktop.schemas import ValidateRequest
from tessera.licensing.desktop.signature import HEADER, signature_header
from tessera.licensing.licenses import keyformat
from tessera.licensing.state import Licensing
from tessera.shared.http.context import reset_request_id, set_request_id
from tessera.shared.http.middleware import (
    REQUEST_ID_HEADER,
    header,
    request_id_for,
    security_headers,
)

PATH = "/v1/licenses/validate"


class ValidateFastPath:
    def __init__(self, app: ASGIApp, state: Licensing, *, hsts: bool) -> None:
        self.app = app
        self.state = state
        self.limit = state.settings.max_body_bytes
        self.headers = [(b"content-type", b"application/json"), *security_headers(hsts=hsts)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        content_type = header(scope, b"content-type") or b""
        if (
            declared is None
            or not declared.isdigit()
            or int(declared) > self.limit
            or not content_type.startswith(b"application/json")
        ):
            await self.app(scope, receive, send)
            return
        body, taken = await read_body(receive, int(declared))
        request_id = request_id_for(scope)
        token = set_request_id(request_id)
        try:
            answer = await self.answer(scope, body) if taken is None else None
            if answer is not None:
                await self.respond(send, answer, request_id)
                return
        finally:
            reset_request_id(token)
        await self.app(scope, replaying(body, taken, receive), send)

    async def answer(self, scope: Scope, body: bytes) -> bytes | None:
        """The encoded answer, or None to leave this request to the full stack."""
        state = self.state
        pool, ring, limiter = state.read_pool, state.ring, state.limiter
        if pool is None or ring is None or limiter is None:
            return None
        try:
            req = ValidateRequest.model_validate_json(body)
        except ValidationError:
            return None
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        key_hash = keyformat.lookup_hash(req.key)
        hits = ((state.per_ip, ip), (state.per_key, key_id_of(key_hash)))
        if limiter.hit(*hits):
            return None
        try:
            result = await service.validate(pool, state.cache, ring.signer, req, key_hash)
        except Exception:
            limiter.undo(*hits)  # the full stack counts this request itself
            return None  # and renders the error (a 503 problem, say)
        return orjson.dumps(result)

    async def respond(self, send: Send, body: bytes, request_id: str) -> None:
        ring = self.state.ring
        assert ring is not None
        signature = signature_header(ring.signer, "POST", PATH, body, time.time())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    *self.headers,
                    (b"content-length", str(len(body)).encode()),
                    (REQUEST_ID_HEADER, request_id.encode()),
                    (HEADER, signature),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive, declared: int) -> tuple[bytes, list[Message] | None]:
    """The body, when it arrives whole and no longer than declared; otherwise what was read
    (to replay) and the messages taken, which the full stack then judges."""
    chunks: list[bytes] = []
    size = 0
    taken: list[Message] = []
    while True:
        message = await receive()
        taken.append(message)
        if message["type"] != "http.request":
            return b"".join(chunks), taken
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if size > declared:
            return b"".join(chunks), taken
        if not message.get("more_body", False):
            return b"".join(chunks), None


def replaying(body: bytes, taken: list[Message] | None, receive: Receive) -> Receive:
    """A `receive` that gives the full stack what this layer already read, then the rest."""
    pending: list[Message] = (
        list(taken) if taken is not None else [{"type": "http.request", "body": body}]
    )

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
