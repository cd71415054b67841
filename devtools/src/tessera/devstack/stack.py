"""The whole stack as local processes: one uvicorn per service, wired to the infra."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tessera.devstack.infra import Infra, port_open
from tessera.shared.db.pool import ensure_database, with_database

DATABASES = ("auth", "billing", "licensing", "webhooks")


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
    ServiceProcess("webhooks", "tessera.webhooks.app", 8085, "TESSERA_WEBHOOKS_", "webhooks"),
    ServiceProcess("portal-web", "tessera.portal.app", 8081, "TESSERA_PORTAL_"),
    ServiceProcess("site", "tessera.site.app", 8080, "TESSERA_SITE_"),
)


STRIPE_STANDIN_PORT = 12111
# What `./dev up` gives billing and the Stripe stand-in when no Stripe key is configured:
# both sides of the same (dev-only) secrets.
STANDIN_API_KEY = "sk_test_tessera_standin"
STANDIN_WEBHOOK_SECRET = "whsec_tessera_standin_platform"  # noqa: S105
STANDIN_CONNECT_WEBHOOK_SECRET = "whsec_tessera_standin_connect"  # noqa: S105
STANDIN_CLIENT_ID = "ca_tesserastandin"
MAIL_SMTP_PORT = 1025
MAIL_HTTP_PORT = 8025
REPO = Path(__file__).resolve().parents[4]

# Every keyword argument below defaults to what `./dev up` does; a test passes its own ports,
# databases and namespace to run an isolated stack of its own beside any other.


def service_ports(port_offset: int = 0, ports: Mapping[str, int] | None = None) -> dict[str, int]:
    """Each service's port: its dev default plus `port_offset`, unless `ports` names it."""
    return {svc.name: (ports or {}).get(svc.name, svc.port + port_offset) for svc in SERVICES}


def selected(only: Collection[str] | None) -> list[ServiceProcess]:
    return [svc for svc in SERVICES if only is None or svc.name in only]


def start_mailcatcher(
    port_offset: int, logs: Path, *, smtp_port: int | None = None, http_port: int | None = None
) -> subprocess.Popen[bytes] | None:
    """The dev mail catcher (SMTP + Mailpit-compatible inbox) that auth sends to; None when
    something (e.g. a Mailpit) already answers on the SMTP port: that one is used."""
    smtp_port = smtp_port or MAIL_SMTP_PORT + port_offset
    http_port = http_port or MAIL_HTTP_PORT + port_offset
    if port_open("127.0.0.1", smtp_port, 0.2):
        return None
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / "mail.log", "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tessera.devstack.mailcatcher",
            "--smtp-port",
            str(smtp_port),
            "--http-port",
            str(http_port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stripe_configured(env: Mapping[str, str]) -> bool:
    """Whether billing is given a Stripe key (then `./dev up` talks to real Stripe)."""
    return bool(env.get("TESSERA_BILLING_STRIPE_SECRET_KEY", "").strip())


def use_stripe_standin(env: dict[str, str], standin_port: int) -> str:
    """Point billing at the Stripe stand-in on `standin_port` (its API base, key, both
    webhook endpoints' secrets, the Connect client id); the stand-in's URL."""
    url = f"http://127.0.0.1:{standin_port}"
    env["TESSERA_BILLING_STRIPE_SECRET_KEY"] = STANDIN_API_KEY
    env["TESSERA_BILLING_STRIPE_API_BASE"] = url
    env["TESSERA_BILLING_STRIPE_WEBHOOK_SECRETS"] = STANDIN_WEBHOOK_SECRET
    env["TESSERA_BILLING_STRIPE_CONNECT_WEBHOOK_SECRETS"] = STANDIN_CONNECT_WEBHOOK_SECRET
    env["TESSERA_BILLING_STRIPE_CONNECT_CLIENT_ID"] = STANDIN_CLIENT_ID
    return url


def start_stripe_standin(
    standin_port: int, billing_url: str, logs: Path, *, state_file: Path | None = None
) -> subprocess.Popen[bytes]:
    """The Stripe stand-in (`./dev stripe-standin`) as `use_stripe_standin` set billing up
    for: it sends the platform's and connected accounts' events to billing's two webhook
    endpoints, and puts each new customer on a test clock of its own. With `state_file`
    it remembers its objects between runs, as billing's database remembers their ids."""
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / "stripe-standin.log", "ab")  # noqa: SIM115 - handed to the child
    env = {
        **os.environ,
        "TESSERA_STRIPE_STANDIN_PORT": str(standin_port),
        "TESSERA_STRIPE_STANDIN_API_KEY": STANDIN_API_KEY,
        "TESSERA_STRIPE_STANDIN_CLIENT_ID": STANDIN_CLIENT_ID,
        "TESSERA_STRIPE_STANDIN_WEBHOOK_URL": f"{billing_url}/webhooks/stripe",
        "TESSERA_STRIPE_STANDIN_WEBHOOK_SECRET": STANDIN_WEBHOOK_SECRET,
        "TESSERA_STRIPE_STANDIN_CONNECT_WEBHOOK_URL": f"{billing_url}/webhooks/stripe/connect",
        "TESSERA_STRIPE_STANDIN_CONNECT_WEBHOOK_SECRET": STANDIN_CONNECT_WEBHOOK_SECRET,
    }
    if state_file is not None:
        env["TESSERA_STRIPE_STANDIN_STATE_FILE"] = str(state_file)
    return subprocess.Popen(
        [sys.executable, "-m", "tessera.devstack.cli", "stripe-standin", "--clock-per-customer"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def create_databases(infra: Infra, names: tuple[str, ...] = DATABASES) -> None:
    async def create_all() -> None:
        for name in names:
            await ensure_database(infra.postgres.url, name)

    asyncio.run(create_all())


def stack_env(
    infra: Infra,
    port_offset: int,
    root: Path,
    *,
    ports: Mapping[str, int] | None = None,
    database_urls: Mapping[str, str] | None = None,
    namespace: str | None = None,
    smtp_port: int | None = None,
) -> dict[str, str]:
    """The environment of every service process: where the infra is, and each service's
    port, database and the URLs of the others."""
    port = service_ports(port_offset, ports)
    env = {**os.environ, **infra.env()}
    env.setdefault("TESSERA_LOG_JSON", "false")
    if namespace is not None:
        env["TESSERA_NAMESPACE"] = namespace
    for svc in SERVICES:
        env[f"{svc.env_prefix}PORT"] = str(port[svc.name])
        if svc.database:
            default = with_database(infra.postgres.url, svc.database)
            env[f"{svc.env_prefix}DATABASE_URL"] = (database_urls or {}).get(svc.name, default)
    url = {name: f"http://127.0.0.1:{number}" for name, number in port.items()}
    env["TESSERA_PORTAL_AUTH_URL"] = url["auth"]
    env["TESSERA_PORTAL_BILLING_URL"] = url["billing"]
    env["TESSERA_PORTAL_LICENSING_URL"] = url["licensing"]
    env["TESSERA_SITE_PORTAL_URL"] = url["portal-web"]
    env["TESSERA_SITE_BILLING_URL"] = url["billing"]
    env["TESSERA_SITE_LICENSING_URL"] = url["licensing"]
    env["TESSERA_SITE_AUTH_URL"] = url["auth"]
    env.setdefault("TESSERA_SITE_BASE_URL", url["site"])
    env["TESSERA_SITE_DIST_DIR"] = str(root / "site-dist")
    # Access tokens are verified against auth's keys, wherever this stack's auth listens.
    env["TESSERA_AUTH_JWKS_URL"] = url["auth"] + "/.well-known/jwks.json"
    env["TESSERA_LICENSING_AUTH_JWKS_URL"] = url["auth"] + "/.well-known/jwks.json"
    env["TESSERA_AUTH_SMTP_HOST"] = "127.0.0.1"
    env["TESSERA_AUTH_SMTP_PORT"] = str(smtp_port or MAIL_SMTP_PORT + port_offset)
    env.setdefault("TESSERA_AUTH_PORTAL_URL", url["portal-web"])
    # What browsers follow: the test checkout delivers its webhooks to billing's public URL.
    env.setdefault("TESSERA_BILLING_PUBLIC_URL", url["billing"])
    env.setdefault("TESSERA_BILLING_PORTAL_URL", url["portal-web"])
    env.setdefault("TESSERA_BILLING_SITE_URL", url["site"])
    env.setdefault("TESSERA_BILLING_CATALOG_FILE", str(REPO / "deploy" / "catalog.json"))
    return env


def start_services(
    env: dict[str, str],
    port_offset: int,
    logs: Path,
    *,
    ports: Mapping[str, int] | None = None,
    only: Collection[str] | None = None,
) -> list[subprocess.Popen[bytes]]:
    """One server process per service (those named in `only`, else all)."""
    logs.mkdir(parents=True, exist_ok=True)
    port = service_ports(port_offset, ports)
    processes = []
    for svc in selected(only):
        log = open(logs / f"{svc.name}.log", "ab")  # noqa: SIM115 - handed to the child
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tessera.shared.http.server",  # uvicorn, as `tessera-<service> serve` runs it
                    f"{svc.module}:create_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port[svc.name]),
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return processes


def wait_ready(
    port_offset: int,
    timeout: float = 90.0,
    *,
    ports: Mapping[str, int] | None = None,
    only: Collection[str] | None = None,
) -> dict[str, str]:
    """Poll every service's /readyz until all answer 200 (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    port = service_ports(port_offset, ports)
    services = selected(only)
    status = {svc.name: "starting" for svc in services}
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            for svc in services:
                if status[svc.name] == "ready":
                    continue
                try:
                    r = client.get(f"http://127.0.0.1:{port[svc.name]}/readyz")
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
