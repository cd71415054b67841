"""Device-flow errors.

The token endpoint answers as RFC 6749 §5.2 says (`{"error": ...}`, 400), because OAuth
client libraries parse exactly that; the approval routes use problem+json like every other
route."""

from __future__ import annotations

from tessera.shared.http.problems import Problem


class OAuthError(Exception):
    def __init__(self, error: str, description: str | None = None, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status


class UnknownUserCode(Problem):
    status = 404
    slug = "unknown-user-code"
    title = "Unknown code"

    def __init__(self) -> None:
        super().__init__("No pending sign-in has this code. Check it on the app's screen.")
