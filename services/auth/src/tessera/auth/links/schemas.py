"""Magic-link requests and responses."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, EmailStr, Field, model_validator

# The portal's per-browser binding cookie value (opaque to auth, >= 128 bits).
Browser = Field(min_length=22, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")
SAFE_PATH = re.compile(r"^/[A-Za-z0-9/_\-.]*(\?[A-Za-z0-9=&_\-.%]*)?$")


class LinkRequest(BaseModel):
    email: EmailStr = Field(max_length=254)
    next: str | None = Field(default=None, max_length=200)
    browser: str = Browser


class LinkAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str = "If the address has an account, a sign-in link and code are on their way."


class VerifyRequest(BaseModel):
    """One of: `token` (+ the same `browser`), `token` + `code`, or `email` + `code`."""

    browser: str = Browser
    token: str | None = Field(
        default=None, min_length=20, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$"
    )
    email: EmailStr | None = Field(default=None, max_length=254)
    code: str | None = Field(default=None, pattern=r"^[0-9]{6}$")
    seller: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]{2,39}$",
        description="With `email` + `code`: the slug of the seller whose sign-in page asked "
        "(the home seller's when absent). A link names its seller itself.",
    )

    @model_validator(mode="after")
    def one_way_in(self) -> VerifyRequest:
        if self.token is None and (self.email is None or self.code is None):
            raise ValueError("give `token`, `token` and `code`, or `email` and `code`")
        if self.token is not None and self.email is not None:
            raise ValueError("give `token` or `email`, not both")
        return self


class SignedInUser(BaseModel):
    id: UUID
    account_id: UUID
    email: str
    role: Literal["customer", "admin"]


class SignedIn(BaseModel):
    session_id: str = Field(description="Secret: the portal's session cookie value.")
    session: str = Field(description="The session's public handle.")
    idle_timeout: int
    expires_at: datetime
    next: str | None
    user: SignedInUser


def safe_next(path: str | None, prefixes: list[str]) -> bool:
    """A relative path on the portal under an allowlisted prefix: never a scheme, host,
    `//`, backslash or dot segment that could leave the site."""
    if path is None:
        return True
    if not SAFE_PATH.match(path) or path.startswith("//") or "/../" in path or path.endswith("/.."):
        return False
    bare = path.split("?", 1)[0]
    return any(bare == p or bare.startswith(p.rstrip("/") + "/") for p in prefixes)
