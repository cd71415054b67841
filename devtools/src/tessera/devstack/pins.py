"""The root pins of a running licensing, for the dev stack and tests only.

A shipped app pins its roots at build time (`tessera-licensing keys pins`, then a constant in
the app); reading them from the server it is about to trust would defeat the point. Tests
and `./dev` talk to a licensing they started themselves, so taking its published roots is
the same as the operator copying them.
"""

from __future__ import annotations

import httpx


async def root_pins(licensing_url: str) -> list[str]:
    async with httpx.AsyncClient(base_url=licensing_url, timeout=10.0) as http:
        response = await http.get("/v1/public-keys")
        response.raise_for_status()
        return [str(root["x"]) for root in response.json()["roots"]]
