"""Exceptions a page raises to leave the normal path; `web.pages` renders each as HTML."""

from __future__ import annotations


class SignedOut(Exception):
    """No live session: the page sends the browser to sign in (and drops the cookie)."""


class PageNotFound(Exception):
    """A 404 page. Also what a non-admin sees for anything under /admin."""


class CsrfFailed(Exception):
    """A POST without this browser's CSRF token (or from another origin)."""
