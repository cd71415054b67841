"""One hot `POST` route's common case, answered straight off the ASGI server.

On the hottest routes (licensing's validate, billing's Stripe webhook) the framework's
layers (two error middlewares, the tracing middleware, FastAPI's own body-limit and
telemetry layers, routing, dependency solving, request and response validation) cost more
than the route's own work. A `FastPath` sits outermost and answers the common case
itself, with the answer, security headers and request id the full stack would give:

- a body of the expected content type within the limit (declared by Content-Length),
- that the subclass's `answer` accepts (it returns None for anything else).

Anything else (no or a lying Content-Length, a body too big, a body `answer` declines, an
error) goes down the full stack with the body replayed, so every error is rendered by the
one code that renders errors.

A fast path is put in front of the app by the kernel (`ServiceSpec.fast_path`, installed by
`create_service_app` with `ServiceApp.put_in_front`): an ordinary ASGI layer around the whole
app, outside the middleware stack that FastAPI and the instrumentation build.

Tracing follows the one policy of the whole app: a traced route (`traced=True`, the
default; a service excludes a route from tracing with `ServiceSpec.untraced_paths`, and
then says `traced=False` here too) gets the server span the tracing middleware would have
made, only when a tracer provider is installed (telemetry is collecting) or the caller sent
a trace context, so a trace that starts here (a Stripe delivery) is not cut.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from opentelemetry import propagate, trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.shared.http.context import reset_request_id, set_request_id
from tessera.shared.http.middleware import (
    REQUEST_ID_HEADER,
    header,
    request_id_for,
    security_headers,
)
from tessera.shared.metrics import HTTP_SERVER_DURATION
from tessera.shared.telemetry import collecting, metering

tracer = trace.get_tracer("tessera.http.fast_path")
log = logging.getLogger("tessera.http")


@dataclass(frozen=True)
class Answer:
    body: bytes
    status: int = 200
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class FastPath:
    """Subclasses set `path` and implement `answer`."""

    path: str = ""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        hsts: bool,
        content_type: bytes = b"application/json",
        traced: bool = True,
    ) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.content_type = content_type
        self.headers = [(b"content-type", b"application/json"), *security_headers(hsts=hsts)]
        self.tracing = traced
        self.span_name = f"POST {self.path}"

    async def answer(self, scope: Scope, body: bytes) -> Answer | None:
        """The answer, or None to leave this request to the full stack."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        content_type = header(scope, b"content-type") or b""
        if (
            declared is None
            or not declared.isdigit()
            or int(declared) > self.limit
            or not content_type.startswith(self.content_type)
        ):
            await self.app(scope, receive, send)
            return
        body, taken = await read_body(receive, int(declared))
        if taken is None and await self.answered(scope, body, send):
            return
        await self.app(scope, replaying(body, taken, receive), send)

    async def answered(self, scope: Scope, body: bytes, send: Send) -> bool:
        request_id = request_id_for(scope)
        token = set_request_id(request_id)
        started = time.perf_counter() if metering() else 0.0
        try:
            if not self.traced(scope):
                answer = await self.safe_answer(scope, body)
            else:
                with tracer.start_as_current_span(
                    self.span_name,
                    context=propagate.extract(dict_of_headers(scope)),
                    kind=trace.SpanKind.SERVER,
                    attributes={
                        "http.request.method": "POST",
                        "http.route": self.path,
                        "url.path": self.path,
                        "url.scheme": scope.get("scheme", "http"),
                    },
                ) as span:
                    answer = await self.safe_answer(scope, body)
                    if answer is None:
                        # The full stack's own server span follows, with the answer.
                        span.set_attribute("tessera.fast_path.handed_on", True)
                    else:
                        span.set_attribute("http.response.status_code", answer.status)
            if answer is None:
                return False
            await self.respond(send, answer, request_id)
            if started:
                # What the instrumentation records for the requests it sees (this one it
                # does not: it never reached the stack).
                HTTP_SERVER_DURATION.record(
                    time.perf_counter() - started,
                    {
                        "http.request.method": "POST",
                        "http.route": self.path,
                        "http.response.status_code": answer.status,
                        "url.scheme": scope.get("scheme", "http"),
                    },
                )
            return True
        finally:
            reset_request_id(token)

    async def safe_answer(self, scope: Scope, body: bytes) -> Answer | None:
        """`answer`, or None when it fails: the full stack then answers (and renders the
        error, if there is one, the way every error is rendered)."""
        try:
            return await self.answer(scope, body)
        except Exception:
            log.exception("http.fast_path.failed", extra={"path": self.path})
            return None

    def traced(self, scope: Scope) -> bool:
        """Spans cost more than these routes' own work: only for a traced route, and only
        when someone collects them or the caller is tracing."""
        return self.tracing and (collecting() or header(scope, b"traceparent") is not None)

    async def respond(self, send: Send, answer: Answer, request_id: str) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    *self.headers,
                    (b"content-length", str(len(answer.body)).encode()),
                    (REQUEST_ID_HEADER, request_id.encode()),
                    *answer.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})


def dict_of_headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}


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
