"""`POST /v1/licenses/validate`'s common case, answered straight off the ASGI server.

Every running copy of the app calls validate, so its cost per request is the service's
capacity. This layer (the kernel's `FastPath`) sits outermost and answers the common case
itself, with the same answer, headers and signature the full stack gives:

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
from starlette.types import ASGIApp, Scope

from tessera.licensing.desktop import service
from tessera.licensing.desktop.routes import key_id_of
from tessera.licensing.desktop.schemas import ValidateRequest
from tessera.licensing.desktop.signature import HEADER, signature_header
from tessera.licensing.licenses import keyformat
from tessera.licensing.state import Licensing
from tessera.shared.http.context import client_ip
from tessera.shared.http.fast_path import Answer, FastPath

PATH = "/v1/licenses/validate"


class ValidateFastPath(FastPath):
    path = PATH

    def __init__(self, app: ASGIApp, state: Licensing, *, hsts: bool) -> None:
        super().__init__(app, max_body_bytes=state.settings.max_body_bytes, hsts=hsts)
        self.state = state

    async def answer(self, scope: Scope, body: bytes) -> Answer | None:
        state = self.state
        pool, ring, limiter = state.read_pool, state.ring, state.limiter
        if pool is None or ring is None or limiter is None:
            return None
        try:
            req = ValidateRequest.model_validate_json(body)
        except ValidationError:
            return None
        key_hash = keyformat.lookup_hash(req.key)
        hits = ((state.per_ip, client_ip(scope)), (state.per_key, key_id_of(key_hash)))
        if not limiter.hit(*hits).allowed:
            return None
        try:
            result = await service.validate(pool, state.cache, ring.signer, req, key_hash)
        except Exception:
            limiter.undo(*hits)  # the full stack counts this request itself
            return None  # and renders the error (a 503 problem, say)
        encoded = orjson.dumps(result)
        signature = signature_header(ring.signer, "POST", PATH, encoded, time.time())
        return Answer(encoded, headers=[(HEADER, signature)])
