"""Cookies, CSRF tokens, redirect targets and the Content-Security-Policy.

CSRF is a signed double submit: every form carries HMAC(secret, browser cookie), and a POST
must bring it back (form field `csrf`, or the `X-CSRF-Token` header htmx sends). The browser
cookie is HttpOnly, so a page on another origin can neither read it nor compute the token;
SameSite=Lax keeps the cookies off cross-site POSTs as a second line.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

from fastapi import Request

BROWSER_COOKIE = "tessera_browser"
SESSION_COOKIE = "tessera_session"
# Matches what auth accepts for both values (base64url, 22-128 characters).
COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_\-]{22,128}$")
BROWSER_MAX_AGE = 400 * 24 * 3600  # the longest lifetime browsers honour

# Where a `next` may send someone after sign-in: the portal's own pages, nothing else.
NEXT_PREFIXES = ("/licenses", "/downloads", "/orders", "/account", "/device", "/admin", "/seller")
SAFE_PATH = re.compile(r"^/[A-Za-z0-9/_\-.]*(\?[A-Za-z0-9=&_\-.%]*)?$")
DEFAULT_NEXT = "/licenses"


def content_security_policy(form_targets: str) -> str:
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self'",
            f"form-action 'self' {form_targets}".strip(),
            "frame-ancestors 'none'",
            "base-uri 'none'",
        )
    )


def safe_next(path: str | None) -> str | None:
    """`path` if it is a relative portal path under an allowlisted prefix, else None: no
    scheme, host, `//`, backslash or dot segment that could leave the site."""
    if not path or len(path) > 200 or not SAFE_PATH.match(path) or path.startswith("//"):
        return None
    if "/../" in path or path.endswith("/..") or "/./" in path:
        return None
    bare = path.split("?", 1)[0]
    if any(bare == p or bare.startswith(p + "/") for p in NEXT_PREFIXES):
        return path
    return None


def new_browser_id() -> str:
    return secrets.token_urlsafe(24)


def browser_id(request: Request) -> str:
    """This browser's binding value: its cookie, or a new one the response will set."""
    known = getattr(request.state, "browser", None)
    if isinstance(known, str):
        return known
    value = request.cookies.get(BROWSER_COOKIE, "")
    if not COOKIE_VALUE.match(value):
        value = new_browser_id()
        request.state.new_browser = True
    request.state.browser = value
    return value


def csrf_token(secret: str, browser: str) -> str:
    mac = hmac.new(secret.encode(), b"csrf|" + browser.encode(), hashlib.sha256)
    return mac.hexdigest()


def csrf_matches(secret: str, browser: str | None, sent: str | None) -> bool:
    if not browser or not sent or not COOKIE_VALUE.match(browser):
        return False
    return hmac.compare_digest(csrf_token(secret, browser), sent)


def same_origin(request: Request) -> bool:
    """Defence in depth beside the token: a browser that says where a POST comes from must
    say this origin. `Sec-Fetch-Site` is sent whatever the referrer policy; `Origin` is
    "null" under our `Referrer-Policy: no-referrer`, so only a real origin is compared."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def cache_key(secret: str, session_id: str) -> str:
    """The Redis name of a session's cached token: never the session id itself."""
    return hmac.new(secret.encode(), b"tok|" + session_id.encode(), hashlib.sha256).hexdigest()
