"""Who is asking: the caller's IP and device as auth records them.

The portal calls auth on behalf of browsers, so it forwards the browser's address in
`X-Forwarded-For` (trusted only from `TESSERA_FORWARDED_ALLOW_IPS`, none by default: see
tessera.shared.http.forwarded) and its `User-Agent` unchanged.
"""

from __future__ import annotations

from fastapi import Request

from tessera.shared.http.context import client_ip

__all__ = ["client_ip", "user_agent"]


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:200]
