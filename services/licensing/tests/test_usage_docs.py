"""docs/usage.md's "Try it", run as written: its `sh` blocks go to bash (curl and jq)
against licensing serving on a real port, with real Postgres, Redis and NATS."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from licensing_factories import Harness  # type: ignore[import-not-found]
from test_usage import UPGRADE, seller_for  # type: ignore[import-not-found]

from tessera.devstack.doc_scripts import sh, sh_blocks
from tessera.devstack.infra import free_port
from tessera.devstack.serving import LoopServer

pytestmark = pytest.mark.integration

DOC = Path(__file__).parents[3] / "docs" / "usage.md"


async def test_try_it_runs_as_written(harness: Harness) -> None:
    blocks = sh_blocks(DOC, "## Try it")
    assert len(blocks) == 3
    seller = await seller_for(harness)
    customer = await seller.customer()
    port = free_port()
    server = await LoopServer.start(harness.app, port, lifespan="off")
    try:
        env = {
            "LICENSING": f"http://127.0.0.1:{port}",
            "SK": seller.secret["authorization"].removeprefix("Bearer "),
            "CUSTOMER": str(customer),
        }
        assigned, recorded, spent = [await sh(block, env) for block in blocks]
    finally:
        await server.stop(10)
    assert assigned == "free\n"
    assert re.search(r'(?i)^ratelimit: "api_calls";r=4;t=\d+', recorded, re.M)
    assert re.search(r'(?i)^ratelimit-policy: "api_calls";q=5;w=\d+, "rate_per_minute";q=60;w=60',
                     recorded, re.M)  # fmt: skip
    # The first answer's body (no newline of its own), the replay, the check.
    assert '"used":1,' in recorded and '"replayed":false' in recorded
    assert recorded.endswith("1/5 replayed=true\ntrue\n")
    lines = spent.splitlines()
    assert lines[:3] == ["0", f"403 usage-limit-exceeded {UPGRADE}", "4"]
    assert lines[3].startswith("api_calls 4/5 until ")
