"""Proof of tenant isolation, generated from the committed OpenAPI documents.

Every operation in `docs/openapi/*.json` whose security names the `apiKey` scheme (the
kernel marks every route that takes a seller's key) or the `bearer` scheme (a route that
reads an access token) is called, for real, against auth, billing and licensing running on
their own databases, this test's NATS and Redis:

- with seller A's credentials (its secret key, its publishable key, a token of one of its
  customers, and a token of its owner, a member) against seller B's ids, and
- with A's test-mode credentials against A's live ids.

Every credential is real: the sellers, members and customers are auth's, the keys come
from auth's key routes, the tokens from auth's `POST /v1/sessions/token`, and billing and
licensing verify them against auth's JWKS.

Path parameters and body fields that name an object are filled from `IDS` by name: a
parameter or a required body field this test does not know FAILS it, telling the author to
add it, so a new route cannot escape. A call that names an object must be refused (4xx, a
problem); one that names none (`/v1/me/orders`) may answer, but none of the other tenant's
ids may appear in it. Before and after all the calls, every row of every table with a
`seller_id` column, in each service's database (and in auth the seller's own row and its
members' users), is hashed: nothing may change; the victim's sessions (in Redis) still
work. Any document with such an operation, of a service this test does not run, fails it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import nats
import pytest
from fastapi import FastAPI

from tessera.auth.app import create_app as create_auth
from tessera.auth.members import queries as member_queries
from tessera.auth.sellers import service as sellers
from tessera.auth.sessions import service as sessions
from tessera.auth.settings import AuthSettings
from tessera.auth.users import service as users
from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.devstack.infra import free_port
from tessera.devstack.mailcatcher import MailCatcher
from tessera.devstack.platform_plan import pay_platform_plans
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.settings import LicensingSettings
from tessera.shared.events.billing import AccountCreated
from tessera.shared.events.topology import BILLING, Namespace
from tessera.shared.sellers import HOME_LIVE, Tenant
from tessera.shared.settings import InfraSettings
from tessera.webhooks.app import create_app as create_webhooks
from tessera.webhooks.settings import WebhooksSettings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
OPENAPI = REPO / "docs" / "openapi"
CATALOG = REPO / "deploy" / "catalog.json"
SERVICES = ("auth", "billing", "licensing", "webhooks")
SECURED = {"apiKey", "bearer"}

SELLER_A = UUID("00000000-0000-4000-8000-00000000a001")
SELLER_B = UUID("00000000-0000-4000-8000-00000000b002")
A_LIVE, A_TEST, B_LIVE = (
    Tenant(SELLER_A, "live"),
    Tenant(SELLER_A, "test"),
    Tenant(SELLER_B, "live"),
)
SLUGS = {SELLER_A: "seller-a", SELLER_B: "seller-b"}
IP = "203.0.113.9"


def secured_operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(service, method, path, operation) for every operation taking a seller credential
    or an access token, in every committed document. Signing every session out goes last,
    so that it cannot make the calls after it fail for the wrong reason."""
    found = []
    for document in sorted(OPENAPI.glob("*.json")):
        spec = json.loads(document.read_text())
        for path, item in spec["paths"].items():
            for method, op in item.items():
                schemes = {name for requirement in op.get("security") or [] for name in requirement}
                if schemes & SECURED:
                    found.append((document.stem, method, path, op | {"_spec": spec}))
    return sorted(found, key=lambda found: found[2].endswith("/revoke-all"))


OPERATIONS = secured_operations()


@dataclass
class SellerObjects:
    """A seller's own objects in auth (not per mode)."""

    slug: str
    member: UUID
    invite: UUID
    pair: UUID


@dataclass
class Objects:
    """One tenant's ids, by the parameter or field name a route uses for them."""

    customer: UUID
    license: UUID
    activation: UUID
    order: UUID
    # The customer's id as auth's customer API answers it.
    auth_customer: str
    seller: SellerObjects
    # The tenant's webhook endpoint.
    endpoint: UUID = field(default_factory=uuid.uuid4)
    # A session of the customer's, opened just before the calls (sessions are in Redis).
    session: str = ""
    handle: str = ""
    # The tenant's own catalog code (billing's catalog API): a product, a tier and a
    # one-time price share it.
    catalog_code: str = "no-such-code"

    def by_name(self, service: str) -> dict[str, str]:
        return {
            "customer_id": self.auth_customer if service == "auth" else str(self.customer),
            "account_id": str(self.customer),
            "license_id": str(self.license),
            "activation_id": str(self.activation),
            "order_id": str(self.order),
            # A Stripe event's id names no seller object of these (only the operator's
            # admin routes take one); the order's, made into an event id, stands for it.
            "event_id": f"evt_{self.order.hex}",
            "slug": self.seller.slug,
            "user_id": str(self.seller.member),
            "invite_id": str(self.seller.invite),
            "pair_id": str(self.seller.pair),
            "handle": self.handle,
            "product_code": self.catalog_code,
            "tier_code": self.catalog_code,
            "sku_code": self.catalog_code,
            # A checkout for a tier names the tenant's tier.
            "tier": self.catalog_code,
            # The tenant's subscription (seeded beside its order; Stripe's id).
            "subscription_id": f"sub_{self.order.hex}",
            "endpoint_id": str(self.endpoint),
            # The tenant's pending Connect authorization (seeded with the order's id).
            "pending_id": str(self.order),
        }


# Required body fields that name no object, filled with a value the route accepts.
PLAIN_FIELDS: dict[str, Any] = {
    "reason": "isolation test",
    "product": "tool",
    "policy": "tool-year",
    "seats": 1,
    "fingerprint": "isolation-machine",
    "email": "c@example.com",
    "note": "isolation test",
    "sku": "tool",
    "expires_at": None,
    "browser": "isolation-test-browser-0001",
    "name": "isolation",
    "mode": "live",
    "overlap_seconds": 0,
    "user_code": "BCDFGHJK",
    "decision": "deny",
    # Billing's catalog API: a create's body names the new object (its own code), so it
    # names no object of another tenant; the product "tool" exists in none of them.
    "code": "isolation-new",
    "unit_amount": 100,
    "currency": "usd",
    "prices": {"month": {"amount": 100, "currency": "usd"}},
    # A tier a seller assigns to a customer itself (licensing's usage plan).
    "grants": {"quotas": {"api_calls": {"limit": 5}}},
    # A webhook endpoint's URL (a create names no object of another tenant).
    "url": "https://hooks.example.com/isolation",
}


def fill_path(path: str, op: dict[str, Any], ids: dict[str, str]) -> str:
    for param in op.get("parameters", []):
        if param["in"] != "path":
            continue
        name = param["name"]
        assert name in ids, (
            f"{path}: path parameter {name!r} is unknown to tests/test_isolation.py; add it to"
            " Objects.by_name so the route is called with the other tenant's id"
        )
        path = path.replace("{" + name + "}", ids[name])
    return path


def body_for(path: str, op: dict[str, Any], ids: dict[str, str]) -> dict[str, Any] | None:
    content = (op.get("requestBody") or {}).get("content", {}).get("application/json")
    if content is None:
        return None
    schema = content["schema"]
    if "$ref" in schema:
        schema = op["_spec"]["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    body: dict[str, Any] = {}
    for field_name in schema.get("required", []):
        if field_name in ids:
            body[field_name] = ids[field_name]
        else:
            assert field_name in PLAIN_FIELDS, (
                f"{path}: required body field {field_name!r} is unknown to"
                " tests/test_isolation.py; add it to Objects.by_name (an id) or PLAIN_FIELDS"
            )
            body[field_name] = PLAIN_FIELDS[field_name]
    return body


def names_an_object(path: str, body: dict[str, Any] | None, ids: dict[str, str]) -> bool:
    return "{" in path or any(k in ids for k in body or {})


@dataclass
class Stack:
    http: dict[str, httpx.AsyncClient]
    databases: dict[str, str]
    auth: Any
    keys: dict[tuple[Tenant, str], str]
    sellers: dict[UUID, SellerObjects]
    # The owner's access token, per seller.
    members: dict[UUID, str] = field(default_factory=dict)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def fingerprint(database: str, tenant: Tenant) -> dict[str, str]:
    """Every table with a `seller_id` column: a hash of all the tenant's rows (of the
    seller's, in a table not per mode); and in auth the seller's own row and its members'
    users (home users, so of no seller's tenant)."""
    conn = await asyncpg.connect(database)
    try:
        tables = await conn.fetch(
            "SELECT c.table_name, bool_or(m.column_name IS NOT NULL) AS per_mode"
            "  FROM information_schema.columns c"
            "  LEFT JOIN information_schema.columns m ON m.table_name = c.table_name"
            "   AND m.table_schema = c.table_schema AND m.column_name = 'mode'"
            " WHERE c.column_name = 'seller_id' AND c.table_schema = 'public'"
            "   AND c.table_name IN (SELECT table_name FROM information_schema.tables"
            "                         WHERE table_type = 'BASE TABLE')"
            " GROUP BY 1 ORDER BY 1"
        )
        queries = {
            table: f'SELECT t::text FROM "{table}" t WHERE seller_id = $1'  # noqa: S608
            + (" AND mode = $2" if per_mode else " AND $2::text IS NOT NULL")
            for table, per_mode in tables
        }
        if "seller_members" in queries:
            queries["sellers"] = (
                "SELECT t::text FROM sellers t WHERE id = $1 AND $2::text IS NOT NULL"
            )
            queries["members' users"] = (
                "SELECT t::text FROM users t JOIN seller_members m ON m.user_id = t.id"
                " WHERE m.seller_id = $1 AND $2::text IS NOT NULL"
            )
        out = {}
        for name, query in queries.items():
            rows = await conn.fetch(query + " ORDER BY 1", tenant.seller_id, tenant.mode)
            out[name] = hashlib.sha256("\n".join(r[0] for r in rows).encode()).hexdigest()
        assert {"licenses", "orders", "users", "endpoints"} & set(out)
        return out
    finally:
        await conn.close()


async def mail_sent(stack: Stack) -> None:
    """Wait for auth's mail queue to be empty: the sender updating a row queued earlier (a
    welcome, a sign-in link) is no change the calls made."""
    deadline = time.monotonic() + 15
    while await stack.auth.pool.fetchval(
        "SELECT count(*) FROM email_outbox WHERE status = 'pending'"
    ):
        assert time.monotonic() < deadline, "auth's mail queue never emptied"
        await asyncio.sleep(0.05)


async def exchange(auth_http: httpx.AsyncClient, session_id: str) -> httpx.Response:
    return await auth_http.post("/v1/sessions/token", json={"session_id": session_id})


async def signed_in(stack: Stack, user_id: UUID) -> tuple[str, str, str]:
    """A new session of the user (as a verified link opens one) and an access token from
    auth's token route: (session id, handle, token)."""
    user = await users.get_by_id(stack.auth.pool, user_id)
    opened = await sessions.open_browser_session(stack.auth, user, ip=IP, device="isolation")
    answer = await exchange(stack.http["auth"], opened.session_id)
    assert answer.status_code == 200, answer.text
    return opened.session_id, opened.handle, answer.json()["access_token"]


async def make_seller(stack: Stack, seller_id: UUID) -> None:
    """The seller, its owner (a home user, signed in), a key pair per mode from auth's key
    routes, and an open invite."""
    slug, auth = SLUGS[seller_id], stack.auth
    async with auth.pool.acquire() as conn, conn.transaction():
        seller = await sellers.create(conn, seller_id, slug, slug)
        owner = await users.sign_up(conn, HOME_LIVE, f"owner@{slug}.example", [])
        await member_queries.add_member(conn, seller_id, owner.id, "owner")
    auth.sellers.apply(seller.record())
    _, _, token = await signed_in(stack, owner.id)
    stack.members[seller_id] = token
    pairs = {}
    for mode in ("live", "test"):
        made = await stack.http["auth"].post(
            f"/v1/sellers/{slug}/keys", json={"name": mode, "mode": mode}, headers=bearer(token)
        )
        assert made.status_code == 201, made.text
        pairs[mode] = made.json()
        for kind in ("secret", "publishable"):
            stack.keys[(Tenant(seller_id, mode), kind)] = made.json()[kind]["key"]
    invited = await stack.http["auth"].post(
        f"/v1/sellers/{slug}/invites", json={"email": f"dev@{slug}.example"}, headers=bearer(token)
    )
    assert invited.status_code == 201, invited.text
    stack.sellers[seller_id] = SellerObjects(
        slug, owner.id, UUID(invited.json()["id"]), UUID(pairs["live"]["pair_id"])
    )


@pytest.fixture
async def stack(
    database_factory: Any, infra_settings: InfraSettings, running: Any, all_streams: None
) -> AsyncIterator[Stack]:
    mail = MailCatcher("127.0.0.1", free_port(), free_port())
    await mail.start()
    databases = {name: await database_factory(name) for name in SERVICES}
    apps: dict[str, FastAPI] = {
        "auth": create_auth(
            AuthSettings(
                database_url=databases["auth"],
                smtp_port=mail.smtp_port,
                portal_url="https://portal.test",
                mail_poll_seconds=0.1,
            ),
            infra_settings,
        ),
        "billing": create_billing(
            BillingSettings(
                database_url=databases["billing"],
                catalog_file=CATALOG,
                public_url="http://127.0.0.1:9",
            ),
            infra_settings,
        ),
        "licensing": create_licensing(
            LicensingSettings(database_url=databases["licensing"]), infra_settings
        ),
        "webhooks": create_webhooks(
            WebhooksSettings(database_url=databases["webhooks"]), infra_settings
        ),
    }
    async with AsyncExitStack() as exits:
        exits.push_async_callback(mail.stop)
        http = {}
        for name, app in apps.items():
            # Keys' last use is written back in batches; one landing between the hashes
            # would be a change no call made.
            app.state.context.key_use_seconds = 3600
            await exits.enter_async_context(running(app))
            context = app.state.context
            await asyncio.wait_for(context.messaging_ready.wait(), 30)
            await asyncio.wait_for(context.key_book.wait_ready(), 10)
            transport = httpx.ASGITransport(app=app, client=(IP, 5000))
            http[name] = await exits.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=f"http://{name}")
            )
        built = Stack(http, databases, apps["auth"].state.context, {}, {})
        for seller_id in SLUGS:
            await make_seller(built, seller_id)
        # Their live keys work while their platform plans are paid (docs/sellers.md).
        books = [app.state.context.sellers for app in apps.values()]
        await pay_platform_plans(
            str(infra_settings.nats_url), infra_settings.namespace, SLUGS, books
        )
        jwks = (await http["auth"].get("/.well-known/jwks.json")).json()
        deadline = time.monotonic() + 15
        for name, app in apps.items():
            context = app.state.context
            if name != "auth":
                context.token_verifier.jwks.load(jwks)
                context.token_verifier.jwks.max_age = 3600
            while not (
                all(context.sellers.by_id(s) for s in SLUGS)
                and all(_holds(context.key_book, k) for k in built.keys.values())
            ):
                assert time.monotonic() < deadline, "the books never held the sellers and keys"
                await asyncio.sleep(0.02)
        yield built


def _holds(book: Any, text: str) -> bool:
    try:
        book.check(text)
    except Exception:
        return False
    return True


async def seed(stack: Stack, tenant: Tenant, js: Any, ns: Namespace) -> tuple[Objects, str]:
    """A customer with an order in billing, a license on a machine in licensing, and its
    user in auth, made the way they are made in production (events, the seller API, the
    desktop API); and an access token of the customer's, from auth."""
    customer, order = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(stack.databases["billing"])
    try:
        await conn.execute(
            "INSERT INTO accounts (id, email, source, seller_id, mode)"
            " VALUES ($1, 'c@example.com', 'admin', $2, $3)",
            customer, tenant.seller_id, tenant.mode,
        )  # fmt: skip
        await conn.execute(
            """
            INSERT INTO orders (id, account_id, email, sku, quantity, amount_total, currency,
                                product, policy, seats, source, status, paid_at, seller_id, mode)
            VALUES ($1, $2, 'c@example.com', 'tool', 1, 900, 'usd', 'tool', 'tool-year', 1,
                    'admin', 'paid', now(), $3, $4)
            """,
            order, customer, tenant.seller_id, tenant.mode,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO subscriptions (seller_id, mode, id, account_id, status, tier, product,"
            " \"interval\", item_id) VALUES ($1, $2, $3, $4, 'active', 'tool', 'tool', 'month',"
            " 'si_1')",
            tenant.seller_id, tenant.mode, f"sub_{order.hex}", customer,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO stripe_connect_pending (id, seller_id, mode, account_id, livemode,"
            " expires_at) VALUES ($1, $2, $3, $4, $5, now() + interval '1 day')",
            order, tenant.seller_id, tenant.mode, f"acct_{order.hex}", tenant.mode == "live",
        )  # fmt: skip
    finally:
        await conn.close()
    conn = await asyncpg.connect(stack.databases["licensing"])
    try:
        await conn.execute(
            "INSERT INTO products (code, name, seller_id, mode) VALUES ('tool', 'Tool', $1, $2)",
            tenant.seller_id, tenant.mode,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO policies (code, product_code, max_machines, lease_seconds,"
            " grace_seconds, seller_id, mode) VALUES ('tool-year', 'tool', 2, 3600, 60, $1, $2)",
            tenant.seller_id, tenant.mode,
        )  # fmt: skip
        # Billing's event makes the customer in licensing and its user in auth (the
        # account id is the user's `acc`).
        event = AccountCreated(
            account_id=customer, email="c@example.com",
            seller_id=tenant.seller_id, mode=tenant.mode,
        )  # fmt: skip
        await js.publish(ns.subject(event.subject), event.to_json(), stream=ns.stream(BILLING))
        for _ in range(500):
            if await conn.fetchval("SELECT 1 FROM customers WHERE account_id = $1", customer):
                break
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    user_id = None
    for _ in range(500):
        user_id = await stack.auth.pool.fetchval(
            "SELECT id FROM users WHERE account_id = $1", customer
        )
        if user_id is not None:
            break
        await asyncio.sleep(0.02)
    assert user_id is not None, "auth never made the customer's user"
    lic = stack.http["licensing"]
    sk = bearer(stack.keys[(tenant, "secret")])
    granted = await lic.post(
        "/v1/licenses",
        json={"customer_id": str(customer), "product": "tool", "policy": "tool-year"},
        headers=sk,
    )
    assert granted.status_code == 201, granted.text
    license = granted.json()[0]
    activated = await lic.post(
        "/v1/licenses/activate", json={"key": license["key"], "fingerprint": "machine-0001"}
    )
    assert activated.status_code == 200, activated.text
    read = await lic.get(f"/v1/licenses/{license['id']}", headers=sk)
    activation = read.json()["activations"][0]["id"]
    found = await stack.http["auth"].get("/v1/customers?email=c@example.com", headers=sk)
    assert found.status_code == 200 and len(found.json()["data"]) == 1, found.text
    _, _, token = await signed_in(stack, user_id)
    objects = Objects(
        customer, UUID(license["id"]), UUID(activation), order,
        found.json()["data"][0]["id"], stack.sellers[tenant.seller_id],
        catalog_code=await seed_catalog(stack, sk), endpoint=await seed_webhooks(stack, tenant),
    )  # fmt: skip
    return objects, token


async def seed_webhooks(stack: Stack, tenant: Tenant) -> UUID:
    """A webhook endpoint for a type no call makes happen (no delivery, so no attempt, may
    change its row during the calls), once webhooks holds the public events the seeding
    made (the customer created, the license issued): none lands between the hashes."""
    made = await stack.http["webhooks"].post(
        "/v1/webhook-endpoints",
        json={"url": "https://hooks.example.com/tenant", "event_types": ["order.dispute_closed"]},
        headers=bearer(stack.keys[(tenant, "secret")]),
    )
    assert made.status_code == 201, made.text
    conn = await asyncpg.connect(stack.databases["webhooks"])
    try:
        for _ in range(500):
            kinds = await conn.fetchval(
                "SELECT count(DISTINCT type) FROM events WHERE seller_id = $1 AND mode = $2",
                tenant.seller_id, tenant.mode,
            )  # fmt: skip
            if kinds == 2:
                break
            await asyncio.sleep(0.02)
        assert kinds == 2, "webhooks never took the seeding's events"
    finally:
        await conn.close()
    return UUID(made.json()["id"])


async def seed_catalog(stack: Stack, sk: dict[str, str]) -> str:
    """A product with a tier and a one-time price of one code, through the catalog API."""
    code = f"cat-{uuid.uuid4().hex[:12]}"
    for route, body in (
        ("/v1/products", {"code": code, "name": "Catalog"}),
        ("/v1/tiers", {"code": code, "product": code, "name": "Tier",
                       "prices": {"month": {"amount": 900, "currency": "usd"}}}),
        ("/v1/one-time-prices", {"sku": code, "product": code, "name": "Once",
                                 "unit_amount": 900, "currency": "usd", "policy": "tool-year"}),
    ):  # fmt: skip
        made = await stack.http["billing"].post(route, json=body, headers=sk)
        assert made.status_code == 201, made.text
    return code


def credentials(stack: Stack, tenant: Tenant, token: str) -> dict[str, dict[str, str]]:
    """A's credentials in the tenant: its keys, its customer's token and, in live mode, its
    owner's token (a member is a home user, of neither of A's modes: the test-mode round
    does not use it, since A's owner may act on A's live data)."""
    found = {
        "secret key": bearer(stack.keys[(tenant, "secret")]),
        "publishable key": bearer(stack.keys[(tenant, "publishable")]),
        "customer token": bearer(token),
    }
    if tenant.mode == "live":
        found["member token"] = bearer(stack.members[tenant.seller_id])
    return found


def test_every_secured_operation_of_a_service_this_test_runs() -> None:
    """The list is not empty, and a service with secured routes is one this test starts."""
    services = {service for service, *_ in OPERATIONS}
    assert {"auth", "billing", "licensing"} <= services
    assert any("apiKey" in str(op.get("security")) for *_, op in OPERATIONS)
    missing = sorted(services - set(SERVICES))
    assert not missing, f"start {missing} in tests/test_isolation.py"


async def victim_sessions(stack: Stack, victim: Objects) -> Objects:
    """The victim's customer, signed in just now: its session is the `handle` the calls
    name, and must still work after them."""
    user_id = await stack.auth.pool.fetchval(
        "SELECT id FROM users WHERE account_id = $1", victim.customer
    )
    session, handle, _ = await signed_in(stack, user_id)
    victim.session, victim.handle = session, handle
    return victim


async def test_another_tenants_credentials_are_refused_everywhere(
    stack: Stack, infra_settings: InfraSettings
) -> None:
    ns = Namespace(infra_settings.namespace)
    nc = await nats.connect(str(infra_settings.nats_url))
    try:
        js = nc.jetstream()
        mine, mine_token = await seed(stack, A_LIVE, js, ns)
        _, mine_test_token = await seed(stack, A_TEST, js, ns)
        theirs, _ = await seed(stack, B_LIVE, js, ns)
    finally:
        await nc.close()

    called = 0
    for intruder, token, victim, target in (
        (A_LIVE, mine_token, B_LIVE, theirs),
        (A_TEST, mine_test_token, A_LIVE, mine),
    ):
        target = await victim_sessions(stack, target)
        await mail_sent(stack)
        before = {n: await fingerprint(url, victim) for n, url in stack.databases.items()}
        for service, method, path, op in OPERATIONS:
            assert service in SERVICES
            ids = target.by_name(service)
            foreign = set(ids.values())
            url = fill_path(path, op, ids)
            body = body_for(path, op, ids)
            for label, headers in credentials(stack, intruder, token).items():
                answer = await stack.http[service].request(
                    method.upper(), url, json=body, headers=headers
                )
                called += 1
                where = f"{intruder} {label}: {method.upper()} {service} {url}"
                assert answer.status_code < 500, f"{where}: {answer.status_code} {answer.text}"
                if names_an_object(path, body, ids) or answer.status_code >= 400:
                    assert 400 <= answer.status_code < 500, f"{where}: {answer.status_code}"
                    assert answer.headers["content-type"].startswith("application/problem+json"), (
                        where
                    )
                else:
                    leaked = [i for i in foreign if i in answer.text]
                    assert not leaked, f"{where} answered the other tenant's {leaked}"
        await mail_sent(stack)
        after = {n: await fingerprint(url, victim) for n, url in stack.databases.items()}
        assert after == before, f"{intruder}'s calls changed {victim}'s rows"
        still = await exchange(stack.http["auth"], target.session)
        assert still.status_code == 200, f"{intruder}'s calls ended {victim}'s session"
    assert called >= 3 * 2 * 30


def test_an_unknown_path_parameter_fails_the_test() -> None:
    op = {"parameters": [{"in": "path", "name": "widget_id"}]}
    seller = SellerObjects("s", uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    ids = Objects(*(uuid.uuid4(),) * 4, "c", seller).by_name("auth")
    with pytest.raises(AssertionError, match="widget_id"):
        fill_path("/v1/widgets/{widget_id}", op, ids)


def test_an_unknown_required_body_field_fails_the_test() -> None:
    op = {
        "requestBody": {"content": {"application/json": {"schema": {"required": ["colour"]}}}},
        "_spec": {},
    }
    with pytest.raises(AssertionError, match="colour"):
        body_for("/v1/widgets", op, {})
