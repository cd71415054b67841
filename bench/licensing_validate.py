"""Licensing's desktop hot path under load — validate, heartbeat (answered from memory like
validate, its writes batched) and activate — beside a bare FastAPI endpoint measured the
same way in the same run, then validate at half its peak throughput (open loop, fixed
arrival rate) for the latency a busy day sees.

    uv run python bench/licensing_validate.py --duration 15 --concurrency 32

The service runs in its own uvicorn process (uvloop, httptools, one worker) on real
Postgres, Redis and NATS; the load generator is this process (asyncio + httpx).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import re
import secrets
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import harness
import httpx
import nats
import uvloop

from tessera.devstack.infra import bring_up
from tessera.licensing.licenses.service import reveal_key
from tessera.licensing.settings import LicensingSettings
from tessera.shared import stalls
from tessera.shared.db.pool import drop_database, ensure_database, with_database
from tessera.shared.events.billing import OrderPaid
from tessera.shared.events.topology import AUTH, BILLING, Namespace
from tessera.shared.keys import Sealer
from tessera.shared.messaging import ensure_stream, stream_config


async def seed(nats_url: str, ns: Namespace, db_url: str, orders: int) -> list[str]:
    """Buy `orders` licenses through the real event path; return their keys."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for _ in range(orders):
        paid = OrderPaid(
            order_id=uuid.uuid4(), account_id=uuid.uuid4(), email="bench@example.com",
            sku="chartgpt-lifetime", quantity=1, amount_total=9900, currency="usd",
            product="chartgpt", policy="chartgpt-lifetime", seats=1,
        )  # fmt: skip
        await js.publish(
            ns.subject(paid.subject), paid.to_json(), stream=ns.stream(BILLING),
            headers={"Nats-Msg-Id": str(paid.event_id)},
        )  # fmt: skip
    await nc.close()
    conn = await asyncpg.connect(db_url)
    try:
        deadline = time.monotonic() + 60
        while await conn.fetchval("SELECT count(*) FROM licenses") < orders:
            if time.monotonic() > deadline:
                raise RuntimeError("licenses were not issued in time")
            await asyncio.sleep(0.2)
        rows = await conn.fetch("SELECT key_sealed FROM licenses")
    finally:
        await conn.close()
    sealer = Sealer(LicensingSettings().kek)
    return [reveal_key(sealer, r) for r in rows]


WRK_SCRIPT = """
local bodies = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  return wrk.format(nil, "%s", nil, bodies[(i %% #bodies) + 1])
end
"""


def wrk(
    name: str, url: str, path: str, bodies: list[str], concurrency: int, duration: float
) -> harness.Result:
    """Closed loop with wrk (C, one thread): the generator costs far less CPU than the server,
    so the comparison is between servers, not load generators."""
    quoted = ",".join("[[" + b + "]]" for b in bodies)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (quoted, path))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{int(duration)}s", "--latency", "-s", script.name, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = {
        m.group(1): float(m.group(2)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(3)]
        for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", out, re.MULTILINE)
    }
    return WrkResult(
        name, int(rps * duration), int(errors.group(1)) if errors else 0, duration, [], latency
    )


class WrkResult(harness.Result):
    def __init__(
        self,
        name: str,
        requests: int,
        errors: int,
        seconds: float,
        lat: list[float],
        pct: dict[str, float],
    ) -> None:
        super().__init__(name, requests, errors, seconds, lat)
        object.__setattr__(self, "pct", pct)

    def percentile(self, p: float) -> float:
        return float(self.pct.get(str(int(p)), float("nan")))  # type: ignore[attr-defined]


JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Round:
    result: harness.Result
    cpu: float  # server CPU seconds per request


class RawConnection:
    """HTTP/1.1 keep-alive over a bare asyncio stream: a load generator that costs the CPU it
    shares with the server far less than httpx does."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, host: str, path: str, body: bytes, extra: str = "") -> tuple[int, bytes]:
        """`extra`: more header lines, each ending in CRLF (an Authorization, say)."""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("closed by the server (keep-alive timeout)")
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)


async def open_loop(
    base_url: str, keys: list[str], rate: float, duration: float, connections: int = 64
) -> harness.Result:
    """Requests arrive at a fixed `rate` whatever the answers do; latency counts from the
    scheduled start, so queueing shows (no coordinated omission).

    The generator shares the machine and must not add its own pauses to what it measures:
    its connections are opened and used once before the clock starts (a burst of connects
    would otherwise be timed as the server's), it keeps no per-request objects, and its
    garbage collector is off while it runs (a full collection in the generator stalls every
    request in flight and looks exactly like a server stall)."""
    host, port = base_url.removeprefix("http://").split(":")
    idle: list[RawConnection] = []
    latencies: list[float] = []
    by_second: dict[int, list[float]] = {}
    errors = 0
    in_flight = 0
    finished = asyncio.Event()

    async def connect() -> RawConnection:
        return RawConnection(*await asyncio.open_connection(host, int(port)))

    def body_for(n: int) -> bytes:
        key = keys[n % len(keys)]
        return json.dumps({"key": key, "fingerprint": f"bench-{key}", "nonce": str(n)}).encode()

    async def one(n: int, scheduled: float) -> None:
        nonlocal errors, in_flight
        conn = idle.pop() if idle else await connect()
        body = body_for(n)
        try:
            status, answer = await conn.post(host, "/v1/licenses/validate", body)
        except (ConnectionResetError, asyncio.IncompleteReadError):
            # uvicorn closed a connection that sat idle past its keep-alive: open another.
            conn = await connect()
            status, answer = await conn.post(host, "/v1/licenses/validate", body)
        if status == 200 and b'"valid":true' in answer:
            latency = (time.perf_counter() - scheduled) * 1000
            latencies.append(latency)
            by_second.setdefault(int(scheduled - start), []).append(latency)
        else:
            errors += 1
        idle.append(conn)
        in_flight -= 1
        if in_flight == 0 and scheduling_done:
            finished.set()

    warm = [await connect() for _ in range(connections)]
    for n, conn in enumerate(warm):
        await conn.post(host, "/v1/licenses/validate", body_for(n))
    idle.extend(warm)
    gc.collect()
    gc.disable()
    # The generator's own loop watched too: a hole in its sending is timed as the server's.
    logging.getLogger("tessera.stalls").setLevel(logging.ERROR)  # counted, not printed
    own = stalls.LoopWatch(interval=0.005, threshold=0.005)
    watching = asyncio.get_running_loop().create_task(own.run())
    scheduling_done = False
    start = time.perf_counter()
    try:
        for n in range(int(rate * duration)):
            scheduled = start + n / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            in_flight += 1
            asyncio.get_running_loop().create_task(one(n, scheduled))
        scheduling_done = True
        if in_flight:
            await finished.wait()
    finally:
        gc.enable()
        watching.cancel()
    elapsed = time.perf_counter() - start
    for conn in idle:
        conn.writer.close()
    worst = sorted(by_second.items(), key=lambda item: -max(item[1]))[:3]
    print(
        "  open loop, worst seconds (second: max ms, requests over 10 ms): "
        + ", ".join(f"{sec}: {max(v):.0f} ms, {sum(x > 10 for x in v)}" for sec, v in worst),
        flush=True,
    )
    print(
        f"  generator: {own.stalls} loop stalls of 5 ms or more, worst {own.worst * 1000:.0f} ms "
        f"(over all: its cpu {own.cpu * 1000:.0f} ms, waiting for a CPU {own.runq * 1000:.0f} "
        f"ms, blocked {own.blocked * 1000:.0f} ms)",
        flush=True,
    )
    return harness.Result(
        f"validate open loop @ {rate:.0f}/s", len(latencies), errors, elapsed, latencies
    )


def server_stalls(log: Path, since: float, until: float) -> str:
    """What the service's stall log (`tessera.shared.stalls`) says about [since, until]
    (wall-clock seconds): how often its loop was held, and where that time went (its own
    CPU, waiting for a CPU, blocked) and how much of it was garbage collection."""
    stalls: list[dict[str, Any]] = []
    pauses: list[dict[str, Any]] = []
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("message") not in ("loop.stall", "gc.pause"):
            continue
        when = datetime.strptime(record["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if since <= when <= until:
            (stalls if record["message"] == "loop.stall" else pauses).append(record)
    if not stalls:
        return "  server: no event-loop stall at or over the threshold"
    worst = max(stalls, key=lambda r: r["late_ms"])

    def total(name: str) -> float:
        return sum(r.get(name) or 0 for r in stalls)

    by_gen = Counter(r["generation"] for r in pauses)
    worst_gc = {g: max(r["cpu_ms"] for r in pauses if r["generation"] == g) for g in sorted(by_gen)}
    return (
        f"  server: {len(stalls)} loop stalls, {total('late_ms'):.0f} ms late in all, worst "
        f"{worst['late_ms']:.0f} ms (cpu {worst['cpu_ms']:.0f}, gc {worst['gc_ms']:.0f}, "
        f"run queue {worst['runq_ms']}, blocked {worst['blocked_ms']:.0f} ms); over all "
        f"stalls: cpu {total('cpu_ms'):.0f} ms, gc {total('gc_ms'):.0f} ms, run queue "
        f"{total('runq_ms'):.0f} ms, blocked {total('blocked_ms'):.0f} ms; GC pauses logged "
        f"by generation: {dict(sorted(by_gen.items())) or 'none'}, the worst one's CPU ms "
        f"by generation: {worst_gc or 'none'}"
    )


async def main(args: argparse.Namespace) -> None:
    run = secrets.token_hex(3)
    infra = bring_up(harness.REPO / ".dev" / "bench" / "infra")
    database = f"bench_licensing_{run}"
    await ensure_database(infra.postgres.url, database)
    db_url = with_database(infra.postgres.url, database)
    ns = Namespace(f"bench{run}")
    nc = await nats.connect(infra.nats.url)
    # Licensing reads billing's and auth's streams; neither runs here, so stand in for them.
    for stream in (BILLING, AUTH):
        await ensure_stream(nc.jetstream(), stream_config(stream, ns))
    await nc.close()
    env = {
        **infra.env(),
        "TESSERA_NAMESPACE": ns.prefix,
        "TESSERA_LOG_LEVEL": "WARNING",
        "TESSERA_LICENSING_DATABASE_URL": db_url,
        "TESSERA_LICENSING_RATE_PER_IP": "100000000",
        "TESSERA_LICENSING_RATE_PER_KEY": "100000000",
        # The service tells its own stalls apart (docs/performance.md, "Validate's stall").
        "TESSERA_LICENSING_STALL_LOG_MS": str(args.stall_log_ms),
    }
    service_log = harness.REPO / ".dev" / "bench" / "licensing_validate" / f"{run}.log"
    try:
        filler = '{"key":"XXXXX-XXXXX-XXXXX-XXXXX-XXXXX","fingerprint":"bench-XXXXX-XXXXX-XXXXX-XXXXX-XXXXX","nonce":"12345"}'
        with (
            harness.uvicorn_process(
                "baseline:app", harness.free_port(), workers=args.workers
            ) as base_url,
            harness.uvicorn_process(
                "tessera.licensing.app:create_app()",
                harness.free_port(),
                env,
                workers=args.workers,
                log=service_log,
            ) as url,
        ):
            print("seeding licenses through billing.order.paid.v1 …", flush=True)
            keys = await seed(infra.nats.url, ns, db_url, args.licenses)
            print("activating one machine per license …", flush=True)
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                for key in keys:
                    r = await client.post(
                        "/v1/licenses/activate", json={"key": key, "fingerprint": f"bench-{key}"}
                    )
                    assert r.json()["code"] == "VALID", r.text

            def body(n: int) -> dict[str, str]:
                key = keys[n % len(keys)]
                return {"key": key, "fingerprint": f"bench-{key}", "nonce": str(n)}

            bodies = [json.dumps(body(n)) for n in range(len(keys))]

            async def measure(name: str, server: str, path: str, payloads: list[str]) -> Round:
                cpu = harness.server_cpu_seconds(server)
                if args.driver == "wrk":
                    result = wrk(name, server, path, payloads, args.concurrency, args.duration)
                else:
                    result = await harness.drive(
                        name, server, lambda c, n: c.post(path, content=payloads[n % len(payloads)], headers=JSON),
                        concurrency=args.concurrency, duration=args.duration,
                    )  # fmt: skip
                used = harness.server_cpu_seconds(server) - cpu
                return Round(result, used / max(result.requests, 1))

            # Bare and validate alternate, round after round, both servers up the whole
            # time: this machine's speed drifts by tens of percent over minutes (a shared
            # VM), so each ratio compares two runs made moments apart.
            if args.warmup and args.driver == "wrk":
                # Unmeasured: both servers' first seconds under load (the cache filling,
                # the interpreter specialising the hot code, the setup's events still being
                # relayed) are not what a round should compare.
                wrk("warm-up", base_url, "/echo", [filler], args.concurrency, args.warmup)
                wrk("warm-up", url, "/v1/licenses/validate", bodies, args.concurrency, args.warmup)
            print("measuring …", flush=True)
            rounds: list[tuple[Round, Round, Round]] = []
            for n in range(args.rounds):
                bare = await measure("bare FastAPI (POST, same body)", base_url, "/echo", [filler])
                validate = await measure(
                    "licensing POST /v1/licenses/validate", url, "/v1/licenses/validate", bodies
                )
                beat = await measure(
                    "licensing POST /v1/licenses/heartbeat", url, "/v1/licenses/heartbeat", bodies
                )
                rounds.append((bare, validate, beat))
                for measured in (bare, validate, beat):
                    print(f"round {n + 1}: " + measured.result.line(), flush=True)
            ratios = sorted(v.result.rps / b.result.rps for b, v, _ in rounds)
            beat_ratios = sorted(h.result.rps / b.result.rps for b, _, h in rounds)
            median_rps = statistics.median(v.result.rps for _, v, _ in rounds)
            opened = time.time()
            half = await open_loop(url, keys, median_rps / 2, args.duration)
            stalled = server_stalls(service_log, opened, time.time())
            print(stalled, flush=True)
            # Last: every activation forgets its license in validate's memory.
            activate = await measure(
                "licensing POST /v1/licenses/activate", url, "/v1/licenses/activate", bodies
            )
        print(
            f"{args.licenses} licenses, {args.driver}, concurrency {args.concurrency}, "
            f"{args.duration:.0f} s each, {args.rounds} alternating rounds"
        )
        print(
            "| round | bare req/s | validate req/s | validate / bare | heartbeat req/s "
            "| heartbeat / bare | CPU µs/req bare | validate | heartbeat |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for n, (b, v, h) in enumerate(rounds, 1):
            print(
                f"| {n} | {b.result.rps:,.0f} | {v.result.rps:,.0f} | {v.result.rps / b.result.rps:.0%} "
                f"| {h.result.rps:,.0f} | {h.result.rps / b.result.rps:.0%} "
                f"| {b.cpu * 1e6:.0f} | {v.cpu * 1e6:.0f} | {h.cpu * 1e6:.0f} |"
            )
        print(
            f"validate / bare throughput, median of {args.rounds} rounds: {statistics.median(ratios):.0%}"
        )
        print(
            f"heartbeat / bare throughput, median of {args.rounds} rounds: "
            f"{statistics.median(beat_ratios):.0%}"
        )
        print(activate.result.line())
        print(f"activate CPU per request: {activate.cpu * 1e6:.0f} µs")
        print(half.line())
        print(stalled)
        print(f"service log: {service_log}")
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
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--licenses", type=int, default=500)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating bare/validate/heartbeat rounds"
    )
    parser.add_argument(
        "--warmup", type=float, default=3, help="seconds of unmeasured load on each server first"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn workers, for the baseline and licensing alike",
    )
    parser.add_argument(
        "--stall-log-ms",
        type=float,
        default=5,
        help="the service logs event-loop stalls this long or longer (0: off)",
    )
    parser.add_argument(
        "--driver", choices=["wrk", "httpx"], default="wrk", help="closed-loop load generator"
    )
    harness.add_server_option(parser)
    args = parser.parse_args()
    harness.use_server(args.server)
    uvloop.run(main(args))  # the generator's own loop: the faster the better
