"""Where Checkout sends the buyer back to: the seller's own pages (`success_url`,
`cancel_url`, as a server may set them with Stripe), or Tessera's defaults (the portal's
success page, the site).

A seller's pages are taken from a secret key only: a publishable key sits in browsers, so
anyone could otherwise start a seller's checkout that ends on a page of their choosing (a
phishing page that looks like the seller's confirmation)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field

from tessera.billing.settings import BillingSettings
from tessera.shared.http.problems import Problem
from tessera.shared.sellers import Mode

# Stripe replaces this literal in a success URL with the session's id.
SESSION_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
# Ours, well under Stripe's own limit, and under what every browser keeps in a location.
MAX_LENGTH = 2048
# Printable ASCII without space, quotes, angle brackets, backslash (browsers read it as `/`
# in an http(s) URL, so the host a person sees and the one the browser goes to could
# differ), caret, backtick or pipe: what RFC 3986 allows in a URL, braces aside (below).
URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%{}]+")
# A host name or IP address, and an optional port: nothing else may reach a CSP header.
NETLOC = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?"
)


# A seller's own return page (secret keys only; checked by `stripe/return_urls.py`).
ReturnUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_LENGTH,
        description="An absolute http(s) URL (https with a live key) of the seller's own "
        "page, secret keys only; a success URL may carry {CHECKOUT_SESSION_ID}, which "
        "Stripe fills in. Default: Tessera's success page (success_url), the site "
        "(cancel_url).",
    ),
]


@dataclass(frozen=True)
class ReturnUrls:
    success_url: str
    cancel_url: str


class ReturnUrlsNeedSecretKey(Problem):
    status = 403
    slug = "return-urls-need-secret-key"
    title = "Return pages can be set with a secret key only"


class InvalidReturnUrl(Problem):
    status = 422
    slug = "invalid-return-url"
    title = "Invalid return URL"


def defaults(settings: BillingSettings) -> ReturnUrls:
    """The portal's success page (which asks billing what became of the session) and the
    site."""
    portal = str(settings.portal_url).rstrip("/")
    return ReturnUrls(
        f"{portal}/checkout/success?session_id={SESSION_PLACEHOLDER}", str(settings.site_url)
    )


def chosen(
    settings: BillingSettings,
    success_url: str | None,
    cancel_url: str | None,
    *,
    secret_key: bool,
    mode: Mode,
) -> ReturnUrls | None:
    """The pages a checkout returns to: the caller's where given (a secret key's only: 403
    otherwise; each checked, 422), the defaults beside them; None when neither is given."""
    if success_url is None and cancel_url is None:
        return None
    if not secret_key:
        raise ReturnUrlsNeedSecretKey(
            "success_url and cancel_url need a secret key: a publishable key is public, and "
            "anyone holding it could send your buyers to a page of their choosing."
        )
    default = defaults(settings)
    return ReturnUrls(
        default.success_url if success_url is None else checked("success_url", success_url, mode),
        default.cancel_url if cancel_url is None else checked("cancel_url", cancel_url, mode),
    )


def checked(field: str, url: str, mode: Mode) -> str:
    """`url` unchanged if it is an absolute http(s) URL Stripe will take (https in live
    mode), else 422 naming what is wrong. `{CHECKOUT_SESSION_ID}` passes through in a
    success URL's path, query or fragment, for Stripe to fill in."""
    problem = url_problem(field, url, mode)
    if problem:
        raise InvalidReturnUrl(f"{field} {problem}.", field=field)
    return url


def url_problem(field: str, url: str, mode: Mode) -> str | None:
    """What is wrong with `url` as `field`, or None."""
    if len(url) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} characters"
    if not URL_CHARS.fullmatch(url):
        return "has characters a URL cannot carry (spaces, quotes, backslashes, non-ASCII…)"
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced or malformed [IPv6] host
        return "does not name a valid host and port"
    schemes = ("https",) if mode == "live" else ("http", "https")
    if parts.scheme not in schemes or not parts.netloc:
        return "must be an absolute " + (
            "https:// URL (a live-mode checkout)" if mode == "live" else "http(s):// URL"
        )
    if "@" in parts.netloc:
        return "must not carry a user name or password"
    if not NETLOC.fullmatch(parts.netloc) or not valid_port(url):
        return "does not name a valid host and port"
    after_host = url[len(parts.scheme) + 3 + len(parts.netloc) :]
    if field == "success_url":
        after_host = after_host.replace(SESSION_PLACEHOLDER, "")
    if "{" in after_host or "}" in after_host:
        if field == "success_url":
            return "may carry braces only as {CHECKOUT_SESSION_ID}"
        return "cannot carry braces (Stripe fills {CHECKOUT_SESSION_ID} in a success URL only)"
    return None


def valid_port(url: str) -> bool:
    try:
        port = urlsplit(url).port
    except ValueError:  # not a number, or above 65535
        return False
    return port != 0


def origin(url: str) -> str:
    """`scheme://host[:port]` of a checked URL (for a page's CSP `form-action`)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
