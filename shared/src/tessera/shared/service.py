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
from typing import Any, Generic, TypeVar

import asyncpg
from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from faststream.nats import NatsBroker, NatsRouter
from nats.aio.client import Client
from redis.asyncio import Redis
from starlette.types import ASGIApp

from tessera.shared.api_keys.book import KeyBook
from tessera.shared.api_keys.usage import report_use
from tessera.shared.db.migrate import apply_migrations_async
from tessera.shared.db.pool import create_pool
from tessera.shared.directory import RecordFollower, SellerBook, follow_with_own_connection
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

S = TypeVar("S", bound=ServiceSettings)
C = TypeVar("C", bound="ServiceContext[Any]")


class NotConnected(ServiceUnavailable):
    """A connection the service has not made (yet, or at all): answered as a 503."""


@dataclass(eq=False, kw_only=True)
class ServiceContext(Generic[S]):
    """What a running service holds: built once, in the service's `create_app`, typed with
    that service's own settings, and reached by routes through a dependency
    (`context_dependency`), by subscribers and start-up hooks as their argument. A service
    subclasses it for what it holds beside the kernel's connections.

    The connections are made when the lifespan starts; until then, or in a service that does
    not use one, reading it raises `NotConnected` (a 503)."""

    name: str
    settings: S
    infra: InfraSettings
    namespace: Namespace = field(init=False)
    # The Redis key names of this service (and namespace).
    keys: Keys = field(init=False)
    token_verifier: AccessTokenVerifier = field(init=False)
    # The seller directory, followed from JetStream by every process (docs/sellers.md).
    sellers: SellerBook = field(init=False)
    # Every API key's latest record (hash only), followed from JetStream like the directory:
    # the one verifier of seller keys (`tessera.shared.api_keys.dependencies`).
    key_book: KeyBook = field(init=False)
    # How often this process reports the keys it accepted to auth (`ApiKeysUsed`).
    key_use_seconds: float = field(default=30.0, init=False)
    messaging_ready: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list, init=False)
    _pool: asyncpg.Pool | None = field(default=None, init=False)
    _redis: Redis | None = field(default=None, init=False)
    _limiter: RateLimiter | None = field(default=None, init=False)
    _synced_limiter: SyncedLimiter | None = field(default=None, init=False)
    _broker: NatsBroker | None = field(default=None, init=False)
    _relay: OutboxRelay | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.namespace = Namespace(self.infra.namespace)
        self.keys = Keys(key_prefix(self.name, self.infra.namespace))
        self.sellers = SellerBook()
        self.key_book = KeyBook()
        self.token_verifier = self.build_token_verifier()
        if self.token_verifier.sellers is None:
            # Whoever built the verifier, it resolves sellers through this process's book.
            self.token_verifier.sellers = self.sellers

    def build_token_verifier(self) -> AccessTokenVerifier:
        """How this service checks auth's access tokens: auth's JWKS over HTTP, by default."""
        return AccessTokenVerifier(
            JwksCache(self.infra.auth_jwks_url),
            issuer=self.infra.token_issuer,
            audience=self.infra.token_audience,
            sellers=self.sellers,
        )

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise NotConnected("The database is not connected.")
        return self._pool

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise NotConnected("Redis is not connected.")
        return self._redis

    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:
            raise NotConnected("Rate limiting is unavailable.")
        return self._limiter

    @property
    def synced_limiter(self) -> SyncedLimiter:
        """The in-memory limiter synced through Redis, for the high-volume public paths."""
        if self._synced_limiter is None:
            raise NotConnected("Rate limiting is unavailable.")
        return self._synced_limiter

    @property
    def broker(self) -> NatsBroker:
        if self._broker is None:
            raise NotConnected("Messaging is not running in this process.")
        return self._broker

    def checks(self) -> Mapping[str, Check]:
        checks: dict[str, Check] = {}
        if isinstance(self.settings, DatabaseSettings):
            checks["postgres"] = self._check_postgres
        if self._redis is not None:
            checks["redis"] = self._redis.ping
        if self._broker is not None:
            checks["nats"] = self._check_nats
        return checks

    async def _check_key_book(self) -> None:
        # Before the replay is in every key would look unknown: not ready to serve them.
        if not self.key_book.ready:
            raise RuntimeError("API keys not replayed yet")

    async def _check_postgres(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def _check_nats(self) -> None:
        if not self.messaging_ready.is_set():
            raise RuntimeError("not connected")
        if not await self.broker.ping(timeout=0.5):
            raise RuntimeError("no answer")

    async def publish_outbox_row(self, row: OutboxRow) -> None:
        if self._broker is None or not self.messaging_ready.is_set():
            raise RuntimeError("NATS is not connected yet")
        stream = stream_for_subject(row.subject)
        await self._broker.publish(
            row.payload.encode(),
            subject=self.namespace.subject(row.subject),
            stream=self.namespace.stream(stream),
            headers={"Nats-Msg-Id": str(row.id), "content-type": "application/json"},
            timeout=2.0,
        )


def context_dependency(cls: type[C]) -> Callable[[Request], Awaitable[C]]:
    """The dependency that hands a route its service's context (`cls` types it)."""

    async def current(request: Request) -> C:
        # async on purpose: FastAPI runs a plain-function dependency in a worker thread,
        # which cost the webhook ingress more than its whole transaction.
        context: C = request.app.state.context
        return context

    current.__name__ = f"current_{cls.__name__}"
    return current


def context_in(app: Any) -> ServiceContext[Any]:
    """The context of a service app (for the kernel's own middleware and dependencies)."""
    context: ServiceContext[Any] = app.state.context
    return context


SubscriberFactory = Callable[[C, NatsRouter], None]


@dataclass(frozen=True, kw_only=True)
class ServiceSpec(Generic[C]):
    context: C
    title: str
    version: str
    migrations: Path | None = None
    uses_redis: bool = True
    uses_nats: bool = True
    routers: Sequence[APIRouter] = ()
    subscribers: Callable[[C, NatsRouter], None] | None = None
    on_startup: Sequence[Callable[[C], Awaitable[None]]] = ()
    # Body limits for exact paths that differ from settings.max_body_bytes.
    body_limits: Mapping[str, int] = field(default_factory=dict)
    # Readiness checks beyond Postgres, Redis and NATS (e.g. the portal's upstreams).
    extra_checks: Callable[[C], Mapping[str, Check]] | None = None
    # Serve /openapi.json and /docs when the environment allows it (see InfraSettings.openapi).
    # The portal's pages are for browsers, not an API contract: it serves none.
    serve_openapi: bool = True
    # Follow the API-key book (every service that serves seller-key routes, in every
    # process, HTTP-only replicas too: they check keys). `/readyz` then reports `api_keys`.
    api_keys: bool = True
    # The service's fast path (http/fast_path.py), built around the whole app and put in
    # front of it by `create_service_app`: the one place a fast path is installed.
    fast_path: Callable[[ASGIApp], ASGIApp] | None = None
    # Paths that get no server span (beside the health checks), e.g. licensing's validate
    # unless TESSERA_TRACE_VALIDATE: the one tracing policy, for fast path and full stack.
    untraced_paths: Sequence[str] = ()

    @property
    def name(self) -> str:
        return self.context.name


def build_broker(context: C, subscribers: Callable[[C, NatsRouter], None] | None) -> NatsBroker:
    broker = create_broker(context.infra, context.name, context.namespace)
    if subscribers is not None:
        router = NatsRouter()
        subscribers(context, router)
        broker.include_router(router)
    return broker


def redacted(url: str) -> str:
    """The URL without its credentials, for logs."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rsplit('@', 1)[-1]}" if "@" in rest else url


async def join_messaging(context: ServiceContext[Any]) -> None:
    """Connect, declare topology and start consuming; retry until it works."""
    broker = context.broker
    delay = 0.2
    while not context.stopping.is_set():
        try:
            connection = await broker.connect()
            await declare_topology(
                connection,
                context.name,
                context.namespace,
                replicas=context.infra.nats_stream_replicas,
            )
            await broker.start()
            context.messaging_ready.set()
            if metering() and subscriptions_of(context.name):
                sampling = measure_consumer_lag(
                    connection, context.name, context.namespace, metric_interval_seconds()
                )
                context.tasks.append(asyncio.create_task(sampling))
            log.info(
                "service.messaging.ready", extra={"nats": redacted(str(context.infra.nats_url))}
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
    spec: ServiceSpec[Any] = app.state.spec
    context: ServiceContext[Any] = spec.context
    settings, infra = context.settings, context.infra
    try:
        if isinstance(settings, DatabaseSettings):
            url = str(settings.database_url)
            if spec.migrations is not None and settings.auto_migrate:
                applied = await apply_migrations_async(url, spec.migrations)
                if applied:
                    log.info("service.migrations.applied", extra={"migrations": applied})
            context._pool = await create_pool(settings)
        if spec.uses_redis:
            context._redis = create_redis(str(infra.redis_url))
            context._limiter = RateLimiter(str(infra.redis_url), context.keys.prefix)
            context._synced_limiter = SyncedLimiter(context._redis, context.keys.prefix)
            context.tasks.append(asyncio.create_task(context._synced_limiter.run()))
        # Every process follows the seller directory, and the key book where the service
        # takes seller keys, on one connection of its own: a process without a broker (the
        # portal, an HTTP-only replica) verifies tokens and keys too.
        followers: list[RecordFollower[Any]] = [context.sellers.follower]
        report: Callable[[Client], Awaitable[None]] | None = None
        if spec.api_keys:
            followers.append(context.key_book.follower)

            def report(client: Client) -> Awaitable[None]:
                return report_use(
                    context.key_book, client, context.namespace, context.name,
                    lambda: context.key_use_seconds,
                )  # fmt: skip

        directory = follow_with_own_connection(
            followers,
            str(infra.nats_url),
            context.namespace,
            f"tessera-{context.name}-directory",
            also=report,
        )
        context.tasks.append(asyncio.create_task(directory))
        if spec.uses_nats and settings.run_workers:
            context._broker = build_broker(context, spec.subscribers)
            context.tasks.append(asyncio.create_task(join_messaging(context)))
            if context._pool is not None:
                relay = context._relay = OutboxRelay(context._pool, context.publish_outbox_row)
                context.tasks.append(asyncio.create_task(relay.run()))
                if metering():
                    every = metric_interval_seconds()
                    context.tasks.append(asyncio.create_task(relay.measure_backlog(every)))
        for hook in spec.on_startup:
            await hook(context)
        yield
    finally:
        await shutdown(context)


async def shutdown(context: ServiceContext[Any]) -> None:
    context.stopping.set()
    for task in context.tasks:
        task.cancel()
    if context.tasks:
        # Bounded: a library that swallows one cancellation (nats-py's request does, in
        # places) must not hold the process open; the stop flag ends the loop soon after.
        await asyncio.wait(context.tasks, timeout=5)
    if context._relay is not None:
        await context._relay.close()
    if context._broker is not None:
        with contextlib.suppress(Exception):
            await context._broker.stop()
    if context._redis is not None:
        await context._redis.aclose()
    if context._pool is not None:
        try:
            # Bounded too: a connection a swallowed cancellation never gave back must not
            # keep the process from exiting.
            await asyncio.wait_for(context._pool.close(), timeout=10)
        except TimeoutError:
            log.warning("service.shutdown.pool_terminated")
            context._pool.terminate()


def create_service_app(spec: ServiceSpec[C]) -> FastAPI:
    context = spec.context
    settings, infra = context.settings, context.infra
    configure_telemetry(context.name, infra, spec.version)
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
    app.state.context = context
    install_problem_handlers(app)

    def readiness_checks() -> Mapping[str, Check]:
        checks = dict(context.checks())
        if spec.api_keys:
            checks["api_keys"] = context._check_key_book
        if spec.extra_checks is not None:
            checks.update(spec.extra_checks(context))
        return checks

    app.include_router(health_router(readiness_checks))
    for router in spec.routers:
        app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["authorization", "content-type", "x-request-id"],
        )
    app.add_middleware(
        BodyLimitMiddleware, limit=settings.max_body_bytes, path_limits=spec.body_limits
    )
    # Outside the body limit and the body parsing: a non-admin learns nothing of /v1/admin.
    app.add_middleware(AdminGateMiddleware, verifier=context.token_verifier)
    app.add_middleware(RequestContextMiddleware, hsts=infra.env == Environment.PRODUCTION)
    install_openapi(app, serve=spec.serve_openapi and infra.serves_openapi())
    instrument_app(app, spec.untraced_paths)
    if spec.fast_path is not None:
        app.put_in_front(spec.fast_path)
    app.trust_proxies(infra.forwarded_allow_ips)
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
