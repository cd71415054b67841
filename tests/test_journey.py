"""The customer's whole journey, against the stack as `./dev up` runs it: billing, auth,
licensing and the portal as uvicorn processes, on real NATS JetStream, Postgres and Redis,
with auth's mail going over SMTP to the dev mail catcher (a process too, read through its
Mailpit-compatible API). The stack is this test's own: free ports, fresh databases, a fresh
NATS/Redis namespace. Nothing talks to a service except over HTTP, as a browser, the
desktop app (the real licensing client) or Stripe (the test checkout's signed webhooks) do.
Every process exports its traces over OTLP/HTTP, as in compose, to the test's stand-in for
the OpenTelemetry collector, which decodes what it receives.
"""

from __future__ import annotations

import asyncio
import gzip
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.devstack.infra import Infra, Server, free_port, wait_for_port
from tessera.devstack.journey import LINK, SKU, Browser, Inbox
from tessera.devstack.pins import root_pins
from tessera.devstack.stack import (
    DATABASES,
    stack_env,
    start_mailcatcher,
    start_services,
    stop_processes,
    wait_ready,
)
from tessera.licensing_client import LeaseError, LeaseStore, LicensingClient, verify_lease
from tessera.shared.db.pool import with_database
from tessera.shared.settings import InfraSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# Webhooks too: auth consumes its stream (webhooks.endpoint.disabled.v1) and waits for it.
SERVICES = ("billing", "auth", "licensing", "webhooks", "portal-web")
ACCOUNT_CREATED = "billing.account.created.v1 process"


async def test_buy_sign_in_activate_refund_and_dispute(
    stack: Stack, eventually: Any, tmp_path: Path
) -> None:
    email = f"journey-{secrets.token_hex(4)}@example.com"
    fingerprint = f"machine-{secrets.token_hex(8)}"
    async with (
        Browser(stack.url["billing"]) as shop,
        Browser(stack.url["portal-web"]) as portal,
        LicensingClient(
            stack.url["licensing"],
            LeaseStore(tmp_path / "lease.json"),
            roots=await root_pins(stack.url["licensing"]),
        ) as desktop,
    ):
        # 1. Buy on billing's test checkout. Its Pay button sends checkout.session.completed
        #    and charge.succeeded, signed with the webhook secret, to billing's own ingress.
        checkout = await shop.get(f"/buy/{SKU}")
        assert "/test-checkout/cs_test_" in str(checkout.url)
        first_purchase = await shop.submit(checkout, "Pay", email=email)
        assert "Payment received" in first_purchase.text

        # 2. Billing makes the account, auth a user for it, and auth's welcome mail comes
        #    over SMTP.
        welcome = await eventually(lambda: stack.inbox.text(email, "Welcome to"), timeout=30)
        link = LINK.search(welcome)
        assert link, welcome

        # 3. Sign in with the mail's link: its page only shows a button, which POSTs the
        #    token. The session cookie it leaves is exchanged at auth for an access token,
        #    whose account is the one billing made: billing lists the order under it.
        landing = await portal.get(link.group(0))
        signed_in = await portal.submit(landing, "Sign in")
        assert urlsplit(str(signed_in.url)).path == "/licenses"
        session = portal.cookie("tessera_session")
        token = await stack.access_token(session)
        [first_order] = await stack.me(token, "billing", "/v1/me/orders")
        assert (first_order["email"], first_order["status"]) == (email, "paid")

        # 4. Licensing issued the license from billing's event; the customer sees it.
        [first] = await eventually(lambda: stack.licenses(token, first_order["id"]), timeout=30)
        assert (first["status"], first["account_id"]) == ("active", first_order["account_id"])

        # 5. The desktop app activates this machine and validates, with the licensing client.
        await desktop.public_keys()
        activated = await desktop.activate(fingerprint, key=first["key"], machine_name="PC-1")
        assert activated.code == "VALID", activated.body
        validated = await desktop.validate(first["key"], fingerprint)
        assert validated.code == "VALID", validated.body

        # 6. Offline, the cached lease holds on this machine, and on no other.
        lease = desktop.offline(fingerprint)
        assert (lease.license_id, lease.status) == (first["id"], "active")
        with pytest.raises(LeaseError) as elsewhere:
            verify_lease(
                lease.token,
                await desktop.public_keys(),
                fingerprint="other-machine",
                now=time.time(),
            )
        assert elsewhere.value.code == "FINGERPRINT_MISMATCH"

        # 7. A full refund through the test checkout's dev control revokes the license.
        await shop.submit(first_purchase, "Refund in full")
        await eventually(lambda: says(desktop, first["key"], fingerprint, "REVOKED"), timeout=30)

        # 8. A second purchase: a dispute suspends its license, and winning it restores it.
        second_purchase = await shop.submit(await shop.get(f"/buy/{SKU}"), "Pay", email=email)
        token = await stack.access_token(session)
        [second_order] = await eventually(
            lambda: stack.orders(token, but=first_order["id"]), timeout=30
        )
        [second] = await eventually(lambda: stack.licenses(token, second_order["id"]), timeout=30)
        activated = await desktop.activate(fingerprint, key=second["key"], machine_name="PC-1")
        assert activated.code == "VALID", activated.body

        await shop.submit(second_purchase, "Open a dispute")
        await eventually(lambda: says(desktop, second["key"], fingerprint, "SUSPENDED"), timeout=30)
        await shop.submit(second_purchase, "Dispute won")
        await eventually(lambda: says(desktop, second["key"], fingerprint, "VALID"), timeout=30)
        # The refunded license stays revoked whatever happens to the other order.
        assert (await desktop.validate(first["key"], fingerprint)).code == "REVOKED"

    # 9. Every process shipped its spans over OTLP/HTTP, as compose's services do to the
    #    collector: the first purchase is one trace, from billing's webhook across NATS to
    #    auth and licensing.
    purchase = await eventually(lambda: stack.collector.trace_with(ACCOUNT_CREATED), timeout=30)
    assert ("tessera-billing", "POST /webhooks/stripe") in purchase


# ------------------------------------------------------------------------------- helpers


async def says(client: LicensingClient, key: str, fingerprint: str, code: str) -> bool:
    """Whether validate now answers `code` (licensing learns of refunds over NATS)."""
    return (await client.validate(key, fingerprint)).code == code


class Collector:
    """An OpenTelemetry collector's OTLP/HTTP trace receiver: keeps what it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self.spans: list[tuple[str, bytes, str]] = []  # (service.name, trace id, span name)
        self.server = uvicorn.Server(
            uvicorn.Config(
                Starlette(routes=[Route("/v1/traces", self.receive, methods=["POST"])]),
                host="127.0.0.1",
                port=self.port,
                log_config=None,
            )
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        for resource in export.resource_spans:
            service = next(
                a.value.string_value
                for a in resource.resource.attributes
                if a.key == "service.name"
            )
            for scope in resource.scope_spans:
                self.spans.extend((service, span.trace_id, span.name) for span in scope.spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        return Response(answer, media_type="application/x-protobuf")

    async def trace_with(self, suffix: str) -> set[tuple[str, str]]:
        """(service, span name) of the one trace holding a span named `...suffix`, once
        spans from billing, auth and licensing have arrived in it."""
        traces = {t for _, t, name in self.spans if name.endswith(suffix)}
        assert len(traces) <= 1, f"{len(traces)} traces hold a span named ...{suffix}"
        found = {(service, name) for service, t, name in self.spans if t in traces}
        services = {service for service, _ in found}
        return (
            found if {"tessera-billing", "tessera-auth", "tessera-licensing"} <= services else set()
        )


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    receiver = Collector()
    task = asyncio.create_task(receiver.server.serve())
    while not receiver.server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.02)
    yield receiver
    receiver.server.should_exit = True
    await task


@dataclass
class Stack:
    url: dict[str, str]
    inbox: Inbox
    collector: Collector

    async def access_token(self, session_id: str) -> str:
        """What the portal does for each call: exchange its session for an access token."""
        async with httpx.AsyncClient(base_url=self.url["auth"], timeout=10) as auth:
            answer = await auth.post("/v1/sessions/token", json={"session_id": session_id})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    async def me(self, token: str, service: str, path: str) -> Any:
        async with httpx.AsyncClient(base_url=self.url[service], timeout=10) as http:
            answer = await http.get(path, headers={"authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def orders(self, token: str, but: str) -> list[dict[str, Any]]:
        """The customer's orders other than `but` (an order joins the account once billing's
        provisioner has handled it, moments after the payment)."""
        mine = await self.me(token, "billing", "/v1/me/orders")
        return [order for order in mine if order["id"] != but]

    async def licenses(self, token: str, order_id: str) -> list[dict[str, Any]]:
        """The customer's licenses from `order_id` (none until licensing has issued them)."""
        mine = await self.me(token, "licensing", "/v1/me/licenses")
        return [lic for lic in mine if lic["order_id"] == order_id]


@pytest.fixture
async def stack(
    database_factory: Any, infra_settings: InfraSettings, collector: Collector, tmp_path: Path
) -> AsyncIterator[Stack]:
    """This test's own stack: `./dev up`'s processes on free ports, fresh databases and
    namespace, exporting traces to `collector`. Each process's log is printed at the end
    (pytest shows it on failure)."""
    ports = {name: free_port() for name in SERVICES}
    smtp_port, mail_port = free_port(), free_port()
    databases = {name: await database_factory(name) for name in DATABASES}
    infra = Infra(
        nats=Server("nats", str(infra_settings.nats_url), embedded=False),
        postgres=Server("postgres", with_database(databases["billing"], "postgres"), False),
        redis=Server("redis", str(infra_settings.redis_url), embedded=False),
    )
    env = stack_env(
        infra,
        0,
        tmp_path,
        ports=ports,
        database_urls=databases,
        namespace=infra_settings.namespace,
        smtp_port=smtp_port,
    )
    env["TESSERA_OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.endpoint
    env["OTEL_BSP_SCHEDULE_DELAY"] = "200"  # export within moments, not every 5 s
    logs = tmp_path / "logs"
    mail = start_mailcatcher(0, logs, smtp_port=smtp_port, http_port=mail_port)
    assert mail is not None, "a free port already had a mail server on it"
    processes = [mail, *start_services(env, 0, logs, ports=ports, only=SERVICES)]
    try:
        await asyncio.to_thread(wait_for_port, "127.0.0.1", mail_port, "mail catcher")
        status = await asyncio.to_thread(wait_ready, 0, 150, ports=ports, only=SERVICES)
        assert all(s == "ready" for s in status.values()), status
        url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        yield Stack(url, Inbox(f"http://127.0.0.1:{mail_port}"), collector)
    finally:
        await asyncio.to_thread(stop_processes, processes)
        for log in sorted(logs.glob("*.log")):
            print(f"----- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
