"""Session errors."""

from tessera.shared.http.problems import Problem


class SessionInvalid(Problem):
    """One answer for a session that never existed, expired, was revoked, or whose user
    was disabled."""

    status = 401
    slug = "session-invalid"
    title = "Session invalid"

    def __init__(self) -> None:
        super().__init__("The session is invalid or has ended; sign in again.")
