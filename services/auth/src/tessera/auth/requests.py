"""Who is asking: the caller's IP and device as auth records them.

The portal calls auth on behalf of browsers, so it forwards the browser's address in
`X-Forwarded-For` (uvicorn trusts it from `FORWARDED_ALLOW_IPS`, 127.0.0.1 by default) and
its `User-Agent` unchanged.
"""

from __future__ import annotations

from fastapi import Request


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:200]
