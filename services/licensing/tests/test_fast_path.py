"""validate's fast path answers exactly what the full stack answers, and leaves everything
else (errors, limits, odd requests) to the full stack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from licensing_factories import Harness  # type: ignore[import-not-found]
from test_desktop import a_license, activate, jwks, verify_lease, verify_response  # type: ignore[import-not-found]

from tessera.licensing.desktop.fast_path import ValidateFastPath
from tessera.shared.http.fast_path import FastPath

VARYING = {"date", "x-request-id", "tessera-signature", "content-length"}


async def chunked(body: bytes) -> AsyncIterator[bytes]:
    yield body  # no Content-Length: the fast path leaves such a request to the full stack


async def post(harness: Harness, body: bytes, *, stream: bool, **headers: str) -> httpx.Response:
    content: Any = chunked(body) if stream else body
    response: httpx.Response = await harness.http.post(
        "/v1/licenses/validate",
        content=content,
        headers={"content-type": "application/json", **headers},
    )
    return response


async def test_the_fast_path_and_the_full_stack_give_the_same_answer(harness: Harness) -> None:
    (key,) = await a_license(harness)
    await activate(harness, key, "machine-fast-0001")
    body = f'{{"key":"{key}","fingerprint":"machine-fast-0001","nonce":"n1"}}'.encode()
    fast = await post(harness, body, stream=False, **{"x-request-id": "caller-id-123"})
    assert isinstance(harness.app.front, ValidateFastPath)
    full = await post(harness, body, stream=True)
    assert fast.status_code == full.status_code == 200
    keys = await jwks(harness)
    for response in (fast, full):
        verify_response(response, keys)
        verify_lease(response.json()["lease"], keys)
    assert fast.headers["x-request-id"] == "caller-id-123"
    same_headers = {k: v for k, v in fast.headers.items() if k not in VARYING}
    assert same_headers == {k: v for k, v in full.headers.items() if k not in VARYING}
    assert "x-content-type-options" in same_headers
    varying = {"server_time", "lease", "lease_expires_at"}
    assert {k: v for k, v in fast.json().items() if k not in varying} == {
        k: v for k, v in full.json().items() if k not in varying
    }


async def test_what_the_fast_path_does_not_answer_gets_the_full_stacks_error(
    harness: Harness,
) -> None:
    keys = await jwks(harness)
    not_json = await post(harness, b'{"key": 1', stream=False)
    assert not_json.status_code == 400
    wrong_type = await harness.http.post(
        "/v1/licenses/validate",
        content=b'{"key":"AAAAA-AAAAA-AAAAA-AAAAA-AAAAA","fingerprint":"machine-fast-0001"}',
        headers={"content-type": "text/plain"},
    )
    assert wrong_type.status_code in (400, 415, 422)
    invalid = await post(harness, b'{"key":"K","fingerprint":"short"}', stream=False)
    assert invalid.status_code == 422
    for response in (not_json, wrong_type, invalid):
        assert response.headers["content-type"] == "application/problem+json"
        assert "x-request-id" in response.headers
        verify_response(response, keys)


async def test_both_paths_sign_validate_once_with_the_one_validate(harness: Harness) -> None:
    (key,) = await a_license(harness)
    await activate(harness, key, "machine-once-0001")
    body = f'{{"key":"{key}","fingerprint":"machine-once-0001"}}'.encode()
    keys = await jwks(harness)
    for stream in (False, True):
        response = await post(harness, body, stream=stream)
        assert response.status_code == 200
        # Signed by desktop/validate.py; SignedResponses leaves a signed answer alone.
        assert len(response.headers.get_list("tessera-signature")) == 1
        verify_response(response, keys)


async def test_without_the_read_pool_both_paths_get_the_routes_503(harness: Harness) -> None:
    state = harness.app.state.context
    keys = await jwks(harness)
    body = b'{"key":"AAAAA-AAAAA-AAAAA-AAAAA-AAAAA","fingerprint":"machine-nopool-01"}'
    pool, state._read_pool = state.read_pool, None
    try:
        fast = await post(harness, body, stream=False)
        full = await post(harness, body, stream=True)
    finally:
        state.use_read_pool(pool)
    for response in (fast, full):
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "The database is not connected."
        assert len(response.headers.get_list("tessera-signature")) == 1
        verify_response(response, keys)


async def test_the_fast_path_is_in_front_whether_validate_is_traced_or_not(
    start_licensing: Any,
) -> None:
    scope = {
        "type": "http",
        "headers": [(b"traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")],
    }
    async with start_licensing() as untraced:
        front = untraced.app.front
        assert isinstance(front, ValidateFastPath)
        assert not front.traced(scope)  # like the full stack, which leaves validate out
    async with start_licensing(trace_validate=True) as traced:
        front = traced.app.front
        assert isinstance(front, ValidateFastPath)
        assert front.traced(scope)  # the kernel's one policy: a span when someone traces
        (key,) = await a_license(traced)
        body = f'{{"key":"{key}","fingerprint":"machine-traced-01"}}'.encode()
        fast = await post(traced, body, stream=False)
        assert fast.status_code == 200
        assert fast.json()["code"] == "NOT_ACTIVATED"
        # An ASGI layer in front of the app: the middleware stack is FastAPI's own.
        assert not isinstance(traced.app.middleware_stack, FastPath)
