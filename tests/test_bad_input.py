"""Bad input on every public endpoint: never a 500, never a partial write.

Each service runs for real: uvicorn on a free port, its own Postgres database, this test's
NATS and Redis namespace. Auth signs the access tokens (its own key ring) and billing and
licensing fetch its JWKS over HTTP, so the tokens are the ones production would see.

Schemathesis fuzzes each service's own OpenAPI document (valid and invalid parameters and
bodies), mostly as the role the route is for, sometimes as nobody or the wrong role, so the
authorised code paths are fuzzed and not only the 401. Every answer must be below 500, and
every 4xx must say why in the service's error format (application/problem+json for the
APIs; the portal and the site serve browsers, so theirs are HTML pages). A 4xx must also
leave the service's database exactly as it was: a fingerprint of every table (row count and
a hash of every row) is taken before and after each call and compared when the answer is a
4xx. Columns that background workers update by design (the outbox relay's `published_at`,
the mail sender's delivery state) are left out of the hash; their rows still count.

On top of the fuzzing, hand-made cases for every body-taking endpoint: oversized bodies
(announced and streamed), truncated and cut-off JSON, wrongly typed JSON, wrong content
types, and billing's Stripe webhook with correctly signed but broken bodies.

The fuzzing is deterministic (Hypothesis derandomized, no example database, no shrinking)
and bounded (`EXAMPLES` per operation and generation mode).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
import traceback
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import asyncpg
import httpx
import nats
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err

from tessera.auth.app import create_app as create_auth
from tessera.auth.sellers import service as seller_service
from tessera.auth.sessions import service as sessions
from tessera.auth.settings import AuthSettings
from tessera.auth.tokens import service as tokens
from tessera.auth.users import service as users
from tessera.auth.users.schemas import User
from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.devstack.infra import free_port
from tessera.devstack.mailcatcher import MailCatcher
from tessera.devstack.seller_keys import publish_seller_keys
from tessera.devstack.serving import LoopServer
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.settings import LicensingSettings
from tessera.portal.app import create_app as create_portal
from tessera.portal.settings import PortalSettings
from tessera.portal.web.security import BROWSER_COOKIE, SESSION_COOKIE, csrf_token
from tessera.shared.events.billing import AccountCreated
from tessera.shared.events.envelope import new_event_id
from tessera.shared.events.topology import BILLING, SELLERS, WEBHOOKS, Namespace
from tessera.shared.messaging import ensure_stream, stream_config
from tessera.shared.sellers import HOME_LIVE, HOME_SELLER_ID
from tessera.shared.settings import InfraSettings
from tessera.site.app import create_app as create_site
from tessera.site.settings import SiteSettings
from tessera.webhooks.app import create_app as create_webhooks
from tessera.webhooks.settings import WebhooksSettings

pytestmark = [
    pytest.mark.integration,
    # Schemathesis' own strategies draw from `random` inside Hypothesis, which warns.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

T = TypeVar("T")
Operation = APIOperation[Any, Any, Any, Any]
REPO = Path(__file__).resolve().parents[1]
CATALOG = REPO / "deploy" / "catalog.json"
WEBHOOK_SECRET = "whsec_bad_input_test"
ADMIN_EMAIL = "fuzz-admin@example.com"
# Examples per operation and generation mode (valid, then invalid data).
EXAMPLES = 5
# Roomy rate limits: a 429 is a fine answer, but it would stop the fuzzing short of the
# code behind the limit.
ROOMY = "100000/minute"
AUTH_ROOMY: dict[str, Any] = {
    name: ROOMY
    for name in (
        "rl_link_per_address_burst", "rl_link_per_address", "rl_link_per_ip", "rl_link_global",
        "rl_verify_per_ip", "rl_code_per_account", "rl_token_per_session",
        "rl_sessions_per_user", "rl_device_authorize_per_ip", "rl_device_token_per_ip",
        "rl_device_entry_per_user", "rl_device_wrong_entries_per_user", "rl_admin_per_user",
    )
}  # fmt: skip
# Columns that a background worker updates on its own schedule (not in answer to a request):
# left out of the content hash; the rows themselves are still counted and hashed.
WORKER_COLUMNS: Mapping[str, Sequence[str]] = {
    "outbox": ("published_at", "attempts", "last_error"),
    "email_outbox": (
        "status", "attempts", "next_attempt_at", "locked_until", "last_error", "sent_at",
    ),
}  # fmt: skip
# Audit rows that record a refused attempt (a wrong device code, a failed sign-in): the
# intended, whole effect of those refusals, kept out of the fingerprint.
REFUSAL_ROWS: Mapping[str, str] = {
    "audit_events": "action IN ('device.code_wrong', 'sign_in.failed', 'refresh.reuse_detected')",
}
# Tables only event consumers write, never a request: an event a request accepted earlier
# (an account made, then auth's `auth.user.created.v1` back) may land in them while a later
# request is under test, which is not that request's doing.
CONSUMER_TABLES = frozenset({"inbox"})
PROBLEM = "application/problem+json"
# Logged when a request ends in an unhandled exception, whether or not the client saw it.
UNHANDLED = {"http.request.unhandled", "portal.page.failed"}


# --- running the services -----------------------------------------------------------------


class Fingerprint:
    """Row count and content hash of every table of one database, in one query."""

    def __init__(self, conn: asyncpg.Connection, query: str) -> None:
        self.conn = conn
        self.query = query

    @classmethod
    async def of(cls, url: str) -> Fingerprint:
        conn = await asyncpg.connect(url)
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
        parts = [
            cls._table_sql(row["table_name"])
            for row in tables
            if row["table_name"] not in CONSUMER_TABLES
        ]
        return cls(conn, " UNION ALL ".join(parts) + " ORDER BY 1")

    @staticmethod
    def _table_sql(table: str) -> str:
        # Table names come from the catalogue, columns from the constant above.
        dropped = ", ".join(f"'{c}'" for c in WORKER_COLUMNS.get(table, ()))
        row = f"(to_jsonb(x) - ARRAY[{dropped}]::text[])::text" if dropped else "to_jsonb(x)::text"
        where = f" WHERE NOT ({REFUSAL_ROWS[table]})" if table in REFUSAL_ROWS else ""
        return (
            f"SELECT '{table}' AS name, count(*) AS n,"  # noqa: S608 - names from the catalogue
            f" md5(coalesce(string_agg({row}, E'\\n' ORDER BY {row}), '')) AS hash"
            f' FROM public."{table}" x{where}'
        )

    async def take(self) -> dict[str, tuple[int, str]]:
        rows = await self.conn.fetch(self.query)
        return {row["name"]: (row["n"], row["hash"]) for row in rows}

    async def close(self) -> None:
        await self.conn.close()


Snapshot = dict[str, dict[str, tuple[int, str]]]


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    """`service.table (rows before -> after)` for every table that differs."""
    return [
        f"{service}.{table} ({before[service].get(table, (0,))[0]} -> {rows[0]} rows)"
        for service, tables in after.items()
        for table, rows in tables.items()
        if before[service].get(table) != rows
    ]


@dataclass
class Stack:
    """The services of one test, the people who use them, and the fingerprints of their
    databases."""

    loop: asyncio.AbstractEventLoop
    apps: dict[str, FastAPI] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    people: dict[str, User] = field(default_factory=dict)
    portal_secret: str = ""
    # Webhooks' callers are sellers' servers: the home seller's secret key for the role its
    # routes are for ("customer" in the fuzzing's terms), its publishable key for the wrong
    # one ("admin": a 403).
    seller_keys: dict[str, str] = field(default_factory=dict)

    async def snapshot(self, services: Iterable[str]) -> Snapshot:
        names = [s for s in services if s in self.fingerprints]
        taken = await asyncio.gather(*(self.fingerprints[s].take() for s in names))
        return dict(zip(names, taken, strict=True))

    async def session(self, role: str) -> tuple[str, str]:
        """A new live auth session of the admin or the customer: (secret id, handle)."""
        auth = self.apps["auth"].state.context
        opened = await sessions.open_browser_session(
            auth, self.people[role], ip="203.0.113.9", device="bad-input-test"
        )
        return opened.session_id, opened.handle

    async def bearer(self, role: str) -> str:
        """An access token as auth mints it, on a session of its own (auth's routes refuse
        a token whose session has ended, and the fuzzing may sign everyone out)."""
        _, handle = await self.session(role)
        access = await tokens.mint(self.apps["auth"].state.context, self.people[role], handle)
        return access.token

    async def api_headers(self, who: str) -> dict[str, str]:
        if who == "anonymous":
            return {}
        return {"authorization": f"Bearer {await self.bearer(who)}"}

    async def browser_headers(self, who: str) -> dict[str, str]:
        """A browser with its binding cookie and CSRF token, signed in unless anonymous."""
        browser = secrets.token_urlsafe(24)
        cookies = [f"{BROWSER_COOKIE}={browser}"]
        if who != "anonymous":
            session_id, _ = await self.session(who)
            cookies.append(f"{SESSION_COOKIE}={session_id}")
        return {
            "cookie": "; ".join(cookies),
            "x-csrf-token": csrf_token(self.portal_secret, browser),
        }

    async def headers(self, service: str, who: str) -> dict[str, str]:
        if service == "portal":
            return await self.browser_headers(who)
        if service == "site":
            return {}  # static files: nobody signs in
        if service == "webhooks":
            key = self.seller_keys.get(who)
            return {"authorization": f"Bearer {key}"} if key else {}
        return await self.api_headers(who)


def settings_for(
    name: str, url: dict[str, str], database: str, mail: MailCatcher, workers: bool
) -> Any:
    if name == "auth":
        return AuthSettings(
            database_url=database, smtp_port=mail.smtp_port, portal_url=url["portal"],
            bootstrap_admins=[ADMIN_EMAIL], run_workers=workers, mail_poll_seconds=0.2,
            **AUTH_ROOMY,
        )  # fmt: skip
    if name == "billing":
        return BillingSettings(
            database_url=database, catalog_file=CATALOG, public_url=url["billing"],
            portal_url=url["portal"], stripe_webhook_secrets=[WEBHOOK_SECRET],
            webhook_rate_limit=ROOMY, checkout_rate_limit=ROOMY, api_rate_limit=ROOMY,
            run_workers=workers,
        )  # fmt: skip
    if name == "webhooks":
        # Without its workers: no event lands in its database mid-request, and no
        # delivery is attempted (a request's writes are all there is to compare).
        return WebhooksSettings(
            database_url=database, rate_per_seller_key=100_000, run_workers=False
        )
    return LicensingSettings(
        database_url=database, auth_jwks_url=url["auth"] + "/.well-known/jwks.json",
        rate_per_ip=100_000, rate_per_key=100_000, run_workers=workers,
    )  # fmt: skip


def create(name: str, settings: Any, infra: InfraSettings) -> FastAPI:
    factories: dict[str, Callable[[Any, InfraSettings], FastAPI]] = {
        "auth": create_auth, "billing": create_billing, "licensing": create_licensing,
        "webhooks": create_webhooks,
    }  # fmt: skip
    return factories[name](settings, infra)


async def make_person(stack: Stack, email: str) -> User:
    """A user as billing's AccountCreated event makes one (the admin by bootstrap list)."""
    pool = stack.apps["auth"].state.context.pool
    event = AccountCreated(account_id=new_event_id(), email=email)
    user_id = await users.create_user_for_account(pool, event, [ADMIN_EMAIL])
    assert user_id is not None
    return await users.get_by_id(pool, user_id)


@pytest.fixture
def start_stack(database_factory: Any, infra_settings: InfraSettings) -> Any:
    """`async with start_stack("billing", ...) as stack:` runs auth (the token issuer) and
    the named services. Behind the portal, the upstreams run without their event workers:
    then every write in their databases comes from a request (no event from an earlier
    call lands in the middle of a later one)."""

    @asynccontextmanager
    async def start(*names: str) -> AsyncIterator[Stack]:
        wanted = ["auth", *[n for n in ("billing", "licensing", "webhooks") if n in names]]
        if "portal" in names:
            wanted = ["auth", "billing", "licensing"]
        ports = {n: free_port() for n in (*wanted, "portal")}
        url = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
        infra = infra_settings.model_copy(
            update={"auth_jwks_url": url["auth"] + "/.well-known/jwks.json"}
        )
        stack = Stack(asyncio.get_running_loop(), urls=url)
        await billing_stream(infra)
        async with AsyncExitStack() as exits:
            mail = MailCatcher("127.0.0.1", free_port(), free_port())
            await mail.start()
            exits.push_async_callback(mail.stop)
            for name in wanted:
                database = await database_factory(name)
                app = create(
                    name, settings_for(name, url, database, mail, "portal" not in names), infra
                )
                await _run(exits, app, ports[name])
                # /readyz says 503 until NATS is joined (webhooks runs no workers: never).
                if "portal" not in names and name != "webhooks":
                    await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
                stack.apps[name] = app
                stack.fingerprints[name] = await Fingerprint.of(database)
                exits.push_async_callback(stack.fingerprints[name].close)
                if name == "auth":
                    stack.people["admin"] = await make_person(stack, ADMIN_EMAIL)
                    stack.people["customer"] = await make_person(stack, "fuzz-customer@example.com")
            if "portal" in names:
                portal_settings = PortalSettings(
                    auth_url=url["auth"], billing_url=url["billing"],
                    licensing_url=url["licensing"], port=ports["portal"],
                    rl_sign_in_per_ip=ROOMY, rl_post_per_ip=ROOMY,
                )  # fmt: skip
                stack.portal_secret = portal_settings.secret_key
                stack.apps["portal"] = create_portal(portal_settings, infra)
                await _run(exits, stack.apps["portal"], ports["portal"])
            await directories_replayed(stack, infra)
            if "webhooks" in names:
                await home_seller_keys(stack, infra)
            yield stack

    return start


async def home_seller_keys(stack: Stack, infra: InfraSettings) -> None:
    """The home seller's secret and publishable key (live), published as auth would."""
    context = stack.apps["webhooks"].state.context
    nc = await nats.connect(str(infra.nats_url))
    try:
        texts = await publish_seller_keys(
            nc.jetstream(), Namespace(infra.namespace), context.key_book, context.sellers,
            [(HOME_LIVE, "secret"), (HOME_LIVE, "publishable")],
        )  # fmt: skip
    finally:
        await nc.close()
    stack.seller_keys = {
        "customer": texts[(HOME_LIVE, "secret")], "admin": texts[(HOME_LIVE, "publishable")],
    }  # fmt: skip


async def directories_replayed(stack: Stack, infra: InfraSettings, timeout: float = 15.0) -> None:
    """Every service has the seller directory (until then, a token naming a seller is a
    503 by design, which would stop the fuzzing short of the code behind it). Behind the
    portal auth runs without its relay, so the home seller's record is published here, as
    auth's worker replica would publish it."""
    auth = stack.apps["auth"].state.context
    if not auth.settings.run_workers:
        home = await seller_service.by_id(auth.pool, HOME_SELLER_ID)
        assert home is not None
        ns = Namespace(infra.namespace)
        nc = await nats.connect(str(infra.nats_url))
        try:
            js = nc.jetstream()
            await ensure_stream(js, stream_config(SELLERS, ns))
            record = home.record()
            await js.publish(ns.subject(record.publish_subject()), record.to_json())
        finally:
            await nc.close()
    deadline = time.monotonic() + timeout
    for name, app in stack.apps.items():
        sellers = app.state.context.sellers
        while not (sellers.ready and sellers.by_id(HOME_SELLER_ID) is not None):
            assert time.monotonic() < deadline, f"{name} never had the seller directory"
            await asyncio.sleep(0.02)


async def billing_stream(infra: InfraSettings) -> None:
    """Auth and licensing read billing's stream and wait for it to exist (billing declares
    it; the tests without billing declare it as billing would)."""
    nc = await nats.connect(str(infra.nats_url))
    try:
        for stream in (BILLING, WEBHOOKS):
            await ensure_stream(nc.jetstream(), stream_config(stream, Namespace(infra.namespace)))
    finally:
        await nc.close()


async def _run(exits: AsyncExitStack, app: FastAPI, port: int) -> None:
    exits.push_async_callback((await LoopServer.start(app, port, lifespan="on")).stop)


# --- what a refused request must look like --------------------------------------------------


def problem_complaint(response: httpx.Response | Response) -> str | None:
    """None if the body is an RFC 9457 problem for this status; else what is wrong."""
    content_type = _header(response, "content-type")
    if not content_type.startswith(PROBLEM):
        return f"content-type {content_type!r}, not {PROBLEM}"
    try:
        body = json.loads(response.content)
    except ValueError:
        return "the problem body is not JSON"
    if not isinstance(body, dict) or body.get("status") != response.status_code:
        return f"the problem's status does not match: {body!r:.200}"
    if not isinstance(body.get("type"), str) or not isinstance(body.get("title"), str):
        return f"the problem lacks a type or title: {body!r:.200}"
    return None


def page_complaint(response: httpx.Response | Response) -> str | None:
    """The portal's refusals are its HTML error page, except the kernel's body limit when
    it answers from the Content-Length, before any route (or page handler) runs."""
    content_type = _header(response, "content-type")
    if response.status_code == 413 and content_type.startswith(PROBLEM):
        return problem_complaint(response)
    if not content_type.startswith("text/html"):
        return f"content-type {content_type!r}, not the HTML error page"
    if b"<html" not in response.content[:2000].lower():
        return "not an HTML page"
    return None


def _header(response: httpx.Response | Response, name: str) -> str:
    value = response.headers.get(name)
    if isinstance(value, list):
        return value[0] if value else ""
    return value or ""


def site_complaint(response: httpx.Response | Response) -> str | None:
    """The site's missing pages get its HTML 404 page; any other refusal is a problem."""
    if response.status_code == 404 and _header(response, "content-type").startswith("text/html"):
        return None
    return problem_complaint(response)


# RFC 6749 endpoints: OAuth client libraries parse its error object (§5.2), not RFC 9457.
OAUTH_PATHS = ("/v1/device/authorize", "/v1/device/token")


def oauth_complaint(response: httpx.Response | Response) -> str | None:
    """An RFC 6749 §5.2 error object, except where the kernel answers before the route
    (body limit, rate limit), which speaks problem+json."""
    if response.status_code in (413, 429):
        return problem_complaint(response)
    content_type = _header(response, "content-type")
    if not content_type.startswith("application/json"):
        return f"content-type {content_type!r}, not an OAuth error (application/json)"
    try:
        body = json.loads(response.content)
    except ValueError:
        return "the OAuth error is not JSON"
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return f"not an OAuth error object: {body!r:.200}"
    return None


def complaint_for(service: str, path: str, response: httpx.Response | Response) -> str | None:
    if path in ("/healthz", "/readyz"):
        return problem_complaint(response)
    if service == "auth" and path in OAUTH_PATHS:
        return oauth_complaint(response)
    if service == "portal":
        return page_complaint(response)
    if service == "site":
        return site_complaint(response)
    return problem_complaint(response)


# --- the fuzzing (Hypothesis, in a worker thread; the servers stay in the test's loop) ----


@dataclass
class Fuzz:
    """One service under schemathesis: its document, where it runs, who calls it, and
    which databases a refused call must leave alone."""

    service: str
    url: str
    openapi: dict[str, Any]
    stack: Stack
    databases: Sequence[str]
    failures: list[str] = field(default_factory=list)
    calls: int = 0
    examples: dict[tuple[str, str], Case[Any]] = field(default_factory=dict)
    statuses: dict[str, set[int]] = field(default_factory=dict)

    def accepted(self) -> list[str]:
        """The operations that answered below 400 at least once."""
        return [label for label, seen in self.statuses.items() if min(seen) < 400]

    def on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.stack.loop).result(timeout=60)

    def role_of(self, operation: Operation) -> str:
        return "admin" if "/admin" in operation.path else "customer"

    def run(self) -> None:
        schema = schemathesis.openapi.from_dict(self.openapi)
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()
            operation = result.ok()
            self.fuzz(operation, GenerationMode.POSITIVE)
            if negatable(self.openapi["paths"][operation.path][operation.method.lower()]):
                self.fuzz(operation, GenerationMode.NEGATIVE)

    def fuzz(self, operation: Operation, mode: GenerationMode) -> None:
        role = self.role_of(operation)
        other = "customer" if role == "admin" else "admin"
        # Mostly the role the route is for: that is where the interesting code is.
        callers = st.sampled_from((role, role, role, "anonymous", other))

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=(Phase.explicit, Phase.generate),
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
        @given(case=operation.as_strategy(mode), who=callers)
        def attempt(case: Case[Any], who: str) -> None:
            if mode == GenerationMode.POSITIVE:
                self.remember(case)
            self.exchange(case, who)

        try:
            attempt()
        except Unsatisfiable:
            pass  # nothing to make invalid (no parameters, or only free-form strings)
        except (Exception, BaseExceptionGroup) as error:  # schemathesis raises groups
            self.failures.append(f"{operation.label} ({mode.value}): {describe(error)}")

    def remember(self, case: Case[Any]) -> None:
        """Keep the valid case with the fullest object body, for the hand-made cases."""
        key = (case.method.upper(), case.operation.path)
        known = self.examples.get(key)
        if known is None or size(case.body) > size(known.body):
            self.examples[key] = case

    def exchange(self, case: Case[Any], who: str) -> None:
        headers = self.on_loop(self.stack.headers(self.service, who))
        before = self.on_loop(self.stack.snapshot(self.databases))
        # One request per case: a redirect is the answer under test, not its target.
        response = case.call(base_url=self.url, headers=headers, timeout=15, max_redirects=0)
        self.calls += 1
        self.statuses.setdefault(case.operation.label, set()).add(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])
        if 400 <= response.status_code < 500:
            label = f"{case.as_curl_command(headers)} as {who} -> {response.status_code}"
            complaint = complaint_for(self.service, case.operation.path, response)
            if complaint is not None:
                raise AssertionError(f"{label}: {complaint}")
            after = self.on_loop(self.stack.snapshot(self.databases))
            if after != before:
                raise AssertionError(f"{label} changed {changed(before, after)}")


def negatable(operation: Mapping[str, Any]) -> bool:
    """Whether invalid input exists for an operation: a body, or a parameter with a type or
    constraint to break (a bare string path segment has none: every string is one)."""
    if "requestBody" in operation:
        return True
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        bare = schema.get("type") == "string" and not set(schema) - {"type", "title"}
        if parameter["in"] != "path" or not bare:
            return True
    return False


def size(body: Any) -> int:
    return len(body) if isinstance(body, dict) else -1


def describe(error: BaseException) -> str:
    """The failure and how to reproduce it (Hypothesis' own note names no values here)."""
    text = "".join(traceback.format_exception_only(error)).strip()
    text = text.split("\nFailing test case:", 1)[0]
    inner = getattr(error, "exceptions", None)
    if inner:
        # Hypothesis' FlakyFailure names the cause only inside the group.
        text += " <- " + describe(inner[0])
    return text[:3000]


async def fuzz(stack: Stack, service: str, databases: Sequence[str]) -> Fuzz:
    target = Fuzz(service, stack.urls[service], stack.apps[service].openapi(), stack, databases)
    await asyncio.to_thread(target.run)
    return target


# --- hand-made bad bodies -------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """One bad request. `must_refuse`: it must be a 4xx (else only: not a 5xx)."""

    label: str
    content: bytes | None
    content_type: str | None
    must_refuse: bool = True
    status: int | None = None
    stream: bool = False


@dataclass(frozen=True)
class JsonRoute:
    method: str
    path: str  # with path parameters filled in
    template: str
    example: dict[str, Any]
    properties: Mapping[str, Any]
    limit: int


def json_routes(fuzzed: Fuzz, limit_for: Callable[[str], int]) -> list[JsonRoute]:
    """Every operation taking a JSON body, with the fullest valid body the fuzzing sent it
    (valid: generated in the positive mode, from the schema)."""
    openapi = fuzzed.openapi
    routes = []
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            case = fuzzed.examples[(method.upper(), path)]
            body_schema = resolve(openapi, content["application/json"]["schema"])
            properties = object_properties(openapi, body_schema)
            routes.append(
                JsonRoute(
                    method.upper(), case.formatted_path, path,
                    dict(case.body) if isinstance(case.body, dict) else {},
                    {k: resolve(openapi, v) for k, v in properties.items()}, limit_for(path),
                )
            )  # fmt: skip
    return routes


def resolve(openapi: dict[str, Any], schema: Any) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = openapi["components"]["schemas"][name]
    return schema


def object_properties(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The properties of the object a body schema describes (an optional body is anyOf
    [object, null])."""
    if "properties" in schema:
        return dict(schema["properties"])
    for option in schema.get("anyOf", []):
        option = resolve(openapi, option)
        if isinstance(option, dict) and "properties" in option:
            return dict(option["properties"])
    return {}


def json_types(openapi: dict[str, Any], schema: Any) -> set[str] | None:
    """The JSON types a property schema allows; None when it allows any."""
    schema = resolve(openapi, schema)
    if not isinstance(schema, dict):
        return None
    if "type" in schema:
        kinds = schema["type"]
        return set(kinds) if isinstance(kinds, list) else {kinds}
    options = schema.get("anyOf") or schema.get("oneOf")
    if not options:
        return None
    found: set[str] = set()
    for option in options:
        kinds = json_types(openapi, option)
        if kinds is None:
            return None
        found |= kinds
    return found


# A value of each JSON type that no lenient parser turns into another type ("12" would
# become an int, 1 a bool, an int a datetime).
WRONG = {
    "string": [1, 2],
    "integer": "not-a-number",
    "number": "not-a-number",
    "boolean": "perhaps",
    "array": {"not": "an array"},
    "object": ["not", "an object"],
}
WRONG_KIND = {"string": "array", "integer": "string", "number": "string", "boolean": "string",
              "array": "object", "object": "array"}  # fmt: skip


def mistyped(openapi: dict[str, Any], route: JsonRoute) -> list[Bad]:
    """For each property of a known type: the valid example with that property's value of
    another type (strings for ints, arrays for strings, ...)."""
    cases = []
    for name, schema in route.properties.items():
        allowed = json_types(openapi, schema)
        if allowed is None:
            continue
        kind = next((k for k in ("integer", "number", "string", "boolean", "object", "array")
                     if k in allowed), None)  # fmt: skip
        if (
            kind is None
            or WRONG_KIND[kind] in allowed
            or (WRONG_KIND[kind] == "string" and "integer" in allowed)
        ):
            continue
        body = {**route.example, name: WRONG[kind]}
        cases.append(Bad(f"{name}: {WRONG_KIND[kind]} for {kind}", dumps(body), "application/json"))
    return cases


def with_nul(value: Any) -> Any:
    """Every string of `value` with a NUL inside (valid JSON; Postgres text refuses it)."""
    if isinstance(value, str):
        return value[:1] + "\x00" + value[1:]
    if isinstance(value, dict):
        return {k: with_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_nul(v) for v in value]
    return value


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def bad_json_bodies(openapi: dict[str, Any], route: JsonRoute) -> list[Bad]:
    valid = dumps(route.example)
    depth = min(2000, route.limit // 2 - 10)
    padding = route.limit + 1 - len(b'{"pad": ""}')
    oversized = b'{"pad": "' + b"x" * padding + b'"}'
    return [
        Bad("truncated JSON", valid[: len(valid) // 2], "application/json", status=400),
        Bad("truncated at the first byte", valid[:1], "application/json", status=400),
        Bad("not JSON", b"{key: 'value',}", "application/json", status=400),
        Bad("not UTF-8", b'{"a": "\xff\xfe"}', "application/json", status=400),
        Bad("nested too deep", b"[" * depth + b"]" * depth, "application/json"),
        Bad("array for object", b"[]", "application/json"),
        Bad("array of the body", b"[" + valid + b"]", "application/json"),
        Bad("string for object", b'"text"', "application/json"),
        Bad("number for object", b"42", "application/json"),
        *mistyped(openapi, route),
        Bad(
            "NUL in every string",
            dumps(with_nul(route.example)),
            "application/json",
            must_refuse=False,
        ),
        Bad("text/plain", valid, "text/plain"),
        Bad("form content-type", valid, "application/x-www-form-urlencoded"),
        Bad("multipart without boundary", valid, "multipart/form-data"),
        Bad("xml", b"<a>1</a>", "application/xml"),
        Bad("no content-type", valid, None, must_refuse=False),
        Bad("oversized", oversized, "application/json", status=413),
        Bad("oversized, streamed", oversized, "application/json", status=413, stream=True),
    ]


async def chunks(content: bytes, chunk: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(content), chunk):
        yield content[start : start + chunk]


@dataclass
class Prober:
    """Sends hand-made bad requests to one service, checks each answer and the databases."""

    stack: Stack
    service: str
    databases: Sequence[str]
    failures: list[str] = field(default_factory=list)
    calls: int = 0
    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=self.stack.urls[self.service], timeout=15)

    async def __aenter__(self) -> Prober:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()

    async def send(
        self, method: str, path: str, bad: Bad, headers: Mapping[str, str] | None = None
    ) -> None:
        extra = dict(headers or {})
        if bad.content_type is not None:
            extra["content-type"] = bad.content_type
        content: Any = chunks(bad.content) if bad.stream and bad.content else bad.content
        label = f"{method} {path} [{bad.label}]"
        before = await self.stack.snapshot(self.databases)
        self.http.cookies.clear()  # each request carries exactly the headers it is given
        response = await self.http.request(method, path, content=content, headers=extra)
        self.calls += 1
        problem = self.judge(response, bad)
        if problem is None and 400 <= response.status_code < 500:
            after = await self.stack.snapshot(self.databases)
            if after != before:
                problem = f"a {response.status_code} changed {changed(before, after)}"
        if problem is not None:
            self.failures.append(f"{label}: {problem}")

    def judge(self, response: httpx.Response, bad: Bad) -> str | None:
        status = response.status_code
        if status >= 500:
            return f"{status}: {response.text[:300]}"
        if bad.status is not None and status != bad.status:
            return f"{status}, expected {bad.status}: {response.text[:300]}"
        if bad.must_refuse and not 400 <= status < 500:
            return f"accepted with {status}: {response.text[:300]}"
        if 400 <= status < 500:
            return complaint_for(self.service, response.request.url.path, response)
        return None

    async def cut_off(
        self, method: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> None:
        """A body shorter than its Content-Length, then the client hangs up: nothing may be
        written (and nothing logged as unhandled, which the test's log check sees)."""
        before = await self.stack.snapshot(self.databases)
        port = int(self.stack.urls[self.service].rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1", "content-type: application/json",
                f"content-length: {len(body) + 100}", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), timeout=15)
        writer.close()
        self.calls += 1
        status_line = answer.split(b"\r\n", 1)[0]
        if status_line.startswith(b"HTTP/1.1 5"):
            self.failures.append(f"{method} {path} [cut off]: {status_line!r}")
        after = await self.stack.snapshot(self.databases)
        if after != before:
            self.failures.append(f"{method} {path} [cut off] changed {changed(before, after)}")


async def probe_json_routes(prober: Prober, fuzzed: Fuzz, limit_for: Callable[[str], int]) -> None:
    """Every bad JSON body at every JSON route, as the role the route is for."""
    stack = prober.stack
    routes = json_routes(fuzzed, limit_for)
    assert routes, f"{prober.service} has no JSON body to probe"
    for route in routes:
        role = "admin" if "/admin" in route.template else "customer"
        for bad in bad_json_bodies(fuzzed.openapi, route):
            await prober.send(
                route.method, route.path, bad, await stack.headers(prober.service, role)
            )
        headers = await stack.headers(prober.service, role)
        await prober.cut_off(route.method, route.path, dumps(route.example), headers)


NUL = "a\x00b"


async def probe_nul_parameters(prober: Prober, fuzzed: Fuzz) -> None:
    """A NUL in every string parameter (path and query) of every operation, the rest as the
    fuzzing's valid example had it: URLs carry it (%00); Postgres text refuses it."""
    for (method, template), case in fuzzed.examples.items():
        operation = fuzzed.openapi["paths"][template][method.lower()]
        strings = {
            p["name"]: p["in"]
            for p in operation.get("parameters", [])
            if "string" in (json_types(fuzzed.openapi, p.get("schema", {})) or {"string"})
        }
        if not strings:
            continue
        path = template
        for name, value in (case.path_parameters or {}).items():
            path = path.replace(
                f"{{{name}}}", quote(NUL if name in strings else str(value), safe="")
            )
        query = {
            **(case.query or {}),
            **{n: NUL for n, where in strings.items() if where == "query"},
        }
        body = dumps(case.body) if isinstance(case.body, dict) else None
        bad = Bad(
            "NUL in parameters", body, "application/json" if body else None, must_refuse=False
        )
        who = "admin" if "/admin" in template else "customer"
        headers = await prober.stack.headers(prober.service, who)
        await prober.send(method, f"{path}?{urlencode(query, doseq=True)}", bad, headers)


def report(*parts: Fuzz | Prober) -> str:
    failures = [f for part in parts for f in part.failures]
    return f"{len(failures)} failures:\n\n" + "\n\n".join(failures)


class Collected(logging.Handler):
    """Keeps the warnings and errors logged while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def unhandled() -> Iterator[Callable[[], list[str]]]:
    """Requests that ended in an unhandled exception, as the services logged them: a 500
    the client never saw (it had hung up) is still a 500. Attached to the services' own
    loggers, not the root: each service replaces the root's handlers when it starts."""
    handler = Collected()
    loggers = [logging.getLogger(name) for name in ("tessera", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)

    def found() -> list[str]:
        return [
            f"{r.name}: {r.getMessage()} {r.exc_info[1] if r.exc_info else ''}"[:1500]
            for r in handler.records
            if r.getMessage() in UNHANDLED or r.levelno >= logging.ERROR
        ]

    yield found
    for logger in loggers:
        logger.removeHandler(handler)


# --- the tests ------------------------------------------------------------------------------


async def test_auth_refuses_bad_input_cleanly(start_stack: Any, unhandled: Any) -> None:
    async with start_stack() as stack, Prober(stack, "auth", ["auth"]) as probed:
        fuzzed = await fuzz(stack, "auth", ["auth"])
        await probe_json_routes(probed, fuzzed, lambda _: 64 * 1024)
        await probe_nul_parameters(probed, fuzzed)
        for path in OAUTH_PATHS:  # form bodies the OpenAPI document does not describe
            for bad in bad_oauth_forms(64 * 1024):
                await probed.send("POST", path, bad)
    assert fuzzed.calls > 100 and probed.calls > 50
    # The authorised code was reached, as a customer and as an admin (not only the 401).
    assert {"GET /v1/sessions", "POST /v1/sessions/revoke-all", "GET /v1/admin/users"} <= set(
        fuzzed.accepted()
    )
    assert not fuzzed.failures + probed.failures, report(fuzzed, probed)
    assert not unhandled(), unhandled()


def bad_oauth_forms(limit: int) -> list[Bad]:
    form = "application/x-www-form-urlencoded"
    oversized = b"client_id=" + b"x" * limit
    return [
        Bad("JSON", b'{"client_id": "chartgpt-desktop"}', "application/json"),
        Bad("array of JSON", b"[]", "application/json"),
        Bad("repeated parameter", b"client_id=a&client_id=b&grant_type=x&grant_type=y", form),
        Bad("not UTF-8", b"client_id=\xff\xfe&grant_type=\xff", form),
        Bad("truncated escape", b"client_id=%E2%82&grant_type=%", form),
        Bad("empty", b"", form),
        Bad("over the form limit", b"client_id=" + b"x" * 5000, form),
        Bad("multipart", b"--b\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\nx",
            "multipart/form-data; boundary=b"),
        Bad("oversized", oversized, form, status=413),
        Bad("oversized, streamed", oversized, form, status=413, stream=True),
    ]  # fmt: skip


async def test_licensing_refuses_bad_input_cleanly(start_stack: Any, unhandled: Any) -> None:
    async with (
        start_stack("licensing") as stack,
        Prober(stack, "licensing", ["licensing"]) as probed,
    ):
        fuzzed = await fuzz(stack, "licensing", ["licensing"])
        await probe_json_routes(probed, fuzzed, lambda _: 8 * 1024)
        await probe_nul_parameters(probed, fuzzed)
    assert fuzzed.calls > 100 and probed.calls > 50
    assert {"GET /v1/me/licenses", "GET /v1/admin/licenses", "GET /v1/admin/audit"} <= set(
        fuzzed.accepted()
    )
    assert not fuzzed.failures + probed.failures, report(fuzzed, probed)
    assert not unhandled(), unhandled()


async def test_billing_refuses_bad_input_cleanly(start_stack: Any, unhandled: Any) -> None:
    async with (
        start_stack("billing") as stack,
        Prober(stack, "billing", ["billing"]) as probed,
        Prober(stack, "billing", ["billing"]) as webhooks,
    ):
        fuzzed = await fuzz(stack, "billing", ["billing"])
        await probe_json_routes(probed, fuzzed, lambda _: 64 * 1024)
        await probe_nul_parameters(probed, fuzzed)
        await probe_stripe_webhook(webhooks)
    assert fuzzed.calls > 100 and probed.calls > 20
    assert {"GET /v1/me/orders", "POST /v1/admin/accounts", "GET /v1/admin/revenue"} <= set(
        fuzzed.accepted()
    )
    assert not fuzzed.failures + probed.failures + webhooks.failures, report(
        fuzzed, probed, webhooks
    )
    assert not unhandled(), unhandled()


async def test_webhooks_refuses_bad_input_cleanly(start_stack: Any, unhandled: Any) -> None:
    async with (
        start_stack("webhooks") as stack,
        Prober(stack, "webhooks", ["webhooks"]) as probed,
    ):
        fuzzed = await fuzz(stack, "webhooks", ["webhooks"])
        await probe_json_routes(probed, fuzzed, lambda _: 16 * 1024)
        await probe_nul_parameters(probed, fuzzed)
    assert fuzzed.calls > 50 and probed.calls > 50
    # The secret key's code was reached (not only the 401 and 403).
    assert {"POST /v1/webhook-endpoints", "GET /v1/webhook-endpoints"} <= set(fuzzed.accepted())
    assert not fuzzed.failures + probed.failures, report(fuzzed, probed)
    assert not unhandled(), unhandled()


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """`Stripe-Signature` as Stripe computes it (over the raw bytes, whatever they are)."""
    timestamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def stripe_event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"evt_test_{secrets.token_hex(12)}", "object": "event", "api_version": "2024-06-20",
        "created": 1_700_000_000, "livemode": False, "type": "checkout.session.completed",
        "data": {"object": {"id": f"cs_test_{secrets.token_hex(8)}", "object": "checkout.session"}},
    }  # fmt: skip
    event.update(changes)
    return event


async def probe_stripe_webhook(prober: Prober) -> None:
    """Correctly signed, broken bodies: the signature check passes, so the parsing behind it
    is what answers. They must be refused (400, 413) and leave no trace."""
    valid = dumps(stripe_event())
    signed_bad = [
        Bad("truncated JSON", valid[: len(valid) // 2], "application/json", status=400),
        Bad("not UTF-8", b'{"id": "evt_\xff"}', "application/json", status=400),
        Bad("nested too deep", b"[" * 5000 + b"]" * 5000, "application/json", status=400),
        Bad("array", b"[" + valid + b"]", "application/json", status=400),
        Bad("string", b'"evt_1"', "application/json", status=400),
        Bad("null", b"null", "application/json", status=400),
        Bad("id: number", dumps(stripe_event(id=5)), "application/json", status=400),
        Bad("type: array", dumps(stripe_event(type=[])), "application/json", status=400),
        Bad("created: string", dumps(stripe_event(created="soon")), "application/json", status=400),
        Bad("data: string", dumps(stripe_event(data="x")), "application/json", status=400),
        Bad("data.object: array", dumps(stripe_event(data={"object": []})), "application/json",
            status=400),
        Bad("text/plain, truncated", valid[:20], "text/plain", status=400),
    ]  # fmt: skip
    for bad in signed_bad:
        assert bad.content is not None
        await prober.send("POST", "/webhooks/stripe", bad, {"stripe-signature": sign(bad.content)})
    limit = BillingSettings.model_fields["webhook_max_bytes"].default
    huge = dumps(stripe_event(data={"object": {"pad": "x" * limit}}))
    for bad in (
        Bad("oversized", huge, "application/json", status=413),
        Bad("oversized, streamed", huge, "application/json", status=413, stream=True),
    ):
        await prober.send("POST", "/webhooks/stripe", bad, {"stripe-signature": sign(huge)})
    unsigned = Bad("unsigned", valid, "application/json", status=400)
    await prober.send("POST", "/webhooks/stripe", unsigned)
    await prober.send(
        "POST", "/webhooks/stripe", Bad("signed by another secret", valid, "application/json",
                                        status=400), {"stripe-signature": sign(valid, "whsec_x")}
    )  # fmt: skip
    await prober.cut_off("POST", "/webhooks/stripe", valid, {"stripe-signature": sign(valid)})
    # Well-formed JSON that Postgres' jsonb refuses (the NUL escape). Last: were it accepted,
    # the applier would write a moment later, under the next probe's fingerprint.
    nul = dumps(stripe_event(data={"object": {"id": "cs_\x00"}}))
    await prober.send(
        "POST", "/webhooks/stripe", Bad("NUL in a string", nul, "application/json",
                                        must_refuse=False), {"stripe-signature": sign(nul)}
    )  # fmt: skip


# One form of each kind: signed out, signed in, admin (they share the parsing behind).
PORTAL_FORMS = ("/sign-in", "/device", "/admin/actions/disable-user")


def bad_forms(limit: int) -> list[Bad]:
    boundary = "fuzzboundary"
    multipart = f"multipart/form-data; boundary={boundary}"
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="email"\r\n\r\n'
    upload = (f'--{boundary}\r\nContent-Disposition: form-data; name="email"; filename="a.txt"'
              f"\r\nContent-Type: text/plain\r\n\r\nbuyer@example.com\r\n--{boundary}--\r\n")  # fmt: skip
    oversized = b"email=" + b"x" * limit
    form = "application/x-www-form-urlencoded"
    return [
        Bad("JSON for a form", b'{"email": "buyer@example.com"}', "application/json"),
        Bad("array of JSON", b"[]", "application/json"),
        Bad("truncated multipart", (part + "buyer@exa").encode(), multipart),
        Bad("multipart without boundary", b"email=a", "multipart/form-data"),
        Bad("a file for a text field", upload.encode(), multipart),
        Bad("text/plain", b"email=buyer@example.com", "text/plain"),
        Bad("not UTF-8", b"email=%ff%fe&token=%ff", form, must_refuse=False),
        Bad("oversized", oversized, form, status=413),
        Bad("oversized, streamed", oversized, form, status=413, stream=True),
    ]


async def test_portal_refuses_bad_input_cleanly(start_stack: Any, unhandled: Any) -> None:
    upstreams = ["auth", "billing", "licensing"]
    async with start_stack("portal") as stack, Prober(stack, "portal", upstreams) as prober:
        fuzzed = await fuzz(stack, "portal", upstreams)
        await probe_nul_parameters(prober, fuzzed)
        for path in PORTAL_FORMS:
            who = "admin" if path.startswith("/admin") else "customer"
            for bad in bad_forms(64 * 1024):
                await prober.send("POST", path, bad, await stack.browser_headers(who))
            await prober.cut_off("POST", path, b"email=a", await stack.browser_headers(who))
    assert fuzzed.calls > 150 and prober.calls > 25
    assert {"GET /orders", "GET /account/sessions", "GET /admin"} <= set(fuzzed.accepted())
    assert not fuzzed.failures + prober.failures, report(fuzzed, prober)
    assert not unhandled(), unhandled()


async def test_site_refuses_bad_input_cleanly(tmp_path: Path, unhandled: Any) -> None:
    """The site is static files for browsers: a missing page is its HTML 404 page, any
    other refusal problem+json; no body is ever read."""
    settings = SiteSettings(
        dist_dir=tmp_path / "dist", docs_dir=REPO / "docs", catalog_file=CATALOG
    )
    app = create_site(settings)
    port = free_port()
    served = await LoopServer.start(app, port, lifespan="on")
    stack = Stack(
        asyncio.get_running_loop(), apps={"site": app}, urls={"site": f"http://127.0.0.1:{port}"}
    )
    try:
        fuzzed = await fuzz(stack, "site", [])
        async with Prober(stack, "site", []) as prober:
            await probe_site(prober)
    finally:
        await served.stop()
    assert fuzzed.calls >= 2 and prober.calls > 10
    assert not fuzzed.failures + prober.failures, report(fuzzed, prober)
    assert not unhandled(), unhandled()


async def probe_site(prober: Prober) -> None:
    """Bodies the static server never reads, and paths no file system takes."""
    for bad in (
        Bad("truncated JSON", b'{"a": ', "application/json"),
        Bad("oversized", b"x" * (1024 * 1024), "application/json"),
        Bad("oversized, streamed", b"x" * (1024 * 1024), "application/json", stream=True),
        Bad("form", b"a=1", "application/x-www-form-urlencoded"),
    ):
        for path in ("/", "/index.html", "/docs/"):
            await prober.send("POST", path, bad)
    for path in ("/%ff%fe", "/../../etc/passwd", "/index.html/..%2f..%2fpyproject.toml",
                 "/" + "a" * 5000):  # fmt: skip
        await prober.send("GET", path, Bad("odd path", None, None))
    await prober.send("GET", "/?q=" + "%00" * 100, Bad("odd query", None, None, must_refuse=False))
