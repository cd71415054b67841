"""Each service's OpenAPI document, made to tell the truth about the wire.

FastAPI's generator knows the routes and their models; it does not know the kernel. This
module rewrites what it produces so that a client generated from it works:

- every error is RFC 9457 problem details (`application/problem+json`, the `Problem`
  schema), including 422, which FastAPI would describe as its `HTTPValidationError`;
- a route that reads an access token (its dependencies reach `current_principal`) carries
  the `bearer` security scheme and documents the 401 it answers without one; a route that
  takes a seller's API key (`SellerDep`, `SecretSellerDep`) carries the `apiKey` scheme,
  its 401 and 503 (keys still loading), and on a secret-key route the 403 a publishable key
  gets;
- an admin route documents the 404 a non-admin gets (admin routes do not confirm they exist);
- a redirect documents its `location` and no body, a `*.csv` route its `text/csv`.

Serving: `/openapi.json` (and the `/docs` UI) exist only when `TESSERA_OPENAPI` allows it
(on by default in dev and test, off in production), and what they serve is the *public*
document: no admin route, whoever asks. The full document, admin routes included, is
`app.openapi()`; it is committed under `docs/openapi/` (`./dev openapi` writes it).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import RouteContext, iter_route_contexts
from pydantic import BaseModel, Field
from starlette.routing import BaseRoute

from tessera.shared.api_keys.dependencies import current_secret_seller, current_seller
from tessera.shared.http.problems import PROBLEM_MEDIA_TYPE, TYPE_PREFIX, Problem
from tessera.shared.tokens import current_principal

BEARER = "bearer"
API_KEY = "apiKey"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": (
        "RFC 9457 problem details. `type` is a stable URN (`"
        + TYPE_PREFIX
        + "<slug>`) to branch on; `title` is its human label; `detail` explains this "
        "occurrence. A 422 adds `errors`, one entry per invalid field (the input is never "
        "echoed). Some problems add their own members (e.g. `retry_after`)."
    ),
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "examples": [TYPE_PREFIX + "validation-failed"]},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "request_id": {
            "type": "string",
            "description": "The request's id, also in the `x-request-id` header and the logs.",
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}

DOCS_CSP = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src https://cdn.jsdelivr.net 'unsafe-inline'; img-src https: data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)

BEARER_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": (
        "An access token from auth (`POST /v1/sessions/token` or the device flow), "
        "5 minutes long, verified against auth's `/.well-known/jwks.json`."
    ),
}


API_KEY_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "API key",
    "description": (
        "A seller's API key as `Authorization: Bearer <key>`: `sk_live_…` or `sk_test_…` "
        "(secret: servers only) or `pk_live_…` or `pk_test_…` (publishable: browsers and "
        "apps). Test keys see only test-mode data."
    ),
}


def problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}}


def is_admin_path(path: str) -> bool:
    """Admin routes live under an `admin` path segment (`/v1/admin/…`, `/admin/…`)."""
    return "admin" in path.strip("/").split("/")


def _reaches(dependant: Dependant, target: object) -> bool:
    return any(dep.call is target or _reaches(dep, target) for dep in dependant.dependencies)


def takes_bearer_token(route: BaseRoute | RouteContext) -> bool:
    """Whether the route's dependencies read the caller's access token."""
    dependant = getattr(route, "dependant", None)
    return isinstance(dependant, Dependant) and _reaches(dependant, current_principal)


def takes_api_key(route: BaseRoute | RouteContext, *, secret_only: bool = False) -> bool:
    """Whether the route's dependencies read a seller's API key (a secret one only, with
    `secret_only`)."""
    dependant = getattr(route, "dependant", None)
    if not isinstance(dependant, Dependant):
        return False
    targets = (current_secret_seller,) if secret_only else (current_seller, current_secret_seller)
    return any(_reaches(dependant, target) for target in targets)


def _operations(document: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, method, operation


def _bodies(path: str, operation: dict[str, Any]) -> None:
    """What FastAPI cannot see behind a route that returns a `Response` itself: a redirect has
    no body but a `location`; a `*.csv` route answers CSV."""
    for status, response in operation["responses"].items():
        if status.startswith("3"):
            response.pop("content", None)
            response.setdefault("headers", {}).setdefault(
                "location", {"schema": {"type": "string"}, "description": "Where to go next."}
            )
        elif status.startswith("2") and path.endswith(".csv"):
            response["content"] = {"text/csv": {"schema": {"type": "string"}}}


def _as_problems(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    for status, response in list(responses.items()):
        if status == "default" or int(status[0]) < 4:
            continue
        content = response.get("content")
        generic = not content or (
            set(content) == {"application/json"}
            and content["application/json"].get("schema", {}) in ({}, {"$ref": _HTTP_422})
        )
        if generic:
            responses[status] = problem(response.get("description") or "Error")
    if "422" in responses:
        responses["422"] = problem("The request failed validation (`errors` says where).")
    responses.setdefault(
        "default", problem("Any other error (429 rate limited, 503 dependency down, …).")
    )


_HTTP_422 = "#/components/schemas/HTTPValidationError"


def _drop_unreferenced(document: dict[str, Any], names: Iterable[str]) -> None:
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    for name in names:
        if name in schemas:
            rest = {k: v for k, v in schemas.items() if k != name}
            text = json.dumps({**document, "components": {"schemas": rest}})
            if f'"#/components/schemas/{name}"' not in text:
                del schemas[name]


def _api_key_responses(responses: dict[str, Any], *, secret_only: bool) -> None:
    responses.setdefault(
        "401", problem("No valid API key (missing, malformed, unknown, revoked or expired).")
    )
    if secret_only:
        responses.setdefault("403", problem("A publishable key; this route needs a secret key."))
    responses.setdefault(
        "503", problem("The service is still loading API keys; retry after `Retry-After`.")
    )


def build_document(app: FastAPI, *, include_admin: bool) -> dict[str, Any]:
    """The app's OpenAPI document, rewritten as the module docstring says."""
    # Included routers are expanded into one context per route (FastAPI ≥ 0.128 keeps them
    # nested in app.routes).
    routes: list[RouteContext] = [
        route
        for route in iter_route_contexts(app.routes)
        if include_admin or not is_admin_path(route.path or "")
    ]
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=list[BaseRoute | RouteContext](routes),
    )
    bearer = {
        (route.path_format, method.lower())
        for route in routes
        if takes_bearer_token(route)
        for method in route.methods or ()
    }
    keyed = {
        (route.path_format, method.lower(), takes_api_key(route, secret_only=True))
        for route in routes
        if takes_api_key(route)
        for method in route.methods or ()
    }
    for path, method, operation in _operations(document):
        if (path, method) in bearer and "security" not in operation:
            operation["security"] = [{BEARER: []}]
        for secret_only in (True, False):
            if (path, method, secret_only) in keyed and "security" not in operation:
                operation["security"] = [{API_KEY: []}]
                _api_key_responses(operation["responses"], secret_only=secret_only)
        if operation.get("security"):
            optional = {} in operation["security"]
            operation["responses"].setdefault(
                "401",
                problem(
                    "A token was sent and is not valid."
                    if optional
                    else "No valid access token (`Authorization: Bearer <token>`)."
                ),
            )
        if is_admin_path(path):
            operation["responses"].setdefault(
                "404", problem("Not found; also what anyone but an admin gets.")
            )
        _bodies(path, operation)
        _as_problems(operation)
    components = document.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    if bearer or any(
        op.get("security") and op["security"] != [{API_KEY: []}]
        for _, _, op in _operations(document)
    ):
        components.setdefault("securitySchemes", {})[BEARER] = BEARER_SCHEME
    if keyed:
        components.setdefault("securitySchemes", {})[API_KEY] = API_KEY_SCHEME
    _drop_unreferenced(document, ("HTTPValidationError", "ValidationError"))
    return document


def install_openapi(app: FastAPI, *, serve: bool) -> None:
    """`app.openapi()` gives the full document; `/openapi.json` and `/docs` serve the public
    one, and only when `serve`."""
    full: dict[str, Any] = {}
    public: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not full:
            full.update(build_document(app, include_admin=True))
        return copy.deepcopy(full)

    app.openapi = openapi  # type: ignore[method-assign]
    if not serve:
        return

    async def openapi_json() -> JSONResponse:
        if not public:
            public.update(build_document(app, include_admin=False))
        return JSONResponse(public)

    async def docs() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API")
        # The API's `default-src 'none'` would blank the UI: allow exactly what it loads.
        page.headers["content-security-policy"] = DOCS_CSP
        return page

    app.add_api_route("/openapi.json", openapi_json, include_in_schema=False)
    app.add_api_route("/docs", docs, include_in_schema=False)


class Jwk(BaseModel):
    """An Ed25519 public key as a JSON Web Key (RFC 8037)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str = Field(description="The public key, base64url without padding.")
    kid: str = Field(description="The key id a token's or lease's header names.")
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class JwkSet(BaseModel):
    """A JWK Set (RFC 7517 §5): the keys that verify signatures, current and retiring."""

    keys: list[Jwk]


JWKS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"model": JwkSet, "description": "The JWK Set."}
}


def problems(*kinds: type[Problem]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own problems: each status with the problem types it can
    carry (as examples of the `Problem` schema)."""
    by_status: dict[int, list[type[Problem]]] = {}
    for kind in kinds:
        by_status.setdefault(kind.status, []).append(kind)
    return {
        status: {
            "description": "; ".join(f"`{TYPE_PREFIX}{k.slug}`: {k.title}" for k in group),
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": PROBLEM_REF,
                    "examples": {
                        k.slug: {
                            "value": {
                                "type": TYPE_PREFIX + k.slug,
                                "title": k.title,
                                "status": status,
                            }
                        }
                        for k in group
                    },
                }
            },
        }
        for status, group in by_status.items()
    }
