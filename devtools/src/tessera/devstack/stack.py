"""The whole stack as local processes: one uvicorn per service, wired to the infra."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tessera.devstack.infra import Infra, port_open
from tessera.shared.db.pool import ensure_database, with_database

DATABASES = ("auth", "billing", "licensing")


@dataclass(frozen=True)
class ServiceProcess:
    name: str
    module: str
    port: int
    env_prefix: str
    database: str | None = None


SERVICES = (
    ServiceProcess("billing", "tessera.billing.app", 8082, "TESSERA_BILLING_", "billing"),
    ServiceProcess("auth", "tessera.auth.app", 8083, "TESSERA_AUTH_", "auth"),
    ServiceProcess("licensing", "tessera.licensing.app", 8084, "TESSERA_LICENSING_", "licensing"),
    ServiceProcess("portal-web", "tessera.portal.app", 8081, "TESSERA_PORTAL_"),
    ServiceProcess("site", "tessera.site.app", 8080, "TESSERA_SITE_"),
)


MAIL_SMTP_PORT = 1025
MAIL_HTTP_PORT = 8025


def start_mailcatcher(port_offset: int, logs: Path) -> subprocess.Popen[bytes] | None:
    """The dev mail catcher (SMTP + Mailpit-compatible inbox) that auth sends to; None when
    something (e.g. a Mailpit) already answers on the SMTP port: that one is used."""
    if port_open("127.0.0.1", MAIL_SMTP_PORT + port_offset, 0.2):
        return None
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / "mail.log", "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tessera.devstack.mailcatcher",
            "--smtp-port",
            str(MAIL_SMTP_PORT + port_offset),
            "--http-port",
            str(MAIL_HTTP_PORT + port_offset),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def create_databases(infra: Infra, names: tuple[str, ...] = DATABASES) -> None:
    async def create_all() -> None:
        for name in names:
            await ensure_database(infra.postgres.url, name)

    asyncio.run(create_all())


def stack_env(infra: Infra, port_offset: int, root: Path) -> dict[str, str]:
    env = {**os.environ, **infra.env()}
    env.setdefault("TESSERA_LOG_JSON", "false")
    for svc in SERVICES:
        env[f"{svc.env_prefix}PORT"] = str(svc.port + port_offset)
        if svc.database:
            env[f"{svc.env_prefix}DATABASE_URL"] = with_database(infra.postgres.url, svc.database)
    base = "http://127.0.0.1:{}"
    env["TESSERA_PORTAL_AUTH_URL"] = base.format(8083 + port_offset)
    env["TESSERA_PORTAL_BILLING_URL"] = base.format(8082 + port_offset)
    env["TESSERA_PORTAL_LICENSING_URL"] = base.format(8084 + port_offset)
    env["TESSERA_SITE_PORTAL_URL"] = base.format(8081 + port_offset)
    env["TESSERA_SITE_BILLING_URL"] = base.format(8082 + port_offset)
    env["TESSERA_SITE_LICENSING_URL"] = base.format(8084 + port_offset)
    env["TESSERA_SITE_DIST_DIR"] = str(root / "site-dist")
    env["TESSERA_AUTH_SMTP_HOST"] = "127.0.0.1"
    env["TESSERA_AUTH_SMTP_PORT"] = str(MAIL_SMTP_PORT + port_offset)
    env.setdefault("TESSERA_AUTH_PORTAL_URL", base.format(8081 + port_offset))
    return env


def start_services(
    env: dict[str, str], port_offset: int, logs: Path
) -> list[subprocess.Popen[bytes]]:
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for svc in SERVICES:
        log = open(logs / f"{svc.name}.log", "ab")  # noqa: SIM115 - handed to the child
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    f"{svc.module}:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(svc.port + port_offset),
                    "--log-level",
                    "warning",
                    "--no-server-header",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return processes


def wait_ready(port_offset: int, timeout: float = 90.0) -> dict[str, str]:
    """Poll every service's /readyz until all answer 200 (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    status = {svc.name: "starting" for svc in SERVICES}
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            for svc in SERVICES:
                if status[svc.name] == "ready":
                    continue
                try:
                    r = client.get(f"http://127.0.0.1:{svc.port + port_offset}/readyz")
                    status[svc.name] = "ready" if r.status_code == 200 else f"not ready: {r.text}"
                except httpx.HTTPError as error:
                    status[svc.name] = f"no answer ({type(error).__name__})"
            if all(s == "ready" for s in status.values()):
                break
            time.sleep(0.5)
    return status


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
