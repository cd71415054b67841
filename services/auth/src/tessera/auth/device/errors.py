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


class BrowserSessionRequired(Problem):
    """The token does not come from a browser sign-in (a desktop's device grant, say)."""

    status = 403
    slug = "browser-session-required"
    title = "A browser sign-in is required"

    def __init__(self) -> None:
        super().__init__("Approve a desktop sign-in from the portal, signed in in a browser.")


class ReauthenticationRequired(Problem):
    """A browser session, but signed in too long ago to approve a device."""

    status = 403
    slug = "reauthentication-required"
    title = "Sign in again"

    def __init__(self, max_age: int) -> None:
        super().__init__(
            "Approving a desktop sign-in needs a browser sign-in from the last "
            f"{max_age // 60} minutes; sign in again.",
            max_age=max_age,
        )
