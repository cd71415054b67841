"""docs/sellers.md's "From sign-up to a first call", run as written: its `sh` blocks go to
bash (curl and jq) against auth serving on a real port, with real Postgres, Redis, NATS
and a real SMTP server; the only thing the test adds is what a person reads in their
mailbox (the link's token)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from test_sellers import sign_up_token  # type: ignore[import-not-found]

from tessera.devstack.infra import free_port
from tessera.devstack.serving import LoopServer

pytestmark = pytest.mark.integration

DOC = Path(__file__).parents[3] / "docs" / "sellers.md"
SECTION = "## From sign-up to a first call"
BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def walkthrough_blocks() -> list[str]:
    text = DOC.read_text()
    section = text[text.index(SECTION) :]
    end = section.find("\n## ", len(SECTION))
    return BLOCK.findall(section if end < 0 else section[:end])


async def sh(script: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script,
        env={"PATH": os.environ["PATH"], **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


def test_the_walkthrough_has_its_four_steps() -> None:
    blocks = walkthrough_blocks()
    assert len(blocks) == 4
    assert "/v1/sellers/sign-up" in blocks[0] and "/v1/customers" in blocks[3]


async def test_the_walkthrough_runs_as_written(harness: Any) -> None:
    blocks = walkthrough_blocks()
    async with harness() as h:
        await asyncio.wait_for(h.auth.key_book.wait_ready(), 20)
        port = free_port()
        server = await LoopServer.start(h.app, port, lifespan="off")
        try:
            email = h.new_email()
            env = {
                "AUTH": f"http://127.0.0.1:{port}",
                "EMAIL": email,
                "SLUG": "walk-through",
                "BROWSER": h.new_browser(),
            }
            await sh(blocks[0], env)
            message = await h.mailbox.wait_for(email, "Create Acme")
            env["LINK_TOKEN"] = sign_up_token(message)
            # One shell for the rest: the blocks pass SESSION, ACCESS and SK along.
            answer = await sh("\n".join(blocks[1:]), env)
            stored = await h.auth.pool.fetchrow(
                "SELECT u.mode, s.slug FROM users u JOIN sellers s ON s.id = u.seller_id "
                "WHERE u.email = 'first.customer@example.com'"
            )
        finally:
            await server.stop(10)
    customer = json.loads(answer)
    assert customer["email"] == "first.customer@example.com" and customer["name"] == "First"
    assert customer["mode"] == "test"
    assert stored is not None and dict(stored) == {"mode": "test", "slug": "walk-through"}
