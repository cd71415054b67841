"""User errors."""

from tessera.shared.http.problems import NotFound


class UserNotFound(NotFound):
    slug = "user-not-found"
    title = "User not found"
