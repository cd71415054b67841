"""One HTTP base for every upstream: forwards the browser's address, agent, request id and
trace context; turns answers the page did not expect into `UpstreamError`s."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from opentelemetry import propagate, trace

log = logging.getLogger("tessera.portal.upstream")


@dataclass(frozen=True)
class Caller:
    """The browser on whose behalf the portal calls (auth records and limits by it)."""

    ip: str
    user_agent: str
    request_id: str | None = None


class UpstreamError(Exception):
    """An upstream answered with a status the page did not expect (or not at all)."""

    def __init__(
        self,
        service: str,
        status: int,
        problem_type: str = "",
        detail: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{service}: {status} {problem_type} {detail}".strip())
        self.service = service
        self.status = status
        self.problem_type = problem_type
        self.detail = detail
        self.headers = dict(headers or {})

    @property
    def slug(self) -> str:
        """`urn:tessera:problem:code-required` -> `code-required`."""
        return self.problem_type.rsplit(":", 1)[-1].rsplit("/", 1)[-1]

    @property
    def unavailable(self) -> bool:
        return self.status == 0 or self.status >= 500


class TokenRejected(UpstreamError):
    """401 to a call with an access token: the token expired or its session ended."""


@dataclass
class Upstream:
    """One service's base URL over the portal's shared HTTP client."""

    name: str
    base_url: str
    http: httpx.AsyncClient
    default_headers: dict[str, str] = field(default_factory=dict)

    def _headers(self, caller: Caller | None, token: str | None) -> dict[str, str]:
        headers = dict(self.default_headers)
        if caller is not None:
            headers["x-forwarded-for"] = caller.ip
            headers["user-agent"] = caller.user_agent or "tessera-portal"
            if caller.request_id:
                headers["x-request-id"] = caller.request_id
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        propagate.inject(headers)  # traceparent: one trace from the page to the service
        return headers

    async def call(
        self,
        method: str,
        path: str,
        *,
        caller: Caller | None = None,
        token: str | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        url = self.base_url.rstrip("/") + path
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            response = await self.http.request(
                method, url, json=json, params=query, headers=self._headers(caller, token)
            )
        except httpx.HTTPError as error:
            self._log(method, path, 0, repr(error))
            raise UpstreamError(self.name, 0, detail=type(error).__name__) from None
        if response.status_code in expect:
            return response
        problem = _problem(response)
        self._log(method, path, response.status_code, problem.get("type", ""))
        cls = TokenRejected if response.status_code == 401 and token else UpstreamError
        raise cls(
            self.name,
            response.status_code,
            str(problem.get("type", "")),
            str(problem.get("detail", "")),
            {k: v for k, v in response.headers.items() if k.lower() == "retry-after"},
        )

    def _log(self, method: str, path: str, status: int, what: str) -> None:
        span = trace.get_current_span().get_span_context()
        level = logging.WARNING if status == 0 or status >= 500 else logging.INFO
        log.log(
            level,
            "portal.upstream.refused" if status else "portal.upstream.unreachable",
            extra={
                "upstream": self.name,
                "method": method,
                "path": path,
                "status": status,
                "problem": what,
                "trace_id": format(span.trace_id, "032x") if span.is_valid else None,
            },
        )


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
