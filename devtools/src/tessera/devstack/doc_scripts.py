"""Test helper: a doc's shell examples, run as written. A section's ```sh blocks go to bash
(`-euo pipefail`, so a failing curl fails the test) with only PATH and the given variables."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def sh_blocks(doc: Path, heading: str) -> list[str]:
    """The ```sh blocks of the section under `heading` (up to the next `## `)."""
    text = doc.read_text()
    section = text[text.index(heading) :]
    end = section.find("\n## ", len(heading))
    return BLOCK.findall(section if end < 0 else section[:end])


async def sh(script: str, env: dict[str, str], timeout: float = 60) -> str:
    """Run `script` in bash; its stdout, or an AssertionError with its stderr."""
    process = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script,
        env={"PATH": os.environ["PATH"], **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode == 0, err.decode()
    return out.decode()
