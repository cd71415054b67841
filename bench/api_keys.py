"""API keys: what checking a key adds to a request, and how long a revocation takes to
reach another process's key book.

    uv run python bench/api_keys.py --keys 10000 --duration 10 --rounds 5 --samples 500

1. **The check alone**, in this process: `KeyBook.check` on a book holding `--keys` keys
   (and its parts: parse with the checksum, SHA-256), and the refusals.
2. **A request**: `bench/api_keys_app.py` serves the same `GET /v1/ping` bare, behind a
   dependency that only reads the `Authorization` header, and behind `SecretSellerDep`
   (its key book follows the run's APIKEYS stream), each in its own uvicorn process
   (uvloop, httptools); wrk (or `--driver httpx`) drives the three in turn, round after
   round, the last two with one of the `--keys` keys per request in turn. Server CPU per
   request comes from each process's own CPU time.
3. **Revocation propagation**: `--followers` processes each follow the stream with a
   `KeyBook`; this process publishes a revocation (as auth's relay would) and each follower
   reports the moment its book refuses the key (CLOCK_MONOTONIC is one clock for every
   process on the machine). `--samples` revocations, one every `--interval` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import harness
import nats

from tessera.devstack.infra import bring_up
from tessera.shared.api_keys import (
    IssuedKey,
    KeyBook,
    KeyRefused,
    RevokedKey,
    generate,
    hash_key,
    parse,
)
from tessera.shared.events.auth import ApiKeyChanged
from tessera.shared.events.topology import APIKEYS, Namespace
from tessera.shared.messaging import ensure_stream, stream_config

SELLER = uuid.UUID("0193a3c0-0000-7000-8000-00000000beef")


def record(issued: IssuedKey, key_id: uuid.UUID, version: int, status: str) -> ApiKeyChanged:
    return ApiKeyChanged(
        key_id=key_id, seller_id=SELLER, key_hash=issued.hash_hex, kind=issued.kind,
        mode=issued.mode, status=status, version=version,  # type: ignore[arg-type]
    )  # fmt: skip


async def publish(js: object, ns: Namespace, records: list[ApiKeyChanged]) -> None:
    from nats.js.client import JetStreamContext

    assert isinstance(js, JetStreamContext)
    for r in records:
        await js.publish(
            ns.subject(r.publish_subject()), r.to_json(), stream=ns.stream(APIKEYS),
            headers={"Nats-Msg-Id": str(r.event_id)},
        )  # fmt: skip


# ---------------------------------------------------------------- 1. the check alone


def per_call_us(fn: Callable[[str], object], args: list[str], repeat: int) -> float:
    """Median over `repeat` passes of the µs per call of `fn` over `args` (GC off). A
    refused key counts as a call (its refusal is the cost measured)."""
    passes = []
    gc.disable()
    try:
        for _ in range(repeat):
            started = time.perf_counter_ns()
            for a in args:
                try:
                    fn(a)
                except KeyRefused:
                    continue
            passes.append((time.perf_counter_ns() - started) / len(args) / 1000)
    finally:
        gc.enable()
    return statistics.median(passes)


def check_costs(issued: list[IssuedKey], records: list[ApiKeyChanged]) -> list[tuple[str, float]]:
    book = KeyBook()
    for r in records:
        book.apply(r)
    texts = [k.plaintext for k in issued]
    unknown = [generate("secret", "live").plaintext for _ in range(len(texts))]
    typos = [t[:20] + ("x" if t[20] != "x" else "y") + t[21:] for t in texts]
    return [
        ("KeyBook.check (valid key)", per_call_us(book.check, texts, 7)),
        ("  parse (prefix, length, alphabet, CRC32)", per_call_us(parse, texts, 7)),
        ("  hash_key (SHA-256)", per_call_us(hash_key, texts, 7)),
        ("KeyBook.check (unknown key, refused)", per_call_us(book.check, unknown, 7)),
        ("KeyBook.check (typo, refused offline)", per_call_us(book.check, typos, 7)),
    ]


# ---------------------------------------------------------------- 2. a request


@dataclass(frozen=True)
class Round:
    result: harness.Result
    cpu: float  # server CPU seconds per request


async def measure(
    args: argparse.Namespace, name: str, url: str, lines: list[tuple[str, bytes]]
) -> Round:
    cpu = harness.server_cpu_seconds(url)
    if args.driver == "wrk":
        result = harness.drive_wrk(
            name, url, "GET", "/v1/ping", lines,
            connections=args.concurrency, duration=args.duration,
        )  # fmt: skip
    else:
        headers = [dict([h.split(":", 1)]) if h else {} for h, _ in lines]
        result = await harness.drive(
            name, url, lambda c, n: c.get("/v1/ping", headers=headers[n % len(headers)]),
            concurrency=args.concurrency, duration=args.duration,
        )  # fmt: skip
    return Round(result, (harness.server_cpu_seconds(url) - cpu) / max(result.requests, 1))


# ---------------------------------------------------------------- 3. revocation propagation


def follower_main(nats_url: str, namespace: str, keys_file: str) -> None:
    """A follower process: print `ready`, then `<key_id> <monotonic ns>` each time a
    revocation makes its book refuse the key."""
    plaintexts = {uuid.UUID(k): v for k, v in json.loads(Path(keys_file).read_text()).items()}

    class TimedBook(KeyBook):
        def apply(self, record: ApiKeyChanged) -> bool:
            applied = super().apply(record)
            if applied and record.status == "revoked" and self.ready:
                try:
                    self.check(plaintexts[record.key_id])
                except RevokedKey:
                    print(f"{record.key_id} {time.monotonic_ns()}", flush=True)
            return applied

    async def run() -> None:
        nc = await nats.connect(nats_url, max_reconnect_attempts=-1)
        book = TimedBook()
        task = asyncio.create_task(book.follow(nc, Namespace(namespace)))
        await book.wait_ready()
        print("ready", flush=True)
        await task

    import uvloop

    uvloop.run(run())


async def propagation(
    args: argparse.Namespace, nats_url: str, ns: Namespace, js: object
) -> list[float]:
    targets = [(uuid.uuid4(), generate("secret", "live")) for _ in range(args.samples)]
    await publish(js, ns, [record(k, key_id, 1, "active") for key_id, k in targets])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({str(key_id): k.plaintext for key_id, k in targets}, f)
    seen: dict[str, list[int]] = {}
    arrived = asyncio.Event()
    command = [sys.executable, __file__, "--follower", nats_url, ns.prefix, f.name]
    followers = [
        await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        for _ in range(args.followers)
    ]

    async def read(process: asyncio.subprocess.Process, ready: asyncio.Event) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode().strip()
            if line == "ready":
                ready.set()
                continue
            key_id, at = line.split()
            seen.setdefault(key_id, []).append(int(at))
            arrived.set()

    readies = [asyncio.Event() for _ in followers]
    readers = [asyncio.create_task(read(p, r)) for p, r in zip(followers, readies, strict=True)]
    latencies: list[float] = []
    try:
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
        for key_id, issued in targets:
            started = time.monotonic_ns()
            await publish(js, ns, [record(issued, key_id, 2, "revoked")])
            deadline = time.monotonic() + 10
            while len(seen.get(str(key_id), [])) < len(followers):
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), max(deadline - time.monotonic(), 0.001))
            latencies += [(at - started) / 1e6 for at in seen[str(key_id)]]
            await asyncio.sleep(args.interval)
    finally:
        for p in followers:
            p.terminate()
            await p.wait()
        for r in readers:
            r.cancel()
        os.unlink(f.name)
    return latencies


# ---------------------------------------------------------------- the run


async def main(args: argparse.Namespace) -> None:
    run = secrets.token_hex(3)
    infra = bring_up(harness.REPO / ".dev" / "bench" / "infra")
    namespace = f"bench{run}"
    ns = Namespace(namespace)
    nc = await nats.connect(infra.nats.url)
    js = nc.jetstream()
    try:
        await ensure_stream(js, stream_config(APIKEYS, ns))
        print(f"publishing {args.keys} key records …", flush=True)
        issued = [generate("secret", "live") for _ in range(args.keys)]
        records = [record(k, uuid.uuid4(), 1, "active") for k in issued]
        await publish(js, ns, records)

        costs = check_costs(issued, records)
        for name, us in costs:
            print(f"{name:<44} {us:6.2f} µs", flush=True)

        env = {"BENCH_NATS_URL": infra.nats.url, "BENCH_NAMESPACE": namespace}
        keyed_lines = [(f"Authorization:Bearer {k.plaintext}", b"") for k in issued]
        rounds: list[tuple[Round, Round, Round]] = []
        with (
            harness.uvicorn_process("api_keys_app:bare()", harness.free_port(), env) as bare_url,
            harness.uvicorn_process("api_keys_app:header()", harness.free_port(), env) as dep_url,
            harness.uvicorn_process("api_keys_app:keyed()", harness.free_port(), env) as keyed_url,
        ):
            servers = (
                ("bare GET /v1/ping", bare_url, [("", b"")]),
                ("GET /v1/ping + header dependency", dep_url, keyed_lines),
                ("GET /v1/ping + secret key", keyed_url, keyed_lines),
            )
            if args.warmup:
                warm = argparse.Namespace(**{**vars(args), "duration": args.warmup})
                for _, url, lines in servers:
                    await measure(warm, "warm-up", url, lines)
            for n in range(args.rounds):
                bare, dep, keyed = [await measure(args, *server) for server in servers]
                rounds.append((bare, dep, keyed))
                for measured in (bare, dep, keyed):
                    print(f"round {n + 1}: " + measured.result.line(), flush=True)

        print(f"revocations: {args.samples}, {args.followers} follower process(es) …", flush=True)
        latencies = await propagation(args, infra.nats.url, ns, js)

        print()
        print(
            f"{args.keys} keys, {args.driver}, concurrency {args.concurrency}, "
            f"{args.duration:.0f} s each, {args.rounds} alternating rounds"
        )
        print("| what | µs per call |")
        print("|---|---|")
        for name, us in costs:
            print(f"| {name.strip()} | {us:.2f} |")
        print()
        print(
            "| round | req/s bare / header dep / keyed | keyed / bare "
            "| p50 ms bare / dep / keyed | p99 ms bare / dep / keyed "
            "| CPU µs/req bare / dep / keyed |"
        )
        print("|---|---|---|---|---|---|")
        for n, trio in enumerate(rounds, 1):
            b, _, k = trio
            rps = " / ".join(f"{r.result.rps:,.0f}" for r in trio)
            p50 = " / ".join(f"{r.result.percentile(50):.2f}" for r in trio)
            p99 = " / ".join(f"{r.result.percentile(99):.2f}" for r in trio)
            cpu = " / ".join(f"{r.cpu * 1e6:.0f}" for r in trio)
            print(f"| {n} | {rps} | {k.result.rps / b.result.rps:.0%} | {p50} | {p99} | {cpu} |")
        ratio = statistics.median(k.result.rps / b.result.rps for b, _, k in rounds)
        by_dep = statistics.median((d.cpu - b.cpu) * 1e6 for b, d, _ in rounds)
        by_check = statistics.median((k.cpu - d.cpu) * 1e6 for _, d, k in rounds)
        print(f"keyed / bare throughput, median: {ratio:.0%}")
        print(f"server CPU per request, median: a dependency adds {by_dep:.0f} µs, ", end="")
        print(f"checking the key adds {by_check:.0f} µs on top")
        print(f"revocation -> refused in another process: {harness.summary(latencies)}")
    finally:
        await nc.close()
        await harness.tear_down(infra, [], namespace)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--follower":
        follower_main(*sys.argv[2:])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=10000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--driver", choices=("wrk", "httpx"), default="wrk")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--followers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.02)
    args = parser.parse_args()
    if args.driver == "wrk" and not harness.wrk_available():
        parser.error("wrk is not installed (Debian: apt-get install wrk); or --driver httpx")
    asyncio.run(main(args))
