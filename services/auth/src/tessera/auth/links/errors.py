"""Link errors: one answer for every failed verify."""

from tessera.shared.http.problems import Problem


class SignInFailed(Problem):
    """The same status, type and body whatever went wrong (no such link, expired, used,
    replaced, wrong code, exhausted, disabled user): the caller learns nothing."""

    status = 401
    slug = "sign-in-failed"
    title = "Sign-in failed"

    def __init__(self) -> None:
        super().__init__("The link or code is invalid or has expired. Ask for a new one.")


class CodeRequired(Problem):
    """The link is live but was opened in a browser other than the one that asked: the
    person types the code from the same mail. Only a holder of a live link sees this."""

    status = 409
    slug = "code-required"
    title = "Code required"

    def __init__(self) -> None:
        super().__init__("This link was opened on another device; enter the code from the mail.")
