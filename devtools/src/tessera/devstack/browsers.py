"""Debian's Chromium for the browser tests: found, or installed from Debian's packages.

Playwright's own browser download cannot work here (only package registries are reachable),
so browser tests drive the distribution's `chromium` through Playwright's `executable_path`.
CI runs on a fresh machine where it may be missing; as root we install it, otherwise we fail
with the command a person should run. Tests never skip for want of a browser.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")

# Headless, and nothing that talks to Google's services: tests must see only our own origins.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

INSTALL_COMMANDS = (
    ["apt-get", "-o", "DPkg::Lock::Timeout=600", "update"],
    ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "chromium"],
)
# Another apt client (someone else's install, unattended upgrades) may hold apt's locks.
ATTEMPTS = 3
RETRY_DELAY = 10.0

# Several pytest workers (and other engineers' test runs) may ask at once; one installs.
LOCK_FILE = Path(tempfile.gettempdir()) / "tessera-chromium-install.lock"


class BrowserUnavailableError(RuntimeError):
    """Chromium is missing and cannot be installed from here."""


def find_chromium() -> Path | None:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    found = shutil.which("chromium")
    return Path(found) if found else None


def ensure_chromium() -> Path:
    """The path of a runnable Chromium, installing Debian's package first if need be."""
    found = find_chromium()
    if found:
        return found
    if os.geteuid() != 0:
        raise BrowserUnavailableError(
            f"{CHROMIUM} is missing and this process is not root, so it cannot install it; "
            "run: sudo apt-get update && sudo apt-get install -y chromium"
        )
    with LOCK_FILE.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # blocks until another installer finishes
        found = find_chromium()
        if found:
            return found
        _install()
    found = find_chromium()
    if not found:
        raise BrowserUnavailableError(f"apt-get installed chromium but {CHROMIUM} is missing")
    return found


def _install() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in INSTALL_COMMANDS:
        for attempt in range(1, ATTEMPTS + 1):
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            if result.returncode == 0:
                break
            if attempt == ATTEMPTS:
                tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
                raise BrowserUnavailableError(
                    f"`{' '.join(command)}` failed ({result.returncode}): " + " | ".join(tail)
                )
            time.sleep(RETRY_DELAY)
