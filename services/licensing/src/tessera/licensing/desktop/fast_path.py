"""`POST /v1/licenses/validate`'s (and `heartbeat`'s) common case, answered straight off
the ASGI server.

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

from pydantic import ValidationError
from starlette.types import ASGIApp, Scope

from tessera.licensing.context import Licensing
from tessera.licensing.desktop import validate
from tessera.licensing.desktop.schemas import HeartbeatRequest, ValidateRequest
from tessera.licensing.desktop.signature import HEADER
from tessera.shared.http.context import client_ip
from tessera.shared.http.fast_path import Answer, FastPath
from tessera.shared.http.problems import Problem


class ValidateFastPath(FastPath):
    path = validate.PATH

    def __init__(self, app: ASGIApp, licensing: Licensing, *, hsts: bool, traced: bool) -> None:
        super().__init__(
            app, max_body_bytes=licensing.settings.max_body_bytes, hsts=hsts, traced=traced
        )
        self.licensing = licensing

    async def answer(self, scope: Scope, body: bytes) -> Answer | None:
        try:
            signed = await self.signed(scope, body)
        except (ValidationError, Problem):
            # Malformed, refused by the limiter (nothing counted) or not ready (a 503): the
            # full stack renders it. Any other error is logged by `safe_answer` first.
            return None
        return Answer(signed.body, headers=[(HEADER, signed.signature)])

    async def signed(self, scope: Scope, body: bytes) -> validate.Signed:
        req = ValidateRequest.model_validate_json(body)
        return await validate.validate(self.licensing, req, client_ip(scope), give_back=True)


class HeartbeatFastPath(ValidateFastPath):
    """The heartbeat's common case, in front the same way (it is as hot as validate)."""

    path = validate.HEARTBEAT_PATH

    async def signed(self, scope: Scope, body: bytes) -> validate.Signed:
        req = HeartbeatRequest.model_validate_json(body)
        return await validate.heartbeat(self.licensing, req, client_ip(scope), give_back=True)
