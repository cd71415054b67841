"""The admin role, checked before anything reads the request's body.

FastAPI parses a body before it runs a route's dependencies, so with the role check only in
`AdminDep` an anonymous POST of malformed JSON to `/v1/admin/...` got the 400/422 of the
parser: an answer no unknown path gives, telling that the route exists. This gate answers
every request under `/v1/admin` first: 401 without a valid access token, 404 for a valid
token without the admin role (as for a path that does not exist), whatever the method, the
path (existing or not) or the body. Only an admin's request goes on to the route, where
`AdminDep` checks again (and auth checks that the session is still live).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from tessera.shared.http.problems import NotFound, Problem, problem_response
from tessera.shared.tokens import AccessTokenVerifier, Unauthorized

ADMIN_PREFIX = "/v1/admin"


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def bearer_of(scope: Scope) -> str:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip() and len(token) <= 4096:
                return token.strip()
            break
    raise Unauthorized()


class AdminGateMiddleware:
    def __init__(self, app: ASGIApp, verifier: AccessTokenVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_admin_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            await self.check(scope)
        except Problem as refused:
            response = problem_response(
                refused.status, refused.slug, refused.title, refused.detail, headers=refused.headers
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def check(self, scope: Scope) -> None:
        principal = await self.verifier.verify(bearer_of(scope))
        if not principal.is_admin:
            raise NotFound()
