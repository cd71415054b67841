"""Billing's few HTML pages (the test checkout's, Connect's callback): one Jinja
environment over `templates/`, one same-origin stylesheet, one Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import HTMLResponse, PlainTextResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATES = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=select_autoescape())
# One same-origin stylesheet, forms that post to themselves, no framing.
PAGE_CSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'"


def page(
    template: str, status_code: int = 200, form_target: str | None = None, **context: object
) -> HTMLResponse:
    """A page. `form_target`: the origin of a seller's URL that the page's form answer
    redirects to (a browser holds a form's redirects to the page's `form-action`)."""
    html = TEMPLATES.get_template(template).render(**context)
    csp = PAGE_CSP
    if form_target is not None:
        csp = csp.replace("form-action 'self'", f"form-action 'self' {form_target}")
    return HTMLResponse(html, status_code=status_code, headers={"content-security-policy": csp})


def stylesheet() -> PlainTextResponse:
    css = (TEMPLATE_DIR / "checkout.css").read_text()
    return PlainTextResponse(css, media_type="text/css", headers={"cache-control": "max-age=3600"})
