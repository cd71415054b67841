"""Usage metering's hot path, `POST /v1/usage` with a secret key, under load, beside a bare
FastAPI endpoint measured the same way in the same run (docs/performance.md, "Usage"):

- **rounds**, alternating: wrk on the bare `POST /echo` (the same body and headers), on
  records spread over `--customers` customers, and on records of one hot customer (every
  record takes the same counter row's lock, so they commit one after the other). Every
  record has its own idempotency key (a replay would be cheaper);
- **half load**, open loop: records spread over the customers at half the median spread
  throughput, latency counted from each request's scheduled start;
- **at the limit**: `--clients` (64) concurrent clients send three times the limit of one
  customer; exactly `--limit` are accepted, the rest are 403, and Postgres agrees (the
  counter, the record rows, and every counter equal to its records' sum);
- **where the time goes** (`--profile`): py-spy samples the service during one more spread
  round and the share of its samples in each step is printed, with the CPU per request.

    uv run python bench/usage.py --duration 10 --rounds 5

The service runs in its own process on the kernel's uvicorn server (uvloop, httptools, one
worker) on the real Postgres, Redis and NATS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import harness
import httpx
import nats
import uvloop
from licensing_validate import RawConnection

from tessera.devstack.infra import bring_up
from tessera.shared.api_keys import generate
from tessera.shared.db.pool import drop_database, ensure_database, with_database
from tessera.shared.events.auth import ApiKeyChanged
from tessera.shared.events.billing import SubscriptionGrants, SubscriptionStarted
from tessera.shared.events.topology import APIKEYS, AUTH, BILLING, SELLERS, Namespace
from tessera.shared.messaging import ensure_stream, stream_config

SELLER = uuid.UUID("0193a3c0-0000-7000-8000-0000000005ed")
MODE = "test"  # a test key: no platform plan to stand in for
FEATURE = "api_calls"
BIG = 10**12  # the spread and hot customers' limit: never reached, but checked on every record
RATE = 10**9  # their per-minute rate: the limiter decides every record, never refuses one


@dataclass(frozen=True)
class Setup:
    secret: str
    spread: list[str]  # customers' ids
    hot: str
    at_limit: str


def subscription(account: uuid.UUID, limit: int, rate: int | None) -> SubscriptionStarted:
    now = datetime.now(UTC)
    grants = SubscriptionGrants(quotas={FEATURE: {"limit": limit}}, rate_per_minute=rate)
    return SubscriptionStarted(
        seller_id=SELLER, mode=MODE, subscription_id=f"sub_{account.hex[:16]}", sequence=1,
        account_id=account, product="bench", tier=f"t{limit}", grants=grants,
        interval="month", status="active", current_period_start=now - timedelta(days=1),
        current_period_end=now + timedelta(days=29), started_at=now - timedelta(days=1),
    )  # fmt: skip


async def seed(
    nats_url: str, ns: Namespace, db_url: str, url: str, args: argparse.Namespace
) -> Setup:
    """A secret key as auth would publish it, and the customers' subscriptions as billing
    would announce them; returns once licensing accepts the key and holds every tier."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    issued = generate("secret", MODE)
    key = ApiKeyChanged(
        seller_id=SELLER, mode=MODE, key_id=uuid.uuid4(), key_hash=issued.hash_hex,
        kind="secret", status="active", version=1,
    )  # fmt: skip
    await js.publish(ns.subject(key.publish_subject()), key.to_json(), stream=ns.stream(APIKEYS))
    spread = [uuid.uuid4() for _ in range(args.customers)]
    hot, at_limit = uuid.uuid4(), uuid.uuid4()
    events = [subscription(a, BIG, RATE) for a in (*spread, hot)]
    events.append(subscription(at_limit, args.limit, None))
    for event in events:
        await js.publish(
            ns.subject(event.subject), event.to_json(), stream=ns.stream(BILLING),
            headers={"Nats-Msg-Id": str(event.event_id)},
        )  # fmt: skip
    await nc.close()
    conn = await asyncpg.connect(db_url)
    try:
        deadline = time.monotonic() + 120
        while await conn.fetchval("SELECT count(*) FROM entitlements") < len(events):
            if time.monotonic() > deadline:
                raise RuntimeError("the subscriptions were not applied in time")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    auth = {"authorization": f"Bearer {issued.plaintext}"}
    probe = {"customer": str(hot), "feature": FEATURE}
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        deadline = time.monotonic() + 60
        while (
            r := await client.post("/v1/usage/check", json=probe, headers=auth)
        ).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"licensing never accepted the key: {r.status_code} {r.text}")
            await asyncio.sleep(0.1)
    return Setup(issued.plaintext, [str(a) for a in spread], str(hot), str(at_limit))


# Each request a new idempotency key (the round's prefix and wrk's own counter: one thread),
# its customer taken in turn from the list.
WRK_SCRIPT = """
local customers = {%s}
local prefix = "%s"
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  i = i + 1
  local body = '{"customer":"' .. customers[(i %% #customers) + 1] ..
    '","feature":"%s","idempotency_key":"' .. prefix .. i .. '"}'
  return wrk.format(nil, "%s", nil, body)
end
"""


def wrk(
    name: str, url: str, path: str, customers: list[str], secret: str, args: argparse.Namespace,
    duration: float | None = None,
) -> harness.Result:  # fmt: skip
    """Closed loop with wrk (one thread, `--concurrency` connections)."""
    quoted = ",".join(f'"{c}"' for c in customers)
    prefix = f"{name.split()[0]}-{secrets.token_hex(6)}-"
    seconds = duration or args.duration
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "usage.lua"
        script.write_text(WRK_SCRIPT % (quoted, prefix, secret, FEATURE, path))
        out = subprocess.run(
            ["wrk", "-t1", f"-c{args.concurrency}", f"-d{int(seconds)}s", "--latency",
             "-s", str(script), url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    return harness.parse_wrk(name, out, seconds)


@dataclass(frozen=True)
class Round:
    result: harness.Result
    cpu_us: float  # the server's CPU per request


def measure(
    name: str, url: str, path: str, customers: list[str], secret: str, args: argparse.Namespace
) -> Round:
    before = harness.server_cpu_seconds(url)
    result = wrk(name, url, path, customers, secret, args)
    used = harness.server_cpu_seconds(url) - before
    return Round(result, used / max(result.requests + result.errors, 1) * 1e6)


def record_body(customer: str, key: str) -> bytes:
    return json.dumps({"customer": customer, "feature": FEATURE, "idempotency_key": key}).encode()


async def open_loop(
    url: str, setup: Setup, rate: float, duration: float, connections: int = 64
) -> harness.Result:
    """Records arrive at a fixed `rate` whatever the answers do; latency counts from each
    one's scheduled start (queueing shows). Connections are opened and used before the clock
    starts, as in bench/licensing_validate.py."""
    host, port = url.removeprefix("http://").split(":")
    extra = f"Authorization: Bearer {setup.secret}\r\n"
    run = secrets.token_hex(6)
    idle: list[RawConnection] = []
    latencies: list[float] = []
    errors = 0

    async def connect() -> RawConnection:
        return RawConnection(*await asyncio.open_connection(host, int(port)))

    async def one(n: int, scheduled: float) -> None:
        nonlocal errors
        conn = idle.pop() if idle else await connect()
        body = record_body(setup.spread[n % len(setup.spread)], f"open-{run}-{n}")
        try:
            status, _ = await conn.post(host, "/v1/usage", body, extra)
        except (ConnectionResetError, asyncio.IncompleteReadError):
            conn = await connect()  # closed while idle past its keep-alive
            status, _ = await conn.post(host, "/v1/usage", body, extra)
        if status == 200:
            latencies.append((time.perf_counter() - scheduled) * 1000)
        else:
            errors += 1
        idle.append(conn)

    warm = [await connect() for _ in range(connections)]
    for n, conn in enumerate(warm):
        await conn.post(host, "/v1/usage", record_body(setup.hot, f"warm-{run}-{n}"), extra)
    idle.extend(warm)
    tasks = []
    start = time.perf_counter()
    for n in range(int(rate * duration)):
        scheduled = start + n / rate
        if (delay := scheduled - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for conn in idle:
        conn.writer.close()
    return harness.Result(
        f"usage open loop @ {rate:.0f}/s", len(latencies), errors, elapsed, latencies
    )


async def at_the_limit(url: str, db_url: str, setup: Setup, args: argparse.Namespace) -> str:
    """`--clients` concurrent clients on one customer whose limit is `--limit`, three times
    the limit of records between them: exactly the limit accepted, as Postgres counts it."""
    host, port = url.removeprefix("http://").split(":")
    extra = f"Authorization: Bearer {setup.secret}\r\n"
    total = args.limit * 3
    statuses: Counter[int] = Counter()
    sent = 0

    async def client() -> None:
        nonlocal sent
        conn = RawConnection(*await asyncio.open_connection(host, int(port)))
        while sent < total:
            sent += 1
            body = record_body(setup.at_limit, f"limit-{sent}")
            status, _ = await conn.post(host, "/v1/usage", body, extra)
            statuses[status] += 1
        conn.writer.close()

    await asyncio.gather(*(client() for _ in range(args.clients)))
    conn = await asyncpg.connect(db_url)
    try:
        counted = await conn.fetchval(
            "SELECT used FROM usage_counters WHERE account_id = $1", uuid.UUID(setup.at_limit)
        )
        rows = await conn.fetchval(
            "SELECT count(*) FROM usage_records WHERE account_id = $1", uuid.UUID(setup.at_limit)
        )
        unreconciled = await conn.fetchval(
            "SELECT count(*) FROM usage_counters c WHERE used <> (SELECT coalesce(sum(amount), 0)"
            " FROM usage_records r WHERE r.seller_id = c.seller_id AND r.mode = c.mode"
            " AND r.account_id = c.account_id AND r.feature = c.feature"
            " AND r.period_start = c.period_start AND r.reverted_at IS NULL)"
        )
    finally:
        await conn.close()
    exact = statuses[200] == counted == rows == args.limit and unreconciled == 0
    return (
        f"at the limit: {args.clients} clients, {total} records at a limit of {args.limit}: "
        f"answers {dict(sorted(statuses.items()))}; Postgres: counter {counted}, record rows "
        f"{rows}, counters off their records' sum {unreconciled} -> "
        + ("exact" if exact else "NOT EXACT")
    )


# What each step of a record is, by the frames py-spy sees (function name, file fragment):
# in front of the stack (usage/fast_path.py) or, for anything handed on, the route's.
STEPS: dict[str, tuple[tuple[str, str], ...]] = {
    "key check (the secret key in the key book)": (
        ("secret_seller", "usage/fast_path"),
        ("usage_auth", "usage/routes"),
    ),
    "request parsing and validation (body, RecordRequest)": (
        ("parsed", "usage/fast_path"),
        ("request_body_to_args", "fastapi"),
    ),
    "rate limiter (the caller's budget, the tier's rate: hit, standing)": (
        ("hit", "synced_limits"),
        ("standing", "synced_limits"),
        ("enforce", "synced_limits"),
    ),
    "meter lookup (the grants' read, meters())": (("_meter", "usage/service"),),
    "counting (one statement; from the first threshold on BEGIN, upsert, COMMIT)": (
        ("_count", "usage/service"),
    ),
    "serialisation (RecordOut, RateLimit fields, the JSON answer)": (
        ("rendered", "usage/fast_path"),
        ("ratelimit_headers", "usage/service"),
        ("__init__", "pydantic/main"),
        ("serialize_response", "fastapi/routing"),
        ("render", "starlette/responses"),
    ),
}
# All of the record's own work (the steps above and the glue between them); the rest of the
# samples are the server (parsing HTTP, writing answers) and what runs beside the requests.
RECORD = (("answer", "usage/fast_path"), ("record", "usage/routes"))
RECORD_LABEL = "the record's own work in all (the fast path's answer, or the route)"


def profile(url: str, setup: Setup, args: argparse.Namespace) -> list[str]:
    """py-spy on the service during one more spread round: the share of the service's
    samples in each step, and what that is in µs of the round's CPU per request."""
    spy = shutil.which("py-spy") or str(Path.home() / ".local" / "bin" / "py-spy")
    pid = harness.SERVERS[url]
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder) / "usage.txt"
        sampler = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "250",
             "--duration", str(int(args.duration)), "--output", str(raw), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1)  # attached before the load starts
        spread = measure("spread (profiled)", url, "/v1/usage", setup.spread, setup.secret, args)
        sampler.wait(timeout=args.duration + 30)
        stacks = [line.rsplit(" ", 1) for line in raw.read_text().splitlines() if line.strip()]
        kept = harness.REPO / ".dev" / "bench" / "usage" / f"profile-{pid}.txt"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(raw, kept)  # for a flame graph (e.g. inferno, flamegraph.pl)
    total = sum(int(n) for _, n in stacks)
    lines = [
        f"profile: {total} samples, {spread.result.rps:,.0f} records/s, "
        f"{spread.cpu_us:.0f} µs of server CPU per record (raw stacks: {kept})"
    ]
    for step, frames in (*STEPS.items(), (RECORD_LABEL, RECORD)):
        hits = sum(int(n) for stack, n in stacks if _in_step(stack, frames))
        share = hits / max(total, 1)
        lines.append(f"  {step}: {share:.1%} of samples, ≈ {share * spread.cpu_us:.0f} µs")
    return lines


def _in_step(stack: str, frames: tuple[tuple[str, str], ...]) -> bool:
    for frame in stack.split(";"):
        match = re.match(r"(\S+) \((.*)\)", frame)
        # py-spy names methods by class (`SyncedLimiter.hit`): match the function's own name.
        name = match.group(1).rsplit(".", 1)[-1] if match else ""
        if match and any(f == name and p in match.group(2) for f, p in frames):
            return True
    return False


async def main(args: argparse.Namespace) -> None:
    run = secrets.token_hex(3)
    infra = bring_up(harness.REPO / ".dev" / "bench" / "infra")
    database = f"bench_usage_{run}"
    await ensure_database(infra.postgres.url, database)
    db_url = with_database(infra.postgres.url, database)
    ns = Namespace(f"benchusage{run}")
    nc = await nats.connect(infra.nats.url)
    # Licensing reads billing's and auth's streams; neither runs here, so stand in for them.
    for stream in (BILLING, AUTH, APIKEYS, SELLERS):
        await ensure_stream(nc.jetstream(), stream_config(stream, ns))
    await nc.close()
    env = {
        **infra.env(),
        "TESSERA_NAMESPACE": ns.prefix,
        "TESSERA_LOG_LEVEL": "WARNING",
        "TESSERA_LICENSING_DATABASE_URL": db_url,
        "TESSERA_LICENSING_RATE_PER_USAGE_CALLER": "1000000000",
    }
    print(f"load average before: {os.getloadavg()}", flush=True)
    try:
        with (
            harness.uvicorn_process("baseline:app", harness.free_port()) as base_url,
            harness.uvicorn_process(
                "tessera.licensing.app:create_app()", harness.free_port(), env,
                log=harness.REPO / ".dev" / "bench" / "usage" / f"{run}.log",
            ) as url,
        ):  # fmt: skip
            print("seeding the key and the customers' subscriptions …", flush=True)
            setup = await seed(infra.nats.url, ns, db_url, url, args)
            if args.warmup:
                wrk("warm-up", base_url, "/echo", setup.spread, setup.secret, args, args.warmup)
                wrk("warm-up", url, "/v1/usage", setup.spread, setup.secret, args, args.warmup)
            rounds: list[tuple[Round, Round, Round]] = []
            for n in range(args.rounds):
                bare = measure(
                    "bare FastAPI POST /echo", base_url, "/echo", setup.spread, setup.secret, args
                )
                spread = measure(
                    "usage POST /v1/usage spread",
                    url,
                    "/v1/usage",
                    setup.spread,
                    setup.secret,
                    args,
                )
                hot = measure(
                    "usage POST /v1/usage hot", url, "/v1/usage", [setup.hot], setup.secret, args
                )
                rounds.append((bare, spread, hot))
                for r in (bare, spread, hot):
                    print(
                        f"round {n + 1}: {r.result.line()}   CPU {r.cpu_us:.0f} µs/req", flush=True
                    )
            half_rate = statistics.median(s.result.rps for _, s, _ in rounds) / 2
            half = await open_loop(url, setup, half_rate, args.duration)
            print(half.line(), flush=True)
            exact = await at_the_limit(url, db_url, setup, args)
            print(exact, flush=True)
            profiled = profile(url, setup, args) if args.profile else []
        print(f"load average after: {os.getloadavg()}")
        print(
            f"{args.customers} customers, wrk concurrency {args.concurrency}, "
            f"{args.duration:.0f} s each, {args.rounds} alternating rounds"
        )
        print(
            "| round | bare req/s | spread req/s | spread / bare | hot req/s | hot / bare "
            "| p50 / p99 ms bare | spread | hot | CPU µs/req bare | spread | hot |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for n, (b, s, h) in enumerate(rounds, 1):
            pct = lambda r: f"{r.result.percentile(50):.2f} / {r.result.percentile(99):.2f}"  # noqa: E731
            print(
                f"| {n} | {b.result.rps:,.0f} | {s.result.rps:,.0f} | {s.result.rps / b.result.rps:.0%} "
                f"| {h.result.rps:,.0f} | {h.result.rps / b.result.rps:.0%} | {pct(b)} | {pct(s)} "
                f"| {pct(h)} | {b.cpu_us:.0f} | {s.cpu_us:.0f} | {h.cpu_us:.0f} |"
            )
        ratio = statistics.median(s.result.rps / b.result.rps for b, s, _ in rounds)
        hot_ratio = statistics.median(h.result.rps / b.result.rps for b, _, h in rounds)
        errors = sum(r.result.errors for round_ in rounds for r in round_[1:])
        print(f"spread / bare, median of {args.rounds} rounds: {ratio:.0%} (goal >= 60 %)")
        print(f"hot / bare, median of {args.rounds} rounds: {hot_ratio:.0%}")
        print(f"records answered other than 200 in the rounds: {errors}")
        print(f"{half.line()}  (goal p99 < 10 ms)")
        print(exact)
        for line in profiled:
            print(line)
    finally:
        await drop_database(infra.postgres.url, database)
        nc = await nats.connect(infra.nats.url)
        js = nc.jetstream()
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(ns.prefix.upper() + "_"):
                await js.delete_stream(info.config.name)
        await nc.close()
        infra.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32, help="wrk's connections")
    parser.add_argument("--customers", type=int, default=500, help="the spread rounds' customers")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/spread/hot rounds")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds on each first")
    parser.add_argument("--limit", type=int, default=500, help="the at-the-limit customer's limit")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients at the limit")
    parser.add_argument("--profile", action="store_true", help="py-spy one more spread round")
    harness.add_server_option(parser)
    args = parser.parse_args()
    harness.use_server(args.server)
    uvloop.run(main(args))
