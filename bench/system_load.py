"""The whole system under a realistic mix, open loop: a stream of purchases (freshly signed
`checkout.session.completed` webhooks to billing), many desktop validations and some
activations (licensing), all at once for `--duration` seconds, beside a bare FastAPI
endpoint measured in the same run as the ceiling.

    uv run python bench/system_load.py --duration 60 --purchase-rate 200 --validate-rate 400 --activate-rate 10

What it starts: billing, auth and licensing, each its own uvicorn process (uvloop,
httptools, `--workers` per service), on the system Postgres, Redis and NATS (embedded ones
when none answer), with fresh databases and a fresh namespace, plus an SMTP sink
(bench/smtp_sink.py) for auth's welcome mails. All of it is torn down afterwards.

What it measures:
- per endpoint: achieved throughput, p50/p99/max latency counted from each request's
  *scheduled* send time (so queueing shows; no coordinated omission), answers by status;
- end to end: from a purchase's scheduled send to `licensing.license.issued.v1` reaching a
  NATS subscriber (and the `billing.order.paid.v1` step in between), matched per purchase;
- integrity after the backlog drains: orders in billing == purchases accepted, licenses
  per order == its seats (none lost, none doubled);
- CPU seconds per process group during the window (the generator's own included), to see
  what bounds the run.

The load generator is this process: raw HTTP/1.1 keep-alive connections on uvloop, every
request pre-built (and every webhook pre-signed) before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import harness
import httpx
import nats
import uvloop
from redis.asyncio import Redis

from tessera.billing.checkout import stripe_shapes as shapes
from tessera.devstack.infra import Infra, bring_up, wait_for_port
from tessera.licensing.licenses.service import reveal_key
from tessera.licensing.settings import LicensingSettings
from tessera.shared.db.pool import asyncpg_dsn, ensure_database, with_database
from tessera.shared.events.billing import OrderPaid
from tessera.shared.events.licensing import LicenseIssued
from tessera.shared.events.topology import WEBHOOKS, Namespace
from tessera.shared.keys import Sealer
from tessera.shared.messaging import ensure_stream, stream_config

SECRET = "whsec_bench_system_load"  # noqa: S105 - a throwaway secret for a throwaway stack
SKU = "chartgpt-lifetime"
SERVICES = ("billing", "auth", "licensing")  # start order: billing declares the stream
ROOMY = "100000000/minute"

# The targets of issue 9, on the 2-core machine.
TARGET_PURCHASES_PER_S = 200.0
TARGET_E2E_P99_MS = 250.0
TARGET_VALIDATE_P99_MS = 10.0


# --- raw HTTP/1.1 over keep-alive connections -----------------------------------------------


def post(host: str, path: str, body: bytes, headers: str = "") -> bytes:
    """A complete request, built once: sending it is one `write`."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"{headers}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    """One keep-alive connection: write a pre-built request, read status and body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at < 0:  # every answer these services give carries a length
            raise ValueError("answer without Content-Length")
        length = int(head[at + 17 : lower.find(b"\r\n", at + 17)])
        body = await self.reader.readexactly(length) if length else b""
        return status, body, b"\r\nconnection: close" not in lower

    def close(self) -> None:
        self.writer.close()


class Pool:
    """At most `limit` requests in flight (and so connections) to one server; idle ones are
    reused. Requests beyond the limit wait for a slot, and that wait counts in their latency."""

    def __init__(self, url: str, limit: int) -> None:
        self.host_header = url.removeprefix("http://")
        host, port = self.host_header.split(":")
        self.address = (host, int(port))
        self.slots = asyncio.Semaphore(limit)
        self.idle: list[Connection] = []

    async def _open(self) -> Connection:
        return Connection(*await asyncio.open_connection(*self.address))

    async def request(self, request: bytes) -> tuple[int, bytes]:
        async with self.slots:
            conn = self.idle.pop() if self.idle else await self._open()
            try:
                try:
                    status, body, keep = await conn.exchange(request)
                except (ConnectionError, asyncio.IncompleteReadError):
                    # uvicorn closed a connection that sat idle past its keep-alive timeout,
                    # before reading this request: send it once more on a fresh one.
                    conn.close()
                    conn = await self._open()
                    status, body, keep = await conn.exchange(request)
            except BaseException:
                conn.close()
                raise
            if keep:
                self.idle.append(conn)
            else:
                conn.close()
            return status, body

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


# --- flows: requests at a fixed rate ---------------------------------------------------------

Check = Callable[[int, bytes], tuple[bool, str]]


def accepted(status: int, body: bytes) -> tuple[bool, str]:
    return 200 <= status < 300, str(status)


def desktop(expected: bytes) -> Check:
    """A desktop answer is HTTP 200 whatever the verdict: success is its `code`."""

    def check(status: int, body: bytes) -> tuple[bool, str]:
        if status != 200:
            return False, str(status)
        if expected in body:
            return True, "200"
        code = re.search(rb'"code":"([A-Z_]+)"', body)
        return False, "200 " + (code.group(1).decode() if code else "?")

    return check


@dataclass
class Flow:
    name: str
    rate: float
    latencies: list[float] = field(default_factory=list)  # ms, successes only
    done_at: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)  # ms the generator fired late
    statuses: Counter[str] = field(default_factory=Counter)

    def summary(self, start: float, duration: float) -> dict[str, Any]:
        ok = len(self.latencies)
        # Throughput over the window, or longer if answers kept coming after it.
        span = max(duration, (max(self.done_at) - start) if self.done_at else 0.0)
        return {
            "name": self.name,
            "target_per_s": self.rate,
            "ok": ok,
            "achieved_per_s": ok / span if span else 0.0,
            **percentiles(self.latencies),
            "statuses": dict(self.statuses),
        }


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)

    def p(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]

    return {"p50_ms": p(50), "p90_ms": p(90), "p99_ms": p(99), "max_ms": ordered[-1]}


async def timed(flow: Flow, pool: Pool, request: bytes, check: Check, since: float) -> bool:
    try:
        status, body = await pool.request(request)
        ok, label = check(status, body)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
        ok, label = False, type(error).__name__
    now = time.perf_counter()
    flow.statuses[label] += 1
    if ok:
        flow.latencies.append((now - since) * 1000)
        flow.done_at.append(now)
    return ok


async def open_loop(
    flow: Flow,
    start: float,
    count: int,
    fire: Callable[[int, float], Coroutine[Any, Any, None]],
    grace: float,
) -> None:
    """Fire request `n` at `start + n / rate` whatever the answers do; then give the ones in
    flight `grace` seconds and count the rest as unanswered."""
    pending: set[asyncio.Task[None]] = set()
    for n in range(count):
        scheduled = start + n / flow.rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(fire(n, scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        _, late = await asyncio.wait(set(pending), timeout=grace)
        for task in late:
            task.cancel()
        flow.statuses["unanswered"] += len(late)


@dataclass
class Plan:
    """Every request of a run, built before the clock starts."""

    purchases: list[bytes]
    validations: list[bytes]
    activations: list[tuple[bytes, bytes]]  # (activate, deactivate) of one new machine
    checks: dict[str, Check]


@dataclass
class Mix:
    purchase: Flow
    validate: Flow
    activate: Flow
    deactivate: Flow
    accepted: bytearray  # 1 where purchase n was answered 2xx
    start: float = 0.0
    duration: float = 0.0
    cpu_seconds: float = 0.0

    def flows(self) -> list[Flow]:
        return [self.purchase, self.validate, self.activate, self.deactivate]


async def run_mix(
    plan: Plan,
    pools: dict[str, Pool],
    names: dict[str, str],
    rates: dict[str, float],
    duration: float,
    grace: float,
) -> Mix:
    """The three flows at once, each open loop at its rate, for `duration` seconds."""
    mix = Mix(
        Flow(names["purchase"], rates["purchase"]),
        Flow(names["validate"], rates["validate"]),
        Flow(names["activate"], rates["activate"]),
        Flow(names["deactivate"], rates["activate"]),
        bytearray(len(plan.purchases)),
        duration=duration,
    )

    async def purchase(n: int, scheduled: float) -> None:
        mix.purchase.lateness.append((time.perf_counter() - scheduled) * 1000)
        if await timed(
            mix.purchase, pools["purchase"], plan.purchases[n], plan.checks["purchase"], scheduled
        ):
            mix.accepted[n] = 1

    async def validate(n: int, scheduled: float) -> None:
        mix.validate.lateness.append((time.perf_counter() - scheduled) * 1000)
        request = plan.validations[n % len(plan.validations)]
        await timed(mix.validate, pools["validate"], request, plan.checks["validate"], scheduled)

    async def activation(n: int, scheduled: float) -> None:
        # A new machine on a warm license, then freed again: the license never runs out of
        # seats, and each activation is a real insert (not the cheap re-activation).
        mix.activate.lateness.append((time.perf_counter() - scheduled) * 1000)
        act, deact = plan.activations[n]
        check = plan.checks
        if await timed(mix.activate, pools["activate"], act, check["activate"], scheduled):
            await timed(
                mix.deactivate, pools["activate"], deact, check["deactivate"], time.perf_counter()
            )

    cpu = time.process_time()
    mix.start = time.perf_counter() + 0.05
    await asyncio.gather(
        open_loop(mix.purchase, mix.start, len(plan.purchases), purchase, grace),
        open_loop(mix.validate, mix.start, int(rates["validate"] * duration), validate, grace),
        open_loop(mix.activate, mix.start, len(plan.activations), activation, grace),
    )
    mix.cpu_seconds = time.process_time() - cpu
    return mix


# --- building requests ------------------------------------------------------------------------


def email(kind: str, n: int, run: str) -> str:
    return f"{kind}{n}.{run}@example.com"


def signed_purchases(
    kind: str, count: int, run: str, rate: float, first_send: float
) -> list[tuple[bytes, str]]:
    """`count` distinct checkout.session.completed events, each signed as Stripe would sign
    it when sending: timestamp = its planned send time (well inside the 300 s tolerance)."""
    out = []
    for n in range(count):
        tag = f"{kind}_{run}_{n}"
        session = shapes.checkout_session(
            session_id=f"cs_{tag}", email=email(kind, n, run), sku=SKU, quantity=1,
            amount_total=14900, currency="usd", customer=f"cus_{tag}", payment_intent=f"pi_{tag}",
        )  # fmt: skip
        event = shapes.event("checkout.session.completed", session)
        out.append(shapes.signed(event, SECRET, int(first_send + n / rate) if rate else None))
    return out


def webhook(host: str, path: str, signed: tuple[bytes, str]) -> bytes:
    body, header = signed
    return post(host, path, body, f"Stripe-Signature: {header}\r\n")


def desktop_body(**fields: str) -> bytes:
    return json.dumps(fields, separators=(",", ":")).encode()


def warm_fingerprint(key: str) -> str:
    return f"warm-machine-{key}"


def build_plan(
    run: str,
    keys: list[str],
    rates: dict[str, float],
    duration: float,
    *,
    billing: str,
    licensing: str,
    echo: bool,
) -> Plan:
    """The run's requests. With `echo`, the same requests go to the bare endpoint's /echo
    (same sizes, same generator work) and any 2xx counts."""
    first_send = time.time() + 2
    purchases = signed_purchases(
        "base" if echo else "buy", int(rates["purchase"] * duration), run,
        rates["purchase"], first_send,
    )  # fmt: skip
    billing_host, licensing_host = (
        billing.removeprefix("http://"),
        licensing.removeprefix("http://"),
    )

    def path(real: str) -> str:
        return "/echo" if echo else real

    validations = [
        post(
            licensing_host,
            path("/v1/licenses/validate"),
            desktop_body(key=key, fingerprint=warm_fingerprint(key), nonce=secrets.token_hex(8)),
        )
        for key in keys
    ]
    activations = []
    for n in range(int(rates["activate"] * duration)):
        key, fingerprint = keys[n % len(keys)], f"load-machine-{run}-{n}"
        activations.append(
            (
                post(
                    licensing_host,
                    path("/v1/licenses/activate"),
                    desktop_body(
                        key=key,
                        fingerprint=fingerprint,
                        machine_name=f"bench {n}",
                        platform="windows",
                        app_version="1.0.0",
                    ),
                ),
                post(
                    licensing_host,
                    path("/v1/licenses/deactivate"),
                    desktop_body(key=key, fingerprint=fingerprint),
                ),
            )
        )
    checks: dict[str, Check] = (
        dict.fromkeys(("purchase", "validate", "activate", "deactivate"), accepted)
        if echo
        else {
            "purchase": accepted,
            "validate": desktop(b'"valid":true'),
            "activate": desktop(b'"code":"VALID"'),
            "deactivate": desktop(b'"code":"DEACTIVATED"'),
        }
    )
    return Plan(
        [webhook(billing_host, path("/webhooks/stripe"), s) for s in purchases],
        validations,
        activations,
        checks,
    )


# --- CPU accounting from /proc -----------------------------------------------------------------

CLOCK_TICK = os.sysconf("SC_CLK_TCK")
INFRA_COMMANDS = {"postgres": "postgres", "redis-server": "redis", "nats-server": "nats"}


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    machine_busy: float  # CPU seconds the whole machine spent busy since boot
    processes: dict[int, tuple[int, str, float]]  # pid -> (ppid, command, CPU seconds)


def cpu_snapshot() -> CpuSnapshot:
    processes = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2 :].split()
        processes[int(entry.name)] = (
            int(rest[1]),
            command,
            (int(rest[11]) + int(rest[12])) / CLOCK_TICK,
        )
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # everything but idle and iowait
    return CpuSnapshot(time.perf_counter(), busy / CLOCK_TICK, processes)


def process_groups(
    snapshot: CpuSnapshot, roots: dict[str, tuple[int, bool]]
) -> dict[str, set[int]]:
    """Each root (with its descendants, e.g. uvicorn workers, when its flag says so), plus the
    infrastructure servers by command name (the whole server: other users of it on this
    machine count too)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in snapshot.processes.items():
        children.setdefault(ppid, []).append(pid)
    groups: dict[str, set[int]] = {}
    for name, (root, descendants) in roots.items():
        members, todo = set(), [root]
        while todo:
            pid = todo.pop()
            members.add(pid)
            if descendants:
                todo.extend(children.get(pid, []))
        groups[name] = members
    for pid, (_, command, _) in snapshot.processes.items():
        if command in INFRA_COMMANDS:
            groups.setdefault(INFRA_COMMANDS[command], set()).add(pid)
    return groups


def cpu_used(
    before: CpuSnapshot, after: CpuSnapshot, roots: dict[str, tuple[int, bool]]
) -> dict[str, Any]:
    seconds = after.at - before.at
    groups = process_groups(after, roots)
    used = {
        name: sum(
            after.processes[pid][2] - before.processes.get(pid, (0, "", 0.0))[2]
            for pid in pids
            if pid in after.processes
        )
        for name, pids in groups.items()
    }
    machine = after.machine_busy - before.machine_busy
    used["other (rest of the machine)"] = max(0.0, machine - sum(used.values()))
    return {
        "window_s": seconds,
        "cores": os.cpu_count(),
        "machine_busy_cpu_s": machine,
        "machine_busy_pct": 100 * machine / (seconds * (os.cpu_count() or 1)),
        "groups_cpu_s": used,
    }


# --- profiles (py-spy) ----------------------------------------------------------------------

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")


def start_profilers(procs: dict[str, Process], logs: Path) -> dict[str, subprocess.Popen[bytes]]:
    """py-spy on each service (workers included) for the window, without pausing it
    (`--nonblocking`); folded stacks in `logs/<service>.folded`."""
    if shutil.which("py-spy") is None:
        print("--profile: py-spy is not on PATH (uv tool install py-spy); no profiles", flush=True)
        return {}
    profilers = {}
    for name, proc in procs.items():
        with open(logs / f"{name}.py-spy.log", "ab") as log:
            profilers[name] = subprocess.Popen(
                [
                    "py-spy", "record", "--pid", str(proc.process.pid), "--subprocesses",
                    "--nonblocking", "--rate", "97", "--format", "raw",
                    "--output", str(logs / f"{name}.folded"),
                ],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
    time.sleep(1)  # py-spy attaches before the clock starts
    return profilers


def stop_profilers(
    profilers: dict[str, subprocess.Popen[bytes]], logs: Path
) -> dict[str, dict[str, Any]]:
    for profiler in profilers.values():
        profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    for profiler in profilers.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            profiler.wait(timeout=30)
    return {
        name: summarise_profile(logs / f"{name}.folded")
        for name in profilers
        if (logs / f"{name}.folded").exists()
    }


def summarise_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Where the samples were, as shares of all samples: by function on top of the stack
    (self: any code), and by function of ours anywhere in the stack (inclusive: which of
    our code paths the time is spent under)."""
    own: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[short_frame(frames[-1])] += count
        for frame in {short_frame(f) for f in frames if ours_frame(f)}:
            ours[frame] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(f, 100 * c / total) for f, c in counter.most_common(top)] if total else []

    return {
        "file": str(path),
        "samples": total,
        "self": shares(own),
        "ours_inclusive": shares(ours),
    }


# py-spy names files relative to their import root: ours are the tessera packages.
OUR_PACKAGES = ("billing/", "auth/", "licensing/", "shared/", "licensing_client/")


def ours_frame(frame: str) -> bool:
    found = FRAME.match(frame)
    return bool(found and found["file"].startswith(OUR_PACKAGES))


def short_frame(frame: str) -> str:
    found = FRAME.match(frame)
    return f"{found['function']} ({found['file']})" if found else frame


# --- the stack --------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    url: str


@contextlib.contextmanager
def service(
    name: str, port: int, env: dict[str, str], workers: int, logs: Path
) -> Iterator[Process]:
    """`tessera.<name>.app:create_app` in its own server process, as `tessera-<name> serve`
    runs it (shared/http/server.py; on granian with `--server granian`), its output in
    `logs/<name>.log`."""
    cmd = harness.service_command(f"tessera.{name}.app:create_app", port, workers=workers)
    with open(logs / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            cmd, env={**os.environ, **env}, cwd=harness.REPO, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, name, logs)
        yield Process(name, process, url)
    finally:
        stop(process)


def wait_ready(url: str, process: subprocess.Popen[bytes], name: str, logs: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited; see {logs / (name + '.log')}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not become ready; see {logs / (name + '.log')}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_sink(port: int, logs: Path) -> subprocess.Popen[bytes]:
    """The SMTP sink auth mails to, in its own process (not on the generator's loop)."""
    with open(logs / "smtp_sink.log", "ab") as log:
        sink = subprocess.Popen(
            [sys.executable, str(harness.REPO / "bench" / "smtp_sink.py"), "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_for_port("127.0.0.1", port, "smtp sink", timeout=30)
    return sink


def service_env(
    infra: Infra, ns: Namespace, databases: dict[str, str], ports: dict[str, int], smtp: int
) -> dict[str, str]:
    auth = f"http://127.0.0.1:{ports['auth']}"
    return {
        **infra.env(),
        "TESSERA_NAMESPACE": ns.prefix,
        "TESSERA_LOG_LEVEL": "WARNING",
        "TESSERA_AUTH_JWKS_URL": auth + "/.well-known/jwks.json",
        "TESSERA_BILLING_DATABASE_URL": databases["billing"],
        "TESSERA_BILLING_STRIPE_WEBHOOK_SECRETS": SECRET,
        "TESSERA_BILLING_CATALOG_FILE": str(harness.REPO / "deploy" / "catalog.json"),
        # Every request comes from 127.0.0.1: the per-IP limits would throttle the whole
        # run. The limiters still run (their Redis round trip is paid); only the ceilings rise.
        "TESSERA_BILLING_WEBHOOK_RATE_LIMIT": ROOMY,
        "TESSERA_AUTH_DATABASE_URL": databases["auth"],
        "TESSERA_AUTH_SMTP_HOST": "127.0.0.1",
        "TESSERA_AUTH_SMTP_PORT": str(smtp),
        "TESSERA_LICENSING_DATABASE_URL": databases["licensing"],
        "TESSERA_LICENSING_AUTH_JWKS_URL": auth + "/.well-known/jwks.json",
        "TESSERA_LICENSING_RATE_PER_IP": "100000000",
        "TESSERA_LICENSING_RATE_PER_KEY": "100000000",
    }


# --- warm-up ----------------------------------------------------------------------------------


async def eventually(what: str, probe: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


async def warm_up(
    run: str,
    count: int,
    billing: str,
    licensing: str,
    dbs: dict[str, asyncpg.Pool],
    env: dict[str, str],
) -> list[str]:
    """Buy `count` licenses through billing's webhook, activate one machine on each, and
    validate each once: the validation pool, with caches and connection pools warm."""
    purchases = signed_purchases("warm", count, run, 0, 0)
    pool = Pool(billing, 16)
    host = billing.removeprefix("http://")
    answers = await asyncio.gather(
        *(pool.request(webhook(host, "/webhooks/stripe", p)) for p in purchases)
    )
    pool.close()
    refused = [status for status, _ in answers if not 200 <= status < 300]
    if refused:
        raise RuntimeError(f"warm-up purchases refused: {Counter(refused)}")
    like = f"warm%.{run}@example.com"

    async def issued() -> bool:
        found = await dbs["licensing"].fetchval(
            "SELECT count(*) FROM licenses WHERE email LIKE $1", like
        )
        return bool(found >= count)

    await eventually(f"{count} warm-up licenses", issued, 180)
    # The key-encryption key the service runs with (the dev default unless --env sets one).
    kek = env.get("TESSERA_LICENSING_KEY_ENCRYPTION_KEY")
    settings = LicensingSettings(key_encryption_key=kek) if kek else LicensingSettings()
    sealer = Sealer(settings.kek)
    rows = await dbs["licensing"].fetch("SELECT key_sealed FROM licenses WHERE email LIKE $1", like)
    keys = [reveal_key(sealer, row) for row in rows]
    desk = Pool(licensing, 16)
    lic_host = licensing.removeprefix("http://")
    steps = (
        ("/v1/licenses/activate", b'"code":"VALID"'),
        ("/v1/licenses/validate", b'"valid":true'),
    )
    for path, code in steps:
        answers = await asyncio.gather(
            *(
                desk.request(
                    post(lic_host, path, desktop_body(key=k, fingerprint=warm_fingerprint(k)))
                )
                for k in keys
            )
        )
        wrong = [a for a in answers if a[0] != 200 or code not in a[1]]
        if wrong:
            raise RuntimeError(f"warm-up {path} failed: {wrong[0]!r}")
    desk.close()

    # Auth's welcome mails for the warm-up go out before the clock starts.
    async def mailed() -> bool:
        pending = await dbs["auth"].fetchval(
            "SELECT count(*) FROM email_outbox WHERE status = 'pending'"
        )
        users = await dbs["auth"].fetchval("SELECT count(*) FROM users")
        return bool(pending == 0 and users >= count)

    with contextlib.suppress(RuntimeError):
        await eventually("auth's warm-up mails", mailed, 120)
    return keys


# --- end to end: NATS ---------------------------------------------------------------------------


async def declare_webhooks_stream(nats_url: str, ns: Namespace) -> None:
    """Auth consumes webhooks' stream and waits for it to exist; webhooks is not run here,
    so stand in for its owner."""
    nc = await nats.connect(nats_url)
    try:
        await ensure_stream(nc.jetstream(), stream_config(WEBHOOKS, ns))
    finally:
        await nc.close()


class Watcher:
    """Core NATS subscriptions on order.paid and license.issued; each message is kept raw
    with its arrival time and parsed only after the run, so watching costs the generator's
    event loop next to nothing."""

    def __init__(self) -> None:
        self.paid: list[tuple[float, bytes]] = []
        self.issued: list[tuple[float, bytes]] = []
        self.nc: Any = None

    async def start(self, nats_url: str, ns: Namespace) -> None:
        self.nc = await nats.connect(nats_url)

        async def on_paid(msg: Any) -> None:
            self.paid.append((time.perf_counter(), msg.data))

        async def on_issued(msg: Any) -> None:
            self.issued.append((time.perf_counter(), msg.data))

        await self.nc.subscribe(ns.subject(OrderPaid.subject), cb=on_paid)
        await self.nc.subscribe(ns.subject(LicenseIssued.subject), cb=on_issued)
        await self.nc.flush()

    async def stop(self) -> None:
        if self.nc is not None:
            await self.nc.close()


@dataclass
class Matched:
    """What the events say, per purchase."""

    paid_at: dict[int, float] = field(default_factory=dict)  # purchase n -> first order.paid
    issued_at: dict[int, float] = field(default_factory=dict)  # n -> first license.issued
    order_of: dict[UUID, int] = field(default_factory=dict)
    issued_events: dict[UUID, set[UUID]] = field(default_factory=dict)  # order -> ids
    deliveries: int = 0  # license.issued messages seen (a relay re-publish shows here)
    _paid_seen: int = 0
    _issued_seen: int = 0
    _orphans: list[tuple[float, LicenseIssued]] = field(default_factory=list)


def match(watcher: Watcher, matched: Matched, purchase_of: dict[str, int]) -> None:
    """Fold the messages that arrived since the last call into `matched`."""
    for at, data in watcher.paid[matched._paid_seen :]:
        paid = OrderPaid.model_validate_json(data)
        n = purchase_of.get(paid.email.lower())
        if n is not None:
            matched.order_of.setdefault(paid.order_id, n)
            matched.paid_at.setdefault(n, at)
    matched._paid_seen = len(watcher.paid)
    fresh = [
        (at, LicenseIssued.model_validate_json(data))
        for at, data in watcher.issued[matched._issued_seen :]
    ]
    matched._issued_seen = len(watcher.issued)
    waiting, matched._orphans = matched._orphans + fresh, []
    for at, issued in waiting:
        n = matched.order_of.get(issued.order_id) if issued.order_id else None
        if n is None:  # its order.paid not folded in yet (or not a measured purchase)
            matched._orphans.append((at, issued))
            continue
        matched.deliveries += 1
        matched.issued_events.setdefault(issued.order_id, set()).add(issued.event_id)  # type: ignore[arg-type]
        matched.issued_at.setdefault(n, at)


# --- integrity after the drain -----------------------------------------------------------------


async def integrity(dbs: dict[str, asyncpg.Pool], run: str, mix: Mix) -> dict[str, Any]:
    """Count in the databases: every accepted purchase is one order in billing, and each
    order has exactly `seats` licenses in licensing."""
    sent = len(mix.accepted)
    accepted_n = sum(mix.accepted)
    orders = await dbs["billing"].fetch(
        "SELECT id, email, seats, status FROM orders WHERE starts_with(checkout_session_id, $1)",
        f"cs_buy_{run}_",
    )
    licenses = await dbs["licensing"].fetch(
        "SELECT order_id, count(*) AS n FROM licenses WHERE email LIKE $1 GROUP BY order_id",
        f"buy%.{run}@example.com",
    )
    per_order = {row["order_id"]: int(row["n"]) for row in licenses}
    by_email = Counter(row["email"] for row in orders)
    lost = [r["email"] for r in orders if per_order.get(r["id"], 0) < r["seats"]]
    doubled = [r["email"] for r in orders if per_order.get(r["id"], 0) > r["seats"]]
    statuses = await dbs["billing"].fetch(
        "SELECT status, count(*) AS n FROM stripe_events GROUP BY status ORDER BY status"
    )
    mails = await dbs["auth"].fetch(
        "SELECT status, count(*) AS n FROM email_outbox WHERE recipient LIKE $1 GROUP BY status",
        f"buy%.{run}@example.com",
    )
    return {
        "purchases_sent": sent,
        "purchases_accepted_2xx": accepted_n,
        "billing_orders": len(orders),
        "billing_orders_paid": sum(1 for r in orders if r["status"] == "paid"),
        "orders_per_email_max": max(by_email.values(), default=0),
        "licenses": sum(per_order.values()),
        "orders_licensed": sum(1 for r in orders if per_order.get(r["id"], 0) >= r["seats"]),
        "lost": len(lost) + max(0, accepted_n - len(orders)),
        "doubled": len(doubled) + sum(n - 1 for n in by_email.values() if n > 1),
        "licenses_without_order": sum(1 for o in per_order if o not in {r["id"] for r in orders}),
        "billing_stripe_events_by_status": {r["status"]: int(r["n"]) for r in statuses},
        "auth_welcome_mails_by_status": {r["status"]: int(r["n"]) for r in mails},
    }


async def drain(watcher: Watcher, mix: Mix, purchase_of: dict[str, int], timeout: float) -> Matched:
    """Wait (at most `timeout`) until every accepted purchase's license was seen."""
    matched = Matched()
    wanted = sum(mix.accepted)
    deadline = time.monotonic() + timeout
    while True:
        match(watcher, matched, purchase_of)
        if len(matched.issued_at) >= wanted or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1)  # a late duplicate would show within a relay pass
    match(watcher, matched, purchase_of)
    return matched


def end_to_end(mix: Mix, matched: Matched, rate: float) -> dict[str, Any]:
    def scheduled(n: int) -> float:
        return mix.start + n / rate

    to_paid = [(at - scheduled(n)) * 1000 for n, at in matched.paid_at.items()]
    to_issued = [(at - scheduled(n)) * 1000 for n, at in matched.issued_at.items()]
    paid_to_issued = [
        (at - matched.paid_at[n]) * 1000
        for n, at in matched.issued_at.items()
        if n in matched.paid_at
    ]
    window_end = mix.start + mix.duration
    in_window = sum(1 for at in matched.issued_at.values() if at <= window_end)
    # Sustained: licenses issued in the second half of the window, when the pipeline is
    # full; a backlog that keeps growing shows as a rate below the send rate.
    half = mix.start + mix.duration / 2
    second_half = sum(1 for at in matched.issued_at.values() if half < at <= window_end)
    last = max(matched.issued_at.values(), default=mix.start)

    horizon = max([last, *mix.purchase.done_at, *matched.paid_at.values()])

    def per_second(times: Sequence[float]) -> list[int]:
        counts = Counter(int(at - mix.start) for at in times if at >= mix.start)
        return [counts.get(s, 0) for s in range(int(horizon - mix.start) + 1)]

    return {
        "webhook_to_order_paid": {"n": len(to_paid), **percentiles(to_paid)},
        "order_paid_to_license_issued": {"n": len(paid_to_issued), **percentiles(paid_to_issued)},
        "webhook_to_license_issued": {"n": len(to_issued), **percentiles(to_issued)},
        "licenses_issued_in_window": in_window,
        "licenses_per_s_in_window": in_window / mix.duration,
        "licenses_per_s_second_half": second_half / (mix.duration / 2),
        "backlog_at_window_end": sum(mix.accepted) - in_window,
        "last_license_after_window_s": max(0.0, last - window_end),
        "issued_event_deliveries": matched.deliveries,
        "orders_with_more_than_one_issued_event_id": sum(
            1 for ids in matched.issued_events.values() if len(ids) > 1
        ),
        "timeline_per_second": {
            "purchases_answered_2xx": per_second(mix.purchase.done_at),
            "orders_paid": per_second(list(matched.paid_at.values())),
            "licenses_issued": per_second(list(matched.issued_at.values())),
        },
    }


# --- the report --------------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "—" if value is None else (f"{value:.1f}" if value >= 10 else f"{value:.2f}")


def statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def report(result: dict[str, Any]) -> str:
    lines = [
        f"### System load, {result['when']}",
        "",
        f"    {result['command']}",
        "",
        f"{result['machine']}. Services: "
        + ", ".join(f"{name} x{n}" for name, n in result["workers"].items())
        + f" {result.get('server', 'uvicorn')} worker(s).",
        "",
        "| flow | target /s | achieved /s | p50 ms | p99 ms | max ms | answers |",
        "|---|---|---|---|---|---|---|",
    ]
    base = result.get("baseline") or {}
    if base.get("closed_loop"):
        c = base["closed_loop"]
        lines.append(
            f"| bare FastAPI `POST /echo`, {c['client']} (ceiling) | — | {c['per_s']:,.0f} | "
            f"{ms(c['p50_ms'])} | {ms(c['p99_ms'])} | — | errors: {c['errors']} |"
        )
    for f in base.get("flows", []):
        lines.append(
            f"| bare FastAPI, open loop: {f['name']} | {f['target_per_s']:.0f} | "
            f"{f['achieved_per_s']:.1f} | {ms(f['p50_ms'])} | {ms(f['p99_ms'])} | "
            f"{ms(f['max_ms'])} | {statuses(f['statuses'])} |"
        )
    for f in result.get("flows", []):
        lines.append(
            f"| {f['name']} | {f['target_per_s']:.0f} | {f['achieved_per_s']:.1f} | "
            f"{ms(f['p50_ms'])} | {ms(f['p99_ms'])} | {ms(f['max_ms'])} | {statuses(f['statuses'])} |"
        )
    if base.get("flows"):
        lines += [
            "",
            f"Generator against the bare endpoint: {base['generator_cpu_pct_of_core']:.0f} % of "
            f"a core; sends fired late by p99 {ms(base['lateness_p99_ms'])} ms, "
            f"max {ms(base['lateness_max_ms'])} ms.",
        ]
    if "end_to_end" not in result:
        return "\n".join(lines)
    e2e = result["end_to_end"]
    lines += [
        "",
        "| end to end (from the scheduled send) | n | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for key, label in (
        ("webhook_to_order_paid", "webhook → `billing.order.paid.v1`"),
        ("order_paid_to_license_issued", "`order.paid` → `licensing.license.issued.v1`"),
        ("webhook_to_license_issued", "**webhook → `licensing.license.issued.v1`**"),
    ):
        v = e2e[key]
        lines.append(
            f"| {label} | {v['n']} | {ms(v['p50_ms'])} | {ms(v['p99_ms'])} | {ms(v['max_ms'])} |"
        )
    i = result["integrity"]
    lines += [
        "",
        f"Purchases: {i['purchases_sent']} sent, {i['purchases_accepted_2xx']} accepted (2xx); "
        f"{e2e['licenses_issued_in_window']} licensed within the window "
        f"({e2e['licenses_per_s_in_window']:.1f}/s; "
        f"{e2e['licenses_per_s_second_half']:.1f}/s in its second half), backlog {e2e['backlog_at_window_end']} "
        f"when sending stopped, last license {e2e['last_license_after_window_s']:.1f} s after. "
        f"Billing orders {i['billing_orders']} ({i['billing_orders_paid']} paid), "
        f"licenses {i['licenses']} on {i['orders_licensed']} orders: "
        f"**lost {i['lost']}, doubled {i['doubled']}**. "
        f"license.issued deliveries {e2e['issued_event_deliveries']}. "
        f"Auth welcome mails: {statuses(i['auth_welcome_mails_by_status']) or 'none'}.",
        "",
        "| CPU during the window | CPU s | % of one core |",
        "|---|---|---|",
    ]
    cpu = result["cpu"]
    for name, seconds in sorted(cpu["groups_cpu_s"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {seconds:.1f} | {100 * seconds / cpu['window_s']:.0f} % |")
    lines += [
        f"| **machine** ({cpu['cores']} cores) | {cpu['machine_busy_cpu_s']:.1f} | "
        f"{cpu['machine_busy_pct']:.0f} % of all cores |",
        "",
        f"Generator (this process, event loop): {result['generator']['cpu_pct_of_core']:.0f} % of a "
        f"core during the mix; sends fired late by p99 {ms(result['generator']['lateness_p99_ms'])} ms, "
        f"max {ms(result['generator']['lateness_max_ms'])} ms.",
    ]
    for name, profile in result.get("profiles", {}).items():
        lines += [
            "",
            f"Profile of {name} ({profile['samples']} samples, py-spy, {profile['file']}):",
            "",
            "| on CPU in (self) | % | under our function (inclusive) | % |",
            "|---|---|---|---|",
        ]
        for (own, own_pct), (inc, inc_pct) in zip(
            profile["self"], profile["inclusive"], strict=False
        ):
            lines.append(f"| `{own}` | {own_pct:.1f} | `{inc}` | {inc_pct:.1f} |")
    lines += [
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    for t in result["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {'met' if t['met'] else '**missed**'} |")
    return "\n".join(lines)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    i, e2e = result["integrity"], result["end_to_end"]
    validate = next(f for f in result["flows"] if "validate" in f["name"])
    rate = e2e["licenses_per_s_second_half"]
    p99 = e2e["webhook_to_license_issued"]["p99_ms"]
    v99 = validate["p99_ms"]
    return [
        {
            "target": f"≥ {TARGET_PURCHASES_PER_S:.0f} purchases/s licensed, sustained",
            "measured": f"{rate:.1f}/s licensed in the window's second half, "
            f"backlog {e2e['backlog_at_window_end']} at its end",
            "met": rate >= TARGET_PURCHASES_PER_S * 0.99,
        },
        {
            "target": "none lost or doubled",
            "measured": f"lost {i['lost']}, doubled {i['doubled']}",
            "met": i["lost"] == 0
            and i["doubled"] == 0
            and i["purchases_accepted_2xx"] == i["purchases_sent"],
        },
        {
            "target": f"webhook → license p99 < {TARGET_E2E_P99_MS:.0f} ms",
            "measured": f"{ms(p99)} ms",
            "met": p99 is not None and p99 < TARGET_E2E_P99_MS,
        },
        {
            "target": f"validate p99 < {TARGET_VALIDATE_P99_MS:.0f} ms while purchases flow",
            "measured": f"{ms(v99)} ms",
            "met": v99 is not None and v99 < TARGET_VALIDATE_P99_MS,
        },
    ]


# --- the run ------------------------------------------------------------------------------------


async def baseline(args: argparse.Namespace, run: str, rates: dict[str, float]) -> dict[str, Any]:
    """The bare FastAPI endpoint: its ceiling (closed loop, wrk when installed), then the
    very mix of this run sent to its /echo by this generator: the floor that uvicorn and the
    generator alone put under every latency below."""
    out: dict[str, Any] = {}
    with harness.uvicorn_process("baseline:app", harness.free_port()) as url:
        filler = signed_purchases("fill", 1, run, 0, 0)[0][0]
        if harness.wrk_available():
            closed = harness.drive_wrk(
                "bare", url, "POST", "/echo", [("", filler)],
                connections=args.baseline_connections, duration=args.baseline_seconds,
            )  # fmt: skip
            client = f"wrk, {args.baseline_connections} connections"
        else:
            closed = await harness.drive(
                "bare", url, lambda c, n: c.post("/echo", content=filler),
                concurrency=args.baseline_connections, duration=args.baseline_seconds,
            )  # fmt: skip
            client = f"httpx, {args.baseline_connections} connections"
        out["closed_loop"] = {
            "client": client, "per_s": closed.rps, "p50_ms": closed.percentile(50),
            "p99_ms": closed.percentile(99), "errors": closed.errors,
        }  # fmt: skip
        fake_keys = [f"BENCH-{n:05d}-XXXXX-XXXXX-XXXXX" for n in range(args.licenses)]
        plan = build_plan(
            run, fake_keys, rates, args.baseline_seconds, billing=url, licensing=url, echo=True
        )
        pools = {
            name: Pool(url, args.max_connections) for name in ("purchase", "validate", "activate")
        }
        names = {
            k: f"{k}-shaped `POST /echo`"
            for k in ("purchase", "validate", "activate", "deactivate")
        }
        mix = await run_mix(plan, pools, names, rates, args.baseline_seconds, args.drain_timeout)
        for pool in pools.values():
            pool.close()
    out["flows"] = [f.summary(mix.start, mix.duration) for f in mix.flows()]
    out["generator_cpu_pct_of_core"] = 100 * mix.cpu_seconds / mix.duration
    lateness = percentiles([v for f in mix.flows() for v in f.lateness])
    out["lateness_p99_ms"], out["lateness_max_ms"] = lateness["p99_ms"], lateness["max_ms"]
    return out


def parse_workers(values: list[str]) -> dict[str, int]:
    workers = dict.fromkeys(SERVICES, 1)
    for value in values:
        name, _, count = value.rpartition("=")
        for svc in [name] if name else SERVICES:
            if svc not in workers:
                raise SystemExit(f"--workers: unknown service {svc!r} (one of {SERVICES})")
            workers[svc] = int(count)
    return workers


async def main(args: argparse.Namespace) -> dict[str, Any]:
    run = secrets.token_hex(3)
    rates = {
        "purchase": args.purchase_rate,
        "validate": args.validate_rate,
        "activate": args.activate_rate,
    }
    workers = parse_workers(args.workers)
    load_before = os.getloadavg()
    infra = bring_up(harness.REPO / ".dev" / "bench" / "infra")
    ns = Namespace(f"load{run}")
    names = {svc: f"load_{svc}_{run}" for svc in SERVICES}
    database_urls = {svc: with_database(infra.postgres.url, db) for svc, db in names.items()}
    logs = harness.REPO / ".dev" / "bench" / "system_load" / run
    logs.mkdir(parents=True, exist_ok=True)
    print(f"run {run}: namespace {ns.prefix}, service logs in {logs}", flush=True)
    result: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "uv run python " + shlex.join(["bench/system_load.py", *sys.argv[1:]]),
        "machine": f"{os.cpu_count()} cores, load average before the run "
        + " / ".join(f"{v:.2f}" for v in load_before),
        "workers": workers,
        "server": harness.SERVER,
        "config": {**vars(args), "rates": rates},
    }
    dbs: dict[str, asyncpg.Pool] = {}
    sink: subprocess.Popen[bytes] | None = None
    watcher = Watcher()
    try:
        if args.baseline_seconds > 0:
            print("bare FastAPI: closed loop, then this run's mix at its rates …", flush=True)
            result["baseline"] = await baseline(args, run, rates)
        if args.baseline_only:
            return result
        for db in names.values():
            await ensure_database(infra.postgres.url, db)
        await declare_webhooks_stream(infra.nats.url, ns)
        smtp_port = harness.free_port()
        sink = start_sink(smtp_port, logs)
        ports = {svc: harness.free_port() for svc in SERVICES}
        env = service_env(infra, ns, database_urls, ports, smtp_port)
        env.update(dict(item.split("=", 1) for item in args.env))
        with contextlib.ExitStack() as stack:
            procs = {
                svc: stack.enter_context(service(svc, ports[svc], env, workers[svc], logs))
                for svc in SERVICES
            }
            for svc, url in database_urls.items():
                dbs[svc] = await asyncpg.create_pool(asyncpg_dsn(url), min_size=1, max_size=2)
            print(f"warm-up: {args.licenses} purchases, one machine each …", flush=True)
            keys = await warm_up(
                run, args.licenses, procs["billing"].url, procs["licensing"].url, dbs, env
            )
            plan = build_plan(
                run, keys, rates, args.duration,
                billing=procs["billing"].url, licensing=procs["licensing"].url, echo=False,
            )  # fmt: skip
            purchase_of = {email("buy", n, run): n for n in range(len(plan.purchases))}
            await watcher.start(infra.nats.url, ns)
            pools = {
                "purchase": Pool(procs["billing"].url, args.max_connections),
                "validate": Pool(procs["licensing"].url, args.max_connections),
                "activate": Pool(procs["licensing"].url, args.max_connections),
            }
            roots = {
                f"{svc} ({workers[svc]} worker{'s' * (workers[svc] > 1)})": (p.process.pid, True)
                for svc, p in procs.items()
            }
            # The services are this process's children: count it alone.
            roots["load generator (this process)"] = (os.getpid(), False)
            roots["smtp sink (bench)"] = (sink.pid, True)
            print(
                f"mix for {args.duration:.0f} s: {rates['purchase']:.0f} purchases/s, "
                f"{rates['validate']:.0f} validations/s, {rates['activate']:.0f} activations/s …",
                flush=True,
            )
            profilers = start_profilers(procs, logs) if args.profile else {}
            for name, profiler in profilers.items():
                roots[f"py-spy on {name} (profiling)"] = (profiler.pid, False)
            before = cpu_snapshot()
            mix = await run_mix(
                plan, pools,
                {
                    "purchase": "billing `POST /webhooks/stripe`",
                    "validate": "licensing `POST /v1/licenses/validate`",
                    "activate": "licensing `POST /v1/licenses/activate` (new machine)",
                    "deactivate": "licensing `POST /v1/licenses/deactivate` (after each activate)",
                },
                rates, args.duration, args.drain_timeout,
            )  # fmt: skip
            after = cpu_snapshot()
            if profilers:
                result["profiles"] = stop_profilers(profilers, logs)
            for pool in pools.values():
                pool.close()
            print("draining: waiting for every accepted purchase's license …", flush=True)
            matched = await drain(watcher, mix, purchase_of, args.drain_timeout)
            lateness = percentiles([v for f in mix.flows() for v in f.lateness])
            result.update(
                flows=[f.summary(mix.start, mix.duration) for f in mix.flows()],
                generator={
                    "cpu_s": mix.cpu_seconds,
                    "cpu_pct_of_core": 100 * mix.cpu_seconds / (after.at - before.at),
                    "lateness_p99_ms": lateness["p99_ms"],
                    "lateness_max_ms": lateness["max_ms"],
                },
                cpu=cpu_used(before, after, roots),
                end_to_end=end_to_end(mix, matched, rates["purchase"]),
                integrity=await integrity(dbs, run, mix),
            )
            result["targets"] = targets(result)
            for pool in dbs.values():
                await pool.close()
            dbs.clear()
    finally:
        await watcher.stop()
        for pool in dbs.values():
            await pool.close()
        if sink is not None:
            stop(sink)
        await forget_redis(infra.redis.url, ns)
        await harness.tear_down(infra, list(names.values()), ns.prefix)
    return result


async def forget_redis(url: str, ns: Namespace) -> None:
    """The namespace's Redis keys (rate-limit windows, caches): gone with the run."""
    redis = Redis.from_url(url)
    try:
        batch = [key async for key in redis.scan_iter(match=f"tessera:{ns.prefix}:*", count=1000)]
        for at in range(0, len(batch), 1000):
            await redis.delete(*batch[at : at + 1000])
    finally:
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=60, help="seconds of mixed load")
    parser.add_argument("--purchase-rate", type=float, default=200, help="webhooks/s")
    parser.add_argument("--validate-rate", type=float, default=400, help="validations/s")
    parser.add_argument(
        "--activate-rate", type=float, default=10, help="activations/s (each then deactivated)"
    )
    parser.add_argument("--licenses", type=int, default=300, help="warm licenses to validate")
    parser.add_argument(
        "--workers", action="append", default=[], metavar="[SERVICE=]N",
        help="uvicorn workers: N for every service, or SERVICE=N (repeatable); default 1",
    )  # fmt: skip
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE",
        help="extra environment for the services, e.g. TESSERA_OTEL_CLIENT_SPANS=false",
    )  # fmt: skip
    parser.add_argument("--baseline-seconds", type=float, default=10, help="0: skip the baseline")
    parser.add_argument("--baseline-connections", type=int, default=32)
    parser.add_argument(
        "--baseline-only", action="store_true", help="measure the bare endpoint (and so the "
        "generator's own cost at these rates) without starting the services",
    )  # fmt: skip
    parser.add_argument(
        "--max-connections", type=int, default=256, help="in flight per flow before requests queue"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=120, help="bound on waiting for the backlog"
    )
    parser.add_argument(
        "--profile", action="store_true",
        help="sample each service with py-spy during the mix (needs py-spy on PATH)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    harness.add_server_option(parser)
    arguments = parser.parse_args()
    harness.use_server(arguments.server)
    outcome = uvloop.run(main(arguments))
    print()
    print(report(outcome))
    if arguments.json:
        arguments.json.write_text(json.dumps(outcome, indent=2, default=str))
        print(f"\nwritten to {arguments.json}")
