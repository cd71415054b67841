"""The HTTP kernel in a bare FastAPI app: body limits, problem+json, request ids, headers."""

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.requests import Request as StarletteRequest

from tessera.shared.http.context import client_ip
from tessera.shared.http.middleware import BodyLimitMiddleware, RequestContextMiddleware
from tessera.shared.http.problems import Problem, RateLimited, install_problem_handlers

LIMIT = 1024


class Thing(BaseModel):
    name: str
    count: int


class ThingTaken(Problem):
    status = 409
    slug = "thing-taken"
    title = "Thing already taken"


def kernel_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/things")
    async def create(thing: Thing) -> dict[str, str]:
        if thing.name == "taken":
            raise ThingTaken("That name is taken.", name=thing.name)
        return {"name": thing.name}

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.get("/limited")
    async def limited() -> None:
        raise RateLimited(7)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret database password in a stack trace")

    app.add_middleware(BodyLimitMiddleware, limit=LIMIT)
    app.add_middleware(RequestContextMiddleware)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=kernel_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_a_declared_oversized_body_is_refused_before_reading(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/raw", content=b"x" * (LIMIT + 1))
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("payload-too-large")


async def test_a_streamed_body_without_length_is_counted(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"y" * 512

    r = await client.post("/raw", content=chunks())
    assert "content-length" not in r.request.headers
    assert r.status_code == 413


async def test_a_lying_content_length_does_not_get_past_the_limit() -> None:
    app = kernel_app()
    sent: list[dict[str, object]] = []
    body = b"z" * (LIMIT * 4)
    chunks = [body[i : i + 256] for i in range(0, len(body), 256)]

    async def receive() -> dict[str, object]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/raw",
        "raw_path": b"/raw",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", b"10")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413


async def test_a_body_within_the_limit_passes(client: httpx.AsyncClient) -> None:
    r = await client.post("/raw", content=b"x" * LIMIT)
    assert r.status_code == 200
    assert r.json() == {"size": LIMIT}


async def test_malformed_json_is_a_400_problem(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/things", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["type"].endswith("malformed-body")


async def test_a_wrong_type_is_a_422_problem_that_does_not_echo_input(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/things", json={"name": "sk_live_secret", "count": "many"})
    assert r.status_code == 422
    body = r.json()
    assert body["type"].endswith("validation-failed")
    assert body["errors"][0]["loc"] == ["body", "count"]
    assert "sk_live_secret" not in r.text and "many" not in r.text


async def test_a_domain_error_renders_its_own_problem(client: httpx.AsyncClient) -> None:
    r = await client.post("/things", json={"name": "taken", "count": 1})
    assert r.status_code == 409
    assert r.json() == {
        "type": "urn:tessera:problem:thing-taken",
        "title": "Thing already taken",
        "status": 409,
        "detail": "That name is taken.",
        "request_id": r.headers["x-request-id"],
        "name": "taken",
    }


async def test_a_rate_limit_is_one_429_problem_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/limited")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert r.json() == {
        "type": "urn:tessera:problem:rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": "Too many requests; try again later.",
        "request_id": r.headers["x-request-id"],
        "retry_after": 7,
    }


async def test_an_unexpected_error_is_a_500_that_leaks_nothing(client: httpx.AsyncClient) -> None:
    r = await client.get("/boom")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert "password" not in r.text and "Traceback" not in r.text
    assert r.json()["request_id"] == r.headers["x-request-id"]


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    r = await client.get("/nowhere")
    assert (r.status_code, r.json()["type"]) == (404, "urn:tessera:problem:not-found")
    r = await client.get("/things")
    assert r.status_code == 405
    assert r.headers["content-type"] == "application/problem+json"


async def test_a_safe_request_id_is_kept_and_an_unsafe_one_replaced(
    client: httpx.AsyncClient,
) -> None:
    kept = await client.get("/nowhere", headers={"x-request-id": "abc-123-def-456"})
    assert kept.headers["x-request-id"] == "abc-123-def-456"
    replaced = await client.get("/nowhere", headers={"x-request-id": "<script>alert(1)</script>"})
    assert replaced.headers["x-request-id"] != "<script>alert(1)</script>"
    assert len(replaced.headers["x-request-id"]) == 24


async def test_security_headers_are_on_every_response(client: httpx.AsyncClient) -> None:
    r = await client.get("/nowhere")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["referrer-policy"] == "no-referrer"


def test_the_client_ip_rule_reads_a_request_and_a_bare_scope_alike() -> None:
    scope = {"type": "http", "client": ("203.0.113.9", 5123), "headers": []}
    assert client_ip(scope) == "203.0.113.9"
    assert client_ip(StarletteRequest(scope)) == "203.0.113.9"
    assert client_ip({**scope, "client": ["198.51.100.4", 1]}) == "198.51.100.4"
    assert client_ip({"type": "http", "client": None}) == "unknown"
    assert client_ip(StarletteRequest({"type": "http", "headers": []})) == "unknown"


def test_nothing_reads_the_client_address_by_hand() -> None:
    """One rule for the caller's address (`client_ip`, after the forwarded-header rule):
    a route or fast path that reads the peer itself would bypass it."""
    root = Path(__file__).resolve().parents[2]
    by_hand = re.compile(r"""\brequest\.client\b|\[["']client["']\]|\.get\(["']client["']""")
    sources = [*root.glob("shared/src/**/*.py"), *root.glob("services/*/src/**/*.py")]
    assert len(sources) > 50
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for path in sources
        if path.name != "context.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if by_hand.search(line)
    ]
    assert offenders == []
