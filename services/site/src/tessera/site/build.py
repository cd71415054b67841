"""Render the site into `dist/` with the links of this environment.

Output is plain files a static host serves as they are: `/x/` is `x/index.html`, a missing
path gets `404.html`, and every asset lives under `/static/`. Nothing on a page loads from
another origin, and no page needs JavaScript.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from tessera.site.catalog import find_price
from tessera.site.docs import RenderedDoc, render_reference
from tessera.site.links import Links
from tessera.site.settings import SiteSettings

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
RELEASES = HERE / "content" / "releases.toml"
OG_IMAGE = "/static/og.png"

DESCRIPTION = (
    "ChartGPT sends your NinjaTrader chart's context to your own AI provider: OpenAI, "
    "Anthropic, Google or OpenRouter. One lifetime license, bring your own key."
)


@dataclass(frozen=True)
class Page:
    path: str  # the URL path: "/", "/platform/", "/404.html"
    template: str
    title: str
    description: str
    section: str = ""
    indexable: bool = True  # in the sitemap, with a canonical link
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> PurePosixPath:
        relative = PurePosixPath(self.path.lstrip("/"))
        return relative / "index.html" if self.path.endswith("/") else relative


def site_pages(reference: Iterable[RenderedDoc]) -> list[Page]:
    pages = [
        Page("/", "index.html", "ChartGPT: ask AI about your NinjaTrader chart", DESCRIPTION),
        Page(
            "/platform/",
            "platform.html",
            "Platform: how ChartGPT's site, checkout, portal, app and API fit together",
            "The surfaces behind ChartGPT, each with one job, and the flow from Buy to a "
            "licensed desktop app.",
            section="platform",
        ),
        Page(
            "/docs/",
            "docs/index.html",
            "ChartGPT documentation",
            "Guides for ChartGPT customers and the licensing contracts for integrators.",
            section="docs",
        ),
        Page(
            "/docs/getting-started/",
            "docs/getting-started.html",
            "Getting started with ChartGPT",
            "Buy ChartGPT, sign in by email link, activate NinjaTrader and move to a new machine.",
            section="docs",
        ),
        Page(
            "/docs/integrators/",
            "docs/integrators.html",
            "Desktop integration guide: licensing API and signed leases",
            "Activate, validate and deactivate; the Ed25519 lease, its offline verification "
            "and the public keys.",
            section="docs",
        ),
        *(
            Page(
                doc.path,
                "docs/reference.html",
                f"{doc.title}: ChartGPT integrator reference",
                doc.summary,
                section="docs",
                extra={"doc": doc},
            )
            for doc in reference
        ),
        Page(
            "/download/",
            "download.html",
            "Download ChartGPT for NinjaTrader 8",
            "Requirements and installation of the ChartGPT add-on for NinjaTrader 8.",
            section="download",
        ),
        Page(
            "/release-notes/",
            "release-notes.html",
            "ChartGPT release notes",
            "What changed in each version of ChartGPT.",
            section="download",
        ),
        Page("/terms/", "terms.html", "Terms of sale and use: ChartGPT", "ChartGPT's terms."),
        Page(
            "/privacy/",
            "privacy.html",
            "Privacy notice: ChartGPT",
            "What ChartGPT's licensing keeps, why, and what it never sees.",
        ),
        Page(
            "/404.html",
            "404.html",
            "Page not found: ChartGPT",
            "This page does not exist.",
            indexable=False,
        ),
    ]
    return pages


def _write(path: Path, data: bytes) -> None:
    """Write atomically: a server (or another worker building at start-up) never serves a
    half-written page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy_static(target: Path) -> str:
    """Copy assets; returns the stylesheet's URL, versioned by content for long caching."""
    out = target / "static"
    for asset in sorted(STATIC.iterdir()):
        if asset.is_file():
            _write(out / asset.name, asset.read_bytes())
    digest = hashlib.sha256((STATIC / "site.css").read_bytes()).hexdigest()[:10]
    return f"/static/site.css?v={digest}"


def _releases() -> list[dict[str, Any]]:
    data = tomllib.loads(RELEASES.read_text(encoding="utf-8"))
    releases: list[dict[str, Any]] = data.get("release", [])
    return releases


def build_site(settings: SiteSettings, out: Path | None = None) -> list[Path]:
    """Render every page, robots.txt, sitemap.xml and the assets; returns the files written."""
    target = out or settings.dist_dir
    target.mkdir(parents=True, exist_ok=True)
    links = Links.of(settings)
    reference = render_reference(settings.docs_dir, links.dev_defaults(settings))
    pages = site_pages(reference)
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "xml"]),
        undefined=StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    common = {
        "links": links,
        "price": find_price(settings.catalog_file, settings.product_sku),
        "stylesheet": _copy_static(target),
        "og_image": OG_IMAGE,
        "reference_docs": reference,
        "reference_by_slug": {doc.slug: doc for doc in reference},
        "releases": _releases(),
        "pages": pages,
    }
    written = [target / "static" / p.name for p in sorted(STATIC.iterdir()) if p.is_file()]
    for page in pages:
        html = env.get_template(page.template).render(**common, **page.extra, page=page)
        path = target / page.output
        _write(path, html.encode("utf-8"))
        written.append(path)
    for name in ("robots.txt", "sitemap.xml"):
        _write(target / name, env.get_template(name).render(**common).encode("utf-8"))
        written.append(target / name)
    return written


def clean(target: Path) -> None:
    """Remove a previous build (the CLI's `--clean`), so pages that no longer exist go too."""
    if (target / "index.html").is_file() and (target / "static").is_dir():
        shutil.rmtree(target)
