"""The service runtime: one FastAPI app per service, wired to its real dependencies.

`create_service_app` gives every service the same skeleton: telemetry, migrations, an
asyncpg pool, Redis and a rate limiter, the NATS broker with its streams and durable
consumers, the outbox relay, the HTTP kernel (body limit, request id, security headers,
problem+json) and `/healthz` + `/readyz`. A service adds its routers and subscribers.

NATS is joined in the background and retried forever: a service whose HTTP path needs only
Postgres (billing's webhook ingress) keeps answering through a NATS outage, and its outbox
holds what it could not publish yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from faststream.nats import NatsBroker, NatsRouter
from redis.asyncio import Redis
from starlette.types import ASGIApp

from tessera.shared.db.migrate import apply_migrations_async
from tessera.shared.db.pool import create_pool
from tessera.shared.events.topology import Namespace, stream_for_subject, subscriptions_of
from tessera.shared.http.admin_gate import AdminGateMiddleware
from tessera.shared.http.forwarded import ServiceApp
from tessera.shared.http.health import Check, health_router
from tessera.shared.http.middleware import BodyLimitMiddleware, RequestContextMiddleware
from tessera.shared.http.openapi import install_openapi
from tessera.shared.http.problems import ServiceUnavailable, install_problem_handlers
from tessera.shared.messaging import create_broker, declare_topology, measure_consumer_lag
from tessera.shared.outbox import OutboxRelay, OutboxRow
from tessera.shared.redis import Keys, RateLimiter, create_redis, key_prefix
from tessera.shared.settings import DatabaseSettings, Environment, InfraSettings, ServiceSettings
from tessera.shared.synced_limits import SyncedLimiter
from tessera.shared.telemetry import (
    configure_telemetry,
    metering,
    metric_interval_seconds,
    stable_http_conventions,
)
from tessera.shared.tokens import AccessTokenVerifier, JwksCache

log = logging.getLogger("tessera.service")

SubscriberFactory = Callable[["Runtime", NatsRouter], None]


@dataclass
class Runtime:
    """What a running service holds. Routes reach it with the `RuntimeDep` dependency;
    subscribers receive it when their router is built."""

    name: str
    infra: InfraSettings
    settings: ServiceSettings
    namespace: Namespace
    pool: asyncpg.Pool | None = None
    redis: Redis | None = None
    limiter: RateLimiter | None = None
    synced_limiter: SyncedLimiter | None = None
    broker: NatsBroker | None = None
    relay: OutboxRelay | None = None
    messaging_ready: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def keys(self) -> Keys:
        return Keys(key_prefix(self.name, self.infra.namespace))

    def db(self) -> asyncpg.Pool:
        if self.pool is None:
            raise ServiceUnavailable("The database is not connected.")
        return self.pool

    def rate_limiter(self) -> RateLimiter:
        if self.limiter is None:
            raise ServiceUnavailable("Rate limiting is unavailable.")
        return self.limiter

    def hot_path_limiter(self) -> SyncedLimiter:
        """The in-memory limiter synced through Redis, for the high-volume public paths."""
        if self.synced_limiter is None:
            raise ServiceUnavailable("Rate limiting is unavailable.")
        return self.synced_limiter

    def checks(self) -> Mapping[str, Check]:
        checks: dict[str, Check] = {}
        if isinstance(self.settings, DatabaseSettings):
            checks["postgres"] = self._check_postgres
        if self.redis is not None:
            redis = self.redis
            checks["redis"] = redis.ping
        if self.broker is not None:
            checks["nats"] = self._check_nats
        return checks

    async def _check_postgres(self) -> None:
        async with self.db().acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def _check_nats(self) -> None:
        if not self.messaging_ready.is_set() or self.broker is None:
            raise RuntimeError("not connected")
        if not await self.broker.ping(timeout=0.5):
            raise RuntimeError("no answer")

    async def publish_outbox_row(self, row: OutboxRow) -> None:
        broker = self.broker
        if broker is None or not self.messaging_ready.is_set():
            raise RuntimeError("NATS is not connected yet")
        stream = stream_for_subject(row.subject)
        await broker.publish(
            row.payload.encode(),
            subject=self.namespace.subject(row.subject),
            stream=self.namespace.stream(stream),
            headers={"Nats-Msg-Id": str(row.id), "content-type": "application/json"},
            timeout=2.0,
        )


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain-function dependency in a worker thread, which
    # cost the webhook ingress more than its whole transaction.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    title: str
    version: str
    settings: ServiceSettings
    infra: InfraSettings
    migrations: Path | None = None
    uses_redis: bool = True
    uses_nats: bool = True
    routers: Sequence[APIRouter] = ()
    subscribers: SubscriberFactory | None = None
    on_startup: Sequence[Callable[[Runtime], Awaitable[None]]] = ()
    # Body limits for exact paths that differ from settings.max_body_bytes.
    body_limits: Mapping[str, int] = field(default_factory=dict)
    # Readiness checks beyond Postgres, Redis and NATS (e.g. the portal's upstreams).
    extra_checks: Callable[[Runtime], Mapping[str, Check]] | None = None
    # Serve /openapi.json and /docs when the environment allows it (see InfraSettings.openapi).
    # The portal's pages are for browsers, not an API contract: it serves none.
    serve_openapi: bool = True
    # The service's fast path (http/fast_path.py), built around the whole app and put in
    # front of it by `create_service_app`: the one place a fast path is installed.
    fast_path: Callable[[ASGIApp, FastAPI], ASGIApp] | None = None
    # Paths that get no server span (beside the health checks), e.g. licensing's validate
    # unless TESSERA_TRACE_VALIDATE: the one tracing policy, for fast path and full stack.
    untraced_paths: Sequence[str] = ()


def build_broker(runtime: Runtime, subscribers: SubscriberFactory | None) -> NatsBroker:
    broker = create_broker(runtime.infra, runtime.name, runtime.namespace)
    if subscribers is not None:
        router = NatsRouter()
        subscribers(runtime, router)
        broker.include_router(router)
    return broker


def redacted(url: str) -> str:
    """The URL without its credentials, for logs."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rsplit('@', 1)[-1]}" if "@" in rest else url


async def join_messaging(runtime: Runtime) -> None:
    """Connect, declare topology and start consuming; retry until it works."""
    broker = runtime.broker
    assert broker is not None
    delay = 0.2
    while not runtime.stopping.is_set():
        try:
            connection = await broker.connect()
            await declare_topology(
                connection,
                runtime.name,
                runtime.namespace,
                replicas=runtime.infra.nats_stream_replicas,
            )
            await broker.start()
            runtime.messaging_ready.set()
            if metering() and subscriptions_of(runtime.name):
                sampling = measure_consumer_lag(
                    connection, runtime.name, runtime.namespace, metric_interval_seconds()
                )
                runtime.tasks.append(asyncio.create_task(sampling))
            log.info(
                "service.messaging.ready", extra={"nats": redacted(str(runtime.infra.nats_url))}
            )
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning(
                "service.messaging.unavailable", extra={"error": repr(error), "retry_in": delay}
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


@contextlib.asynccontextmanager
async def service_lifespan(app: FastAPI) -> AsyncIterator[None]:
    spec: ServiceSpec = app.state.spec
    runtime = Runtime(
        name=spec.name,
        infra=spec.infra,
        settings=spec.settings,
        namespace=Namespace(spec.infra.namespace),
    )
    app.state.runtime = runtime
    try:
        if isinstance(spec.settings, DatabaseSettings):
            url = str(spec.settings.database_url)
            if spec.migrations is not None and spec.settings.auto_migrate:
                applied = await apply_migrations_async(url, spec.migrations)
                if applied:
                    log.info("service.migrations.applied", extra={"migrations": applied})
            runtime.pool = await create_pool(spec.settings)
        if spec.uses_redis:
            runtime.redis = create_redis(str(spec.infra.redis_url))
            runtime.limiter = RateLimiter(str(spec.infra.redis_url), runtime.keys.prefix)
            runtime.synced_limiter = SyncedLimiter(runtime.redis, runtime.keys.prefix)
            runtime.tasks.append(asyncio.create_task(runtime.synced_limiter.run()))
        if spec.uses_nats and spec.settings.run_workers:
            runtime.broker = build_broker(runtime, spec.subscribers)
            runtime.tasks.append(asyncio.create_task(join_messaging(runtime)))
            if runtime.pool is not None:
                runtime.relay = OutboxRelay(runtime.pool, runtime.publish_outbox_row)
                runtime.tasks.append(asyncio.create_task(runtime.relay.run()))
                if metering():
                    every = metric_interval_seconds()
                    runtime.tasks.append(asyncio.create_task(runtime.relay.measure_backlog(every)))
        for hook in spec.on_startup:
            await hook(runtime)
        yield
    finally:
        await shutdown(runtime)


async def shutdown(runtime: Runtime) -> None:
    runtime.stopping.set()
    for task in runtime.tasks:
        task.cancel()
    if runtime.tasks:
        # Bounded: a library that swallows one cancellation (nats-py's request does, in
        # places) must not hold the process open; the stop flag ends the loop soon after.
        await asyncio.wait(runtime.tasks, timeout=5)
    if runtime.relay is not None:
        await runtime.relay.close()
    if runtime.broker is not None:
        with contextlib.suppress(Exception):
            await runtime.broker.stop()
    if runtime.redis is not None:
        await runtime.redis.aclose()
    if runtime.pool is not None:
        try:
            # Bounded too: a connection a swallowed cancellation never gave back must not
            # keep the process from exiting.
            await asyncio.wait_for(runtime.pool.close(), timeout=10)
        except TimeoutError:
            log.warning("service.shutdown.pool_terminated")
            runtime.pool.terminate()


def create_service_app(spec: ServiceSpec) -> FastAPI:
    configure_telemetry(spec.name, spec.infra, spec.version)
    app = ServiceApp(
        title=spec.title,
        version=spec.version,
        lifespan=service_lifespan,
        # Served by install_openapi below: the public document only, and only when allowed.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # Spans come from the OpenTelemetry instrumentation below; FastAPI's own telemetry
        # would look the providers up again on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.spec = spec
    app.state.token_verifier = AccessTokenVerifier(
        JwksCache(spec.infra.auth_jwks_url),
        issuer=spec.infra.token_issuer,
        audience=spec.infra.token_audience,
    )
    install_problem_handlers(app)

    def readiness_checks() -> Mapping[str, Check]:
        runtime: Runtime = app.state.runtime
        checks = dict(runtime.checks())
        if spec.extra_checks is not None:
            checks.update(spec.extra_checks(runtime))
        return checks

    app.include_router(health_router(readiness_checks))
    for router in spec.routers:
        app.include_router(router)
    if spec.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=spec.settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["authorization", "content-type", "x-request-id"],
        )
    app.add_middleware(
        BodyLimitMiddleware, limit=spec.settings.max_body_bytes, path_limits=spec.body_limits
    )
    # Outside the body limit and the body parsing: a non-admin learns nothing of /v1/admin.
    app.add_middleware(AdminGateMiddleware)
    app.add_middleware(RequestContextMiddleware, hsts=spec.infra.env == Environment.PRODUCTION)
    install_openapi(app, serve=spec.serve_openapi and spec.infra.serves_openapi())
    instrument_app(app, spec.untraced_paths)
    if spec.fast_path is not None:
        fast_path = spec.fast_path
        app.put_in_front(lambda whole: fast_path(whole, app))
    app.trust_proxies(spec.infra.forwarded_allow_ips)
    return app


def instrument_app(app: FastAPI, untraced_paths: Sequence[str] = ()) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    stable_http_conventions()  # before the instrumentation first reads it
    # One server span per request, without the ASGI layer's per-message receive/send spans:
    # they cost more than the work they time.
    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=",".join(("healthz", "readyz", *untraced_paths)),
        exclude_spans=["receive", "send"],
    )
