"""Proof of tenant isolation, generated from the committed OpenAPI documents.

Every operation in `docs/openapi/*.json` whose security names the `apiKey` scheme (the
kernel marks every route that takes a seller's key) or the `bearer` scheme (a route that
reads an access token) is called, for real, against billing and licensing running on their
own databases, this test's NATS and Redis:

- with seller A's credentials (its secret key, its publishable key, a token of one of its
  customers) against seller B's ids, and
- with A's test-mode credentials against A's live ids.

Path parameters and body fields that name an object are filled from `IDS` by name: a
parameter or a required body field this test does not know FAILS it, telling the author to
add it, so a new route cannot escape. A call that names an object must be refused (4xx, a
problem); one that names none (`/v1/me/orders`) may answer, but none of the other tenant's
ids may appear in it. Before and after all the calls, every row of every table with a
`seller_id` column, in each service's database, is hashed: nothing may change.

Auth's document is not covered yet (`NOT_YET`): its routes take the seller from a home
user's membership and need auth's own signed tokens; starting auth here is the next step.
Any other document with such an operation, of a service this test does not run, fails it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import jwt
import nats
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.settings import LicensingSettings
from tessera.shared.api_keys import generate
from tessera.shared.events.auth import ApiKeyChanged, SellerChanged
from tessera.shared.events.billing import AccountCreated
from tessera.shared.events.topology import APIKEYS, BILLING, SELLERS, Namespace
from tessera.shared.messaging import ensure_stream, stream_config
from tessera.shared.sellers import Tenant
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
OPENAPI = REPO / "docs" / "openapi"
CATALOG = REPO / "deploy" / "catalog.json"
SERVICES = ("billing", "licensing")
SECURED = {"apiKey", "bearer"}
# Documents with secured operations this test does not run yet (see the docstring).
NOT_YET = {"auth"}

SELLER_A = UUID("00000000-0000-4000-8000-00000000a001")
SELLER_B = UUID("00000000-0000-4000-8000-00000000b002")
A_LIVE, A_TEST, B_LIVE = (
    Tenant(SELLER_A, "live"),
    Tenant(SELLER_A, "test"),
    Tenant(SELLER_B, "live"),
)
SLUGS = {SELLER_A: "seller-a", SELLER_B: "seller-b"}


def secured_operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(service, method, path, operation) for every operation taking a seller credential
    or an access token, in every committed document."""
    found = []
    for document in sorted(OPENAPI.glob("*.json")):
        spec = json.loads(document.read_text())
        for path, item in spec["paths"].items():
            for method, op in item.items():
                schemes = {name for requirement in op.get("security") or [] for name in requirement}
                if schemes & SECURED:
                    found.append((document.stem, method, path, op | {"_spec": spec}))
    return found


OPERATIONS = secured_operations()


@dataclass
class Objects:
    """One tenant's ids, by the parameter or field name a route uses for them."""

    customer: UUID
    license: UUID
    activation: UUID
    order: UUID

    def by_name(self) -> dict[str, str]:
        return {
            "customer_id": str(self.customer),
            "account_id": str(self.customer),
            "license_id": str(self.license),
            "activation_id": str(self.activation),
            "order_id": str(self.order),
            # A Stripe event's id names no seller object of these (only the operator's
            # admin routes take one); the order's, made into an event id, stands for it.
            "event_id": f"evt_{self.order.hex}",
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
    for field in schema.get("required", []):
        if field in ids:
            body[field] = ids[field]
        else:
            assert field in PLAIN_FIELDS, (
                f"{path}: required body field {field!r} is unknown to tests/test_isolation.py;"
                " add it to Objects.by_name (an id) or PLAIN_FIELDS"
            )
            body[field] = PLAIN_FIELDS[field]
    return body


def names_an_object(path: str, body: dict[str, Any] | None, ids: dict[str, str]) -> bool:
    return "{" in path or any(k in ids for k in body or {})


class Mint:
    """Stands in for auth's token signing: both services trust its JWKS."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()

    @property
    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.private.public_key()))
        return {"keys": [{**public, "kid": "iso", "use": "sig", "alg": "EdDSA"}]}

    def token(self, tenant: Tenant, account_id: UUID) -> str:
        now = int(time.time())
        claims = {
            "iss": "tessera-auth", "aud": "tessera", "sub": str(uuid.uuid4()),
            "acc": str(account_id), "role": "customer", "sid": "s", "jti": uuid.uuid4().hex,
            "iat": now, "exp": now + 300, "sel": SLUGS[tenant.seller_id], "mod": tenant.mode,
        }  # fmt: skip
        return jwt.encode(claims, self.private, algorithm="EdDSA", headers={"kid": "iso"})


@dataclass
class Stack:
    http: dict[str, httpx.AsyncClient]
    databases: dict[str, str]
    keys: dict[tuple[Tenant, str], str]
    mint: Mint


async def publish(js: Any, ns: Namespace, record: Any, stream: Any) -> None:
    await js.publish(
        ns.subject(record.publish_subject()), record.to_json(), stream=ns.stream(stream)
    )


async def fingerprint(database: str, tenant: Tenant) -> dict[str, str]:
    """Every table with a `seller_id` column: a hash of all the tenant's rows."""
    conn = await asyncpg.connect(database)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.columns"
            " WHERE column_name = 'seller_id' AND table_schema = 'public'"
            " AND table_name IN (SELECT table_name FROM information_schema.tables"
            "                     WHERE table_type = 'BASE TABLE') ORDER BY 1"
        )
        out = {}
        for (table,) in tables:
            rows = await conn.fetch(
                f'SELECT t::text FROM "{table}" t WHERE seller_id = $1 AND mode = $2 ORDER BY 1',  # noqa: S608
                tenant.seller_id,
                tenant.mode,
            )
            out[table] = hashlib.sha256("\n".join(r[0] for r in rows).encode()).hexdigest()
        assert "licenses" in out or "orders" in out
        return out
    finally:
        await conn.close()


@pytest.fixture
async def stack(
    database_factory: Any, infra_settings: InfraSettings, running: Any
) -> AsyncIterator[Stack]:
    ns = Namespace(infra_settings.namespace)
    nc = await nats.connect(str(infra_settings.nats_url))
    js = nc.jetstream()
    for stream in (APIKEYS, SELLERS, BILLING):
        await ensure_stream(js, stream_config(stream, ns))
    for seller_id, slug in SLUGS.items():
        record = SellerChanged(
            seller_id=seller_id, mode="live", slug=slug, name=slug,
            signup_policy="closed", status="active", version=1,
        )  # fmt: skip
        await publish(js, ns, record, SELLERS)
    keys: dict[tuple[Tenant, str], str] = {}
    for tenant in (A_LIVE, A_TEST, B_LIVE):
        for kind in ("secret", "publishable"):
            issued = generate(kind, tenant.mode)
            key_record = ApiKeyChanged(
                seller_id=tenant.seller_id, mode=tenant.mode, key_id=uuid.uuid4(),
                key_hash=issued.hash_hex, kind=kind, status="active", version=1,
            )  # fmt: skip
            await publish(js, ns, key_record, APIKEYS)
            keys[(tenant, kind)] = issued.plaintext
    mint = Mint()
    databases = {name: await database_factory(name) for name in SERVICES}
    apps: dict[str, FastAPI] = {
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
    }
    async with AsyncExitStack() as exits:
        http = {}
        for name, app in apps.items():
            await exits.enter_async_context(running(app))
            context = app.state.context
            await asyncio.wait_for(context.messaging_ready.wait(), 30)
            context.token_verifier.jwks.load(mint.jwks)
            context.token_verifier.jwks.max_age = 3600
            await asyncio.wait_for(context.key_book.wait_ready(), 10)
            transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
            http[name] = await exits.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=f"http://{name}")
            )
        deadline = time.monotonic() + 15
        for app in apps.values():
            context = app.state.context
            while not (
                all(context.sellers.by_id(s) for s in SLUGS)
                and all(_holds(context.key_book, k) for k in keys.values())
            ):
                assert time.monotonic() < deadline, "the books never held the sellers and keys"
                await asyncio.sleep(0.02)
        try:
            yield Stack(http, databases, keys, mint)
        finally:
            await nc.close()


def _holds(book: Any, text: str) -> bool:
    try:
        book.check(text)
    except Exception:
        return False
    return True


async def seed(stack: Stack, tenant: Tenant, js: Any, ns: Namespace) -> Objects:
    """A customer with an order in billing and a license on a machine in licensing, made the
    way they are made in production (events, the seller API, the desktop API)."""
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
    lic = stack.http["licensing"]
    sk = {"authorization": f"Bearer {stack.keys[(tenant, 'secret')]}"}
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
    return Objects(customer, UUID(license["id"]), UUID(activation), order)


def credentials(stack: Stack, tenant: Tenant, customer: UUID) -> dict[str, dict[str, str]]:
    return {
        "secret key": {"authorization": f"Bearer {stack.keys[(tenant, 'secret')]}"},
        "publishable key": {"authorization": f"Bearer {stack.keys[(tenant, 'publishable')]}"},
        "customer token": {"authorization": f"Bearer {stack.mint.token(tenant, customer)}"},
    }


def test_every_secured_operation_of_a_service_this_test_runs() -> None:
    """The list is not empty, and a service with secured routes is one this test starts."""
    services = {service for service, *_ in OPERATIONS}
    assert {"billing", "licensing"} <= services
    assert any("apiKey" in str(op.get("security")) for *_, op in OPERATIONS)
    missing = sorted(services - set(SERVICES) - NOT_YET)
    assert not missing, f"start {missing} in tests/test_isolation.py"


async def test_another_tenants_credentials_are_refused_everywhere(
    stack: Stack, infra_settings: InfraSettings
) -> None:
    ns = Namespace(infra_settings.namespace)
    nc = await nats.connect(str(infra_settings.nats_url))
    try:
        js = nc.jetstream()
        mine, mine_test = await seed(stack, A_LIVE, js, ns), await seed(stack, A_TEST, js, ns)
        theirs = await seed(stack, B_LIVE, js, ns)
    finally:
        await nc.close()

    called = 0
    for intruder, own, victim, target in (
        (A_LIVE, mine, B_LIVE, theirs),
        (A_TEST, mine_test, A_LIVE, mine),
    ):
        before = {n: await fingerprint(url, victim) for n, url in stack.databases.items()}
        ids = target.by_name()
        foreign = set(ids.values())
        for service, method, path, op in OPERATIONS:
            if service not in SERVICES:
                continue
            url = fill_path(path, op, ids)
            body = body_for(path, op, ids)
            for label, headers in credentials(stack, intruder, own.customer).items():
                answer = await stack.http[service].request(
                    method.upper(), url, json=body, headers=headers
                )
                called += 1
                where = f"{intruder} {label}: {method.upper()} {url}"
                assert answer.status_code < 500, f"{where}: {answer.status_code} {answer.text}"
                if names_an_object(path, body, ids) or answer.status_code >= 400:
                    assert 400 <= answer.status_code < 500, f"{where}: {answer.status_code}"
                    assert answer.headers["content-type"].startswith("application/problem+json"), (
                        where
                    )
                else:
                    leaked = [i for i in foreign if i in answer.text]
                    assert not leaked, f"{where} answered the other tenant's {leaked}"
        after = {n: await fingerprint(url, victim) for n, url in stack.databases.items()}
        assert after == before, f"{intruder}'s calls changed {victim}'s rows"
    assert called >= 3 * 2 * 8


def test_an_unknown_path_parameter_fails_the_test() -> None:
    op = {"parameters": [{"in": "path", "name": "widget_id"}]}
    with pytest.raises(AssertionError, match="widget_id"):
        fill_path("/v1/widgets/{widget_id}", op, Objects(*(uuid.uuid4(),) * 4).by_name())


def test_an_unknown_required_body_field_fails_the_test() -> None:
    op = {
        "requestBody": {"content": {"application/json": {"schema": {"required": ["colour"]}}}},
        "_spec": {},
    }
    with pytest.raises(AssertionError, match="colour"):
        body_for("/v1/widgets", op, {})
