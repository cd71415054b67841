"""The OpenAPI documents: committed under docs/openapi/, true to the wire, and served only
when allowed and never with admin routes (issue 14, items 6 and 13)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import APIRouter, FastAPI

from tessera.auth.app import create_app as create_auth
from tessera.auth.settings import AuthSettings
from tessera.devstack.openapi import APPS, COMMAND, document, render
from tessera.portal.app import create_app as create_portal
from tessera.shared.http.problems import PROBLEM_MEDIA_TYPE
from tessera.shared.service import ServiceContext, ServiceSpec, create_service_app
from tessera.shared.settings import Environment, InfraSettings, ServiceSettings
from tessera.shared.tokens import AdminDep, PrincipalDep

DOCS = Path(__file__).resolve().parents[1] / "docs" / "openapi"
FORM = "application/x-www-form-urlencoded"


# --- committed documents ------------------------------------------------------------------


@pytest.mark.parametrize("service", APPS)
def test_the_committed_document_matches_the_code(service: str) -> None:
    path = DOCS / f"{service}.json"
    committed = path.read_text(encoding="utf-8") if path.exists() else ""
    assert committed == render(service), (
        f"docs/openapi/{service}.json is not what the code generates: run `{COMMAND}` "
        "and commit docs/openapi/ (and docs/asyncapi/)"
    )


# --- what the documents say ----------------------------------------------------------------


# OAuth's own errors (RFC 6749 §5.2), and the readiness report.
NOT_PROBLEMS = {
    ("/v1/device/authorize", "400"),
    ("/v1/device/authorize", "401"),
    ("/v1/device/token", "400"),
    ("/v1/device/token", "401"),
    ("/readyz", "503"),
}


@pytest.mark.parametrize("service", APPS)
def test_every_error_is_problem_json_and_422_is_no_longer_fastapis(service: str) -> None:
    doc = document(service)
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert "Problem" in schemas
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "default" in responses, f"{method} {path}"
            for status, response in responses.items():
                if status != "default" and int(status) < 400:
                    continue
                content = response.get("content", {})
                if (path, status) in NOT_PROBLEMS:
                    assert set(content) == {"application/json"}, f"{method} {path} {status}"
                    continue
                assert set(content) == {PROBLEM_MEDIA_TYPE}, f"{method} {path} {status}"
                schema = content[PROBLEM_MEDIA_TYPE]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, f"{method} {path}"


# Services with no route that reads an access token (webhooks: seller keys only), and so
# no `bearer` scheme, and no admin routes to keep out of the served document.
KEYS_ONLY = {"webhooks"}


def test_routes_that_take_tokens_carry_the_bearer_scheme() -> None:
    for service in APPS:
        doc = document(service)
        if service in KEYS_ONLY:
            assert "bearer" not in doc["components"]["securitySchemes"]
            assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
            continue
        assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    auth, billing, licensing = (document(s)["paths"] for s in ("auth", "billing", "licensing"))
    token: list[dict[str, list[str]]] = [{"bearer": []}]
    assert auth["/v1/sessions"]["get"]["security"] == token
    assert auth["/v1/device/approve"]["post"]["security"] == token
    assert auth["/v1/admin/users"]["get"]["security"] == token
    assert billing["/v1/me/orders"]["get"]["security"] == token
    assert licensing["/v1/me/licenses"]["get"]["security"] == token
    # a key in the body, or else the owner's token
    assert licensing["/v1/licenses/activate"]["post"]["security"] == [{"bearer": []}, {}]
    # and none where no token is read
    # Anonymous (the home seller) or with a seller's publishable key.
    assert auth["/v1/magic-links"]["post"]["security"] == [{}, {"apiKey": []}]
    assert "apiKey" in document("auth")["components"]["securitySchemes"]
    assert "security" not in licensing["/v1/licenses/validate"]["post"]
    assert "security" not in billing["/webhooks/stripe"]["post"]


def test_device_endpoints_document_their_form_bodies() -> None:
    paths = document("auth")["paths"]
    authorize = paths["/v1/device/authorize"]["post"]["requestBody"]["content"][FORM]["schema"]
    assert authorize["required"] == ["client_id"]
    token = paths["/v1/device/token"]["post"]["requestBody"]["content"][FORM]["schema"]
    assert set(token["required"]) == {"grant_type", "client_id"}
    grants = token["properties"]["grant_type"]["enum"]
    assert "urn:ietf:params:oauth:grant-type:device_code" in grants


def test_the_test_checkouts_pay_and_refund_forms_are_documented() -> None:
    paths = document("billing")["paths"]
    pay = paths["/test-checkout/{session_id}/pay"]["post"]
    refund = paths["/test-checkout/{session_id}/refund"]["post"]
    assert "303" in pay["responses"] and "303" in refund["responses"]
    for operation, field in ((pay, "email"), (refund, "amount")):
        ref = operation["requestBody"]["content"][FORM]["schema"]["$ref"]
        schema = document("billing")["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert field in schema["properties"]


# --- the documents against the wire ----------------------------------------------------------


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A validator for `schema`, its `#/components/...` references resolved in `doc`."""
    return jsonschema_rs.validator_for({**schema, "components": doc["components"]})


def response_schema(doc: dict[str, Any], path: str, method: str, status: str) -> Any:
    content = doc["paths"][path][method]["responses"][status]["content"]
    [schema] = [c["schema"] for c in content.values()]
    return validator(doc, schema)


@pytest.fixture
async def auth(database_factory: Any, infra_settings: InfraSettings, running: Any) -> Any:
    app = create_auth(AuthSettings(database_url=await database_factory("auth")), infra_settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
            yield client


@pytest.mark.integration
async def test_auths_answers_are_what_its_document_says(auth: httpx.AsyncClient) -> None:
    doc = document("auth")

    invalid = await auth.post("/v1/magic-links", json={})
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == PROBLEM_MEDIA_TYPE
    response_schema(doc, "/v1/magic-links", "post", "422").validate(invalid.json())

    failed = await auth.post(
        "/v1/magic-links/verify",
        json={"email": "nobody@example.com", "code": "000000", "browser": "b" * 32},
    )
    assert failed.status_code == 401
    response_schema(doc, "/v1/magic-links/verify", "post", "401").validate(failed.json())
    documented = doc["paths"]["/v1/magic-links/verify"]["post"]["responses"]["401"]
    examples = documented["content"][PROBLEM_MEDIA_TYPE]["examples"]
    assert failed.json()["type"] in {e["value"]["type"] for e in examples.values()}

    anonymous = await auth.get("/v1/sessions")
    assert anonymous.status_code == 401
    response_schema(doc, "/v1/sessions", "get", "401").validate(anonymous.json())

    ready = await auth.get("/readyz")  # 503 while NATS is still being joined: documented too
    assert ready.status_code in (200, 503)
    response_schema(doc, "/readyz", "get", str(ready.status_code)).validate(ready.json())

    jwks = await auth.get("/.well-known/jwks.json")
    assert jwks.status_code == 200 and jwks.json()["keys"]
    response_schema(doc, "/.well-known/jwks.json", "get", "200").validate(jwks.json())

    granted = await auth.post("/v1/device/authorize", data={"client_id": "chartgpt-desktop"})
    assert granted.status_code == 200
    response_schema(doc, "/v1/device/authorize", "post", "200").validate(granted.json())
    polled = await auth.post(
        "/v1/device/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": "chartgpt-desktop",
            "device_code": granted.json()["device_code"],
        },
    )
    assert polled.status_code == 400
    response_schema(doc, "/v1/device/token", "post", "400").validate(polled.json())


# --- serving (item 6) ---------------------------------------------------------------------

admin_router = APIRouter()


@admin_router.get("/v1/admin/things")
async def admin_things(admin: AdminDep) -> dict[str, str]:
    return {"admin": str(admin.user_id)}


@admin_router.get("/v1/me/things")
async def my_things(principal: PrincipalDep) -> dict[str, str]:
    return {"me": str(principal.user_id)}


def kernel_app(env: Environment, openapi: bool | None = None) -> FastAPI:
    infra = InfraSettings(env=env, openapi=openapi, log_json=False)
    spec = ServiceSpec(
        context=ServiceContext(name="kernel", settings=ServiceSettings(), infra=infra),
        title="Kernel",
        version="1",
        uses_redis=False,
        uses_nats=False,
        routers=(admin_router,),
    )
    return create_service_app(spec)


async def get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        return await client.get(path)


async def test_production_serves_no_openapi_and_no_docs_unless_turned_on() -> None:
    app = kernel_app(Environment.PRODUCTION)
    assert (await get(app, "/openapi.json")).status_code == 404
    assert (await get(app, "/docs")).status_code == 404
    assert "/v1/admin/things" in app.openapi()["paths"]  # still built, for ./dev openapi

    on = kernel_app(Environment.PRODUCTION, openapi=True)
    served = await get(on, "/openapi.json")
    assert served.status_code == 200
    assert "/v1/me/things" in served.json()["paths"]
    docs = await get(on, "/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    assert "script-src https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("env", "openapi"), [(Environment.DEV, None), (Environment.PRODUCTION, True)]
)
async def test_the_served_document_never_lists_admin_routes(
    env: Environment, openapi: bool | None
) -> None:
    served = (await get(kernel_app(env, openapi), "/openapi.json")).json()
    assert served["paths"], "nothing served"
    assert not [p for p in served["paths"] if "admin" in p], served["paths"]
    assert "bearer" in served["components"]["securitySchemes"]


async def test_dev_can_turn_it_off_and_the_portal_serves_none() -> None:
    assert (
        await get(kernel_app(Environment.DEV, openapi=False), "/openapi.json")
    ).status_code == 404
    portal = create_portal(infra=InfraSettings(env=Environment.DEV, log_json=False))
    assert (await get(portal, "/openapi.json")).status_code == 404
    assert (await get(portal, "/docs")).status_code == 404


@pytest.mark.parametrize("service", APPS)
async def test_a_real_service_serves_its_public_document_in_dev(service: str) -> None:
    app = APPS[service](InfraSettings(env=Environment.DEV, log_json=False))
    served = await get(app, "/openapi.json")
    assert served.status_code == 200
    paths = served.json()["paths"]
    assert paths and not [p for p in paths if "admin" in p]
    full = json.loads(render(service))
    if service in KEYS_ONLY:
        assert set(paths) == set(full["paths"])
    else:
        assert set(paths) < set(full["paths"])
    # and no schema only the admin routes use
    served_schemas = set(served.json()["components"]["schemas"])
    public_text = json.dumps(served.json()["paths"])
    for name in set(full["components"]["schemas"]) - served_schemas:
        assert f"#/components/schemas/{name}" not in public_text
    if service == "billing":
        assert "SeedAccount" in full["components"]["schemas"]
        assert "SeedAccount" not in served_schemas


def test_redirects_and_csv_exports_document_what_they_send() -> None:
    billing, licensing = document("billing")["paths"], document("licensing")["paths"]
    buy = billing["/buy/{sku}"]["get"]["responses"]["303"]
    assert "content" not in buy and "location" in buy["headers"]
    for csv in (
        billing["/v1/admin/exports/orders.csv"]["get"],
        licensing["/v1/admin/licenses.csv"]["get"],
    ):
        assert set(csv["responses"]["200"]["content"]) == {"text/csv"}


@pytest.mark.parametrize(
    ("value", "env", "serves"),
    [
        ("", Environment.PRODUCTION, False),
        ("", Environment.DEV, True),
        ("true", Environment.PRODUCTION, True),
        ("false", Environment.DEV, False),
    ],
)
def test_tessera_openapi_reads_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, env: Environment, serves: bool
) -> None:
    monkeypatch.setenv("TESSERA_OPENAPI", value)  # empty, as .env.example has it: unset
    monkeypatch.setenv("TESSERA_ENV", env.value)
    assert InfraSettings().serves_openapi() is serves
