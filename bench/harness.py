"""What every benchmark shares: the bare FastAPI baseline, starting server processes
(our services on uvicorn as they run in production, or on granian with `--server granian`),
and an asyncio load generator that reports throughput and latency percentiles."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tessera.devstack.infra import free_port  # noqa: F401 - the scripts reach it as harness.free_port

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

    def line(self) -> str:
        return (
            f"{self.name:<34} {self.rps:>8.0f} req/s   p50 {self.percentile(50):6.2f} ms"
            f"   p99 {self.percentile(99):6.2f} ms   errors {self.errors}"
        )


SERVERS: dict[str, int] = {}  # url -> pid of the server process serving it

# What serves our services: "uvicorn", the way `tessera-<service> serve` runs them
# (shared/http/server.py), or "granian" (the same app factory on granian's ASGI interface,
# uvloop, for comparison: docs/performance.md). The bare baseline always runs on stock
# uvicorn, the yardstick both are measured against. Scripts set it from `--server`.
SERVER_CHOICES = ("uvicorn", "granian")
SERVER = "uvicorn"


def add_server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        choices=SERVER_CHOICES,
        default="uvicorn",
        help="what serves the Tessera services (the bare baseline stays on uvicorn)",
    )


def use_server(name: str) -> None:
    global SERVER
    if name not in SERVER_CHOICES:
        raise ValueError(f"unknown server {name!r}; one of {', '.join(SERVER_CHOICES)}")
    SERVER = name


def service_command(
    factory: str, port: int, *, host: str = "127.0.0.1", workers: int = 1, server: str = ""
) -> list[str]:
    """The command that serves the app factory `factory` (`module:function`) on `SERVER`
    (or `server`)."""
    if (server or SERVER) == "granian":
        return [
            sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
            "--loop", "uvloop", "--host", host, "--port", str(port), "--workers", str(workers),
            "--log-level", "warning", "--no-access-log", factory,
        ]  # fmt: skip
    return [
        sys.executable, "-m", "tessera.shared.http.server", factory,
        "--host", host, "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip


def server_cpu_seconds(url: str) -> float:
    """CPU seconds the server at `url` has used so far (its workers included): divided by
    the requests of a run, the server's own cost per request, which the load on the rest of
    the machine does not inflate the way it does latency."""
    import psutil

    parent = psutil.Process(SERVERS[url])
    return sum(sum(p.cpu_times()[:2]) for p in (parent, *parent.children(recursive=True)))


@contextlib.contextmanager
def uvicorn_process(
    app: str,
    port: int,
    env: dict[str, str] | None = None,
    workers: int = 1,
    nice: int = 0,
    log: Path | None = None,
) -> Iterator[str]:
    """Run `app` (an import path; factories end with `()`) in its own server process, at
    CPU priority `nice` (0 is the default; higher yields the CPU to others), its output
    written to `log` when given. Our services run on `SERVER` (`service_command`); the bare
    baseline on stock uvicorn."""
    factory = app.endswith("()")
    target = app.removesuffix("()")
    if factory and target.startswith("tessera."):
        cmd = service_command(target, port, workers=workers)
    else:
        cmd = [
            sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log", "--loop", "uvloop", "--http", "httptools",
        ]  # fmt: skip
        if factory:
            cmd.append("--factory")
        if workers > 1:
            cmd += ["--workers", str(workers)]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    output = None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        output = log.open("ab")
    process = subprocess.Popen(
        cmd,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(REPO / "bench")},
        cwd=REPO,
        stdout=output,
        stderr=output,
    )
    url = f"http://127.0.0.1:{port}"
    SERVERS[url] = process.pid
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{app} did not become ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
        if output is not None:
            output.close()


Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def drive(
    name: str, base_url: str, send: Send, *, concurrency: int, duration: float, warmup: float = 2.0
) -> Result:
    """`concurrency` workers call `send` back to back for `duration` seconds (after a
    warm-up), each request numbered so callers can make bodies unique."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:
        counter = 0
        latencies: list[float] = []
        errors = 0
        measuring = False
        stop_at = 0.0

        async def worker() -> None:
            nonlocal counter, errors
            while time.perf_counter() < stop_at:
                counter += 1
                n = counter
                started = time.perf_counter()
                try:
                    response = await send(client, n)
                    ok = response.status_code < 300
                except httpx.HTTPError:
                    ok = False
                if measuring:
                    if ok:
                        latencies.append((time.perf_counter() - started) * 1000)
                    else:
                        errors += 1

        stop_at = time.perf_counter() + warmup
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        measuring = True
        started = time.perf_counter()
        stop_at = started + duration
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(name, len(latencies), errors, elapsed, latencies)


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p = lambda q: ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]  # noqa: E731
    return (
        f"n={len(values)} p50 {p(50):.1f} ms  p99 {p(99):.1f} ms  max {ordered[-1]:.1f} ms"
        f"  mean {statistics.fmean(values):.1f} ms"
    )


WRK_SCRIPT = """
local requests = {}
local i = 0
init = function(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    local tab = line:find("\\t")
    local headers = {["Content-Type"] = "application/json"}
    local name, value = line:sub(1, tab - 1):match("^([^:]+):(.*)$")
    if name then headers[name] = value end
    requests[#requests + 1] = wrk.format(args[2], args[3], headers, line:sub(tab + 1))
  end
  f:close()
end
request = function()
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end
"""


def wrk_available() -> bool:
    import shutil

    return shutil.which("wrk") is not None


def parse_wrk(name: str, output: str, duration: float) -> Result:
    """Throughput and the latency percentiles from `wrk --latency` output."""
    import re

    def ms(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    percentiles = {
        int(p): ms(v) for p, v in re.findall(r"^\s+(\d+)%\s+([\d.]+(?:us|ms|s))$", output, re.M)
    }
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket:
        errors += sum(int(g) for g in socket.groups())
    # Keep the shape of Result: synthesise a latency list from the reported percentiles.
    latencies = [percentiles.get(50, float("nan"))] * 98 + [percentiles.get(99, float("nan"))] * 2
    return Result(name, total - errors, errors, duration, latencies)


def drive_wrk(
    name: str,
    url: str,
    method: str,
    path: str,
    lines: list[tuple[str, bytes]],
    *,
    connections: int,
    duration: float,
) -> Result:
    """Drive `url` with wrk (one thread, `connections` connections), cycling through
    `lines` of (header "Name:value" or "", body): unique requests without client cost."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "requests.lua"
        script.write_text(WRK_SCRIPT)
        data = Path(folder) / "requests.txt"
        with data.open("wb") as out:
            for header, body in lines:
                out.write(header.encode() + b"\t" + body.replace(b"\n", b" ") + b"\n")
        output = subprocess.run(
            [
                "wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--latency",
                "-s", str(script), url, "--", str(data), method, path,
            ],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    return parse_wrk(name, output, duration)


async def tear_down(infra: object, database_urls: list[str], namespace: str) -> None:
    """Drop the run's databases and JetStream streams, then stop what the run started."""
    import nats

    from tessera.devstack.infra import Infra
    from tessera.shared.db.pool import drop_database

    assert isinstance(infra, Infra)
    for database in database_urls:
        await drop_database(infra.postgres.url, database)
    nc = await nats.connect(infra.nats.url)
    js = nc.jetstream()
    for info in await js.streams_info():
        if info.config.name and info.config.name.startswith(namespace.upper() + "_"):
            await js.delete_stream(info.config.name)
    await nc.close()
    infra.stop()
