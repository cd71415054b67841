"""The build: links from settings, every internal link resolves, the page budget, no other
origins, and graceful fallbacks for docs and prices that do not exist yet."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tessera.site.app import create_app
from tessera.site.build import build_site
from tessera.site.docs import event_classes
from tessera.site.settings import SiteSettings

REPO = Path(__file__).resolve().parents[3]
BUDGET = 100 * 1024
# Deliberately unlike every default, so a link that ignores settings cannot pass.
UNUSUAL = {
    "base_url": "https://chartgpt.example.test",
    "portal_url": "https://account.example.test",
    "billing_url": "https://pay.example.test:8443/billing",
    "auth_url": "https://id.example.test",
    "licensing_url": "https://licenses.example.test/api",
}
BUY = "https://pay.example.test:8443/billing/buy/chartgpt-lifetime"
PORTAL = "https://account.example.test/"
DEFAULT_HOSTS = ("127.0.0.1", "localhost")
# Attributes that make the browser fetch something (as opposed to links a person follows).
LOADING = {("img", "src"), ("script", "src"), ("iframe", "src"), ("source", "src"),
           ("video", "src"), ("audio", "src"), ("embed", "src"), ("object", "data"),
           ("img", "srcset"), ("source", "srcset"), ("video", "poster"), ("input", "src")}  # fmt: skip


@dataclass
class Parsed:
    anchors: list[str] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)  # subresources the page fetches
    ids: set[str] = field(default_factory=set)
    meta: dict[str, str] = field(default_factory=dict)
    canonical: str | None = None
    tags: set[str] = field(default_factory=set)
    inline_styles: int = 0
    h1s: int = 0


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.out = Parsed()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        out = self.out
        out.tags.add(tag)
        out.h1s += tag == "h1"
        out.inline_styles += "style" in a
        if "id" in a:
            out.ids.add(a["id"])
        if tag == "a" and "href" in a:
            out.anchors.append(a["href"])
        if tag == "link":
            rel = a.get("rel", "")
            if rel == "canonical":
                out.canonical = a["href"]
            else:
                out.loads.append(a["href"])
        if tag == "meta" and ("property" in a or "name" in a):
            out.meta[a.get("property") or a["name"]] = a.get("content", "")
        for name, value in a.items():
            if (tag, name) in LOADING:
                out.loads.append(value)


def parse(path: Path) -> Parsed:
    parser = _Parser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.out


def html_pages(dist: Path) -> list[Path]:
    return sorted(dist.rglob("*.html"))


def url_path(dist: Path, page: Path) -> str:
    relative = page.relative_to(dist).as_posix()
    return "/" + relative.removesuffix("index.html")


def resolve(dist: Path, path: str) -> Path | None:
    """The file a static host serves for a site path, or None."""
    candidate = dist / path.lstrip("/")
    if path.endswith("/"):
        candidate = candidate / "index.html"
    if candidate.is_file():
        return candidate
    if (candidate / "index.html").is_file():
        return candidate / "index.html"
    return None


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build_site(SiteSettings.model_validate({**UNUSUAL, **sources(), "dist_dir": out}))
    return out


def sources() -> dict[str, object]:
    return {"docs_dir": REPO / "docs", "catalog_file": REPO / "deploy" / "catalog.json"}


# ------------------------------------------------------------------ links from settings


def test_the_issue_pages_are_all_built(dist: Path) -> None:
    expected = {
        "/", "/platform/", "/docs/", "/docs/getting-started/", "/docs/integrators/",
        "/docs/reference/events/", "/download/", "/release-notes/", "/terms/", "/privacy/",
        "/404.html",
    }  # fmt: skip
    built = {url_path(dist, p) for p in html_pages(dist)}
    assert expected <= built
    assert (dist / "robots.txt").is_file()
    assert (dist / "sitemap.xml").is_file()
    assert (dist / "static" / "favicon.svg").is_file()


def test_every_page_carries_the_configured_buy_and_portal_links(dist: Path) -> None:
    for page in html_pages(dist):
        anchors = parse(page).anchors
        assert BUY in anchors, f"{page}: no Buy link to billing"
        assert PORTAL in anchors, f"{page}: no link to the portal"


def test_every_absolute_link_uses_a_configured_address(dist: Path) -> None:
    configured = tuple(u.rstrip("/") for u in UNUSUAL.values())
    for page in html_pages(dist):
        own_templates = "/docs/reference/" not in url_path(dist, page)
        for href in parse(page).anchors:
            host = urlsplit(href).hostname or ""
            assert host not in DEFAULT_HOSTS, f"{page}: {href} is a dev default"
            # Rendered repo docs may cite outside sources (an RFC); our templates may not.
            if href.startswith(("http://", "https://")) and own_templates:
                assert href.startswith(configured), f"{page}: {href} is not from settings"


def test_the_integrator_guide_links_the_configured_api(dist: Path) -> None:
    anchors = parse(dist / "docs" / "integrators" / "index.html").anchors
    text = (dist / "docs" / "integrators" / "index.html").read_text()
    api = "https://licenses.example.test/api"
    for path in ("activate", "validate", "deactivate"):
        assert f"POST {api}/v1/licenses/{path}" in text
    assert f"{api}/v1/public-keys" in anchors
    assert "https://id.example.test/.well-known/jwks.json" in anchors
    assert "https://id.example.test/v1/device/authorize" in text


def test_canonical_open_graph_and_sitemap_use_the_base_url(dist: Path) -> None:
    base = UNUSUAL["base_url"]
    indexable = []
    for page in html_pages(dist):
        parsed = parse(page)
        path = url_path(dist, page)
        assert parsed.meta["og:url"] == f"{base}{path}"
        assert parsed.meta["og:image"].startswith(f"{base}/static/")
        assert resolve(dist, urlsplit(parsed.meta["og:image"]).path) is not None
        assert parsed.meta["og:title"] and parsed.meta["description"]
        if path == "/404.html":
            assert parsed.canonical is None and parsed.meta["robots"] == "noindex"
        else:
            assert parsed.canonical == f"{base}{path}"
            indexable.append(f"{base}{path}")
    namespace = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    tree = ET.parse(dist / "sitemap.xml")  # noqa: S314 - our own build output
    locs = [loc.text or "" for loc in tree.getroot().iterfind("s:url/s:loc", namespace)]
    assert sorted(locs) == sorted(indexable)
    robots = (dist / "robots.txt").read_text()
    assert f"Sitemap: {base}/sitemap.xml" in robots


# ------------------------------------------------------------------ internal links


def test_every_internal_link_and_asset_resolves_to_a_built_file(dist: Path) -> None:
    checked = 0
    for page in html_pages(dist):
        parsed = parse(page)
        for ref in parsed.anchors + parsed.loads:
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc or ref.startswith("mailto:"):
                continue
            if not parts.path:  # "#section" on the same page
                assert parts.fragment in parsed.ids, f"{page}: no #{parts.fragment}"
                continue
            assert parts.path.startswith("/"), f"{page}: {ref} is relative to the page"
            target = resolve(dist, parts.path)
            assert target is not None, f"{page}: {ref} does not resolve"
            if parts.fragment and target.suffix == ".html":
                assert parts.fragment in parse(target).ids, f"{page}: {ref}: no such anchor"
            checked += 1
    assert checked > 100  # the walk saw the whole site, not an empty build


# ------------------------------------------------------------------ budget and origins


def test_every_page_is_under_the_budget_with_everything_it_loads(dist: Path) -> None:
    for page in html_pages(dist):
        total = page.stat().st_size
        for ref in set(parse(page).loads):
            target = resolve(dist, urlsplit(ref).path)
            assert target is not None
            total += target.stat().st_size
        assert total < BUDGET, f"{page}: {total} bytes"


def test_no_page_loads_anything_from_another_origin_or_runs_script(dist: Path) -> None:
    for page in html_pages(dist):
        parsed = parse(page)
        for ref in parsed.loads:
            parts = urlsplit(ref)
            assert not parts.scheme and not parts.netloc, f"{page}: loads {ref}"
        assert "script" not in parsed.tags, f"{page}: has a script"
        assert "style" not in parsed.tags, f"{page}: inline <style> (the CSP forbids it)"
        assert parsed.inline_styles == 0, f"{page}: style attribute (the CSP forbids it)"
        assert parsed.h1s == 1, f"{page}: {parsed.h1s} h1 elements"
    css = (dist / "static" / "site.css").read_text()
    assert "@import" not in css
    assert not re.search(r"url\(", css), "the stylesheet fetches something"


# ------------------------------------------------------------------ sources and fallbacks


def test_the_price_comes_from_billings_catalog(dist: Path, tmp_path: Path) -> None:
    assert "$149" in (dist / "index.html").read_text()
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        '{"products": [{"code": "chartgpt", "name": "ChartGPT", "one_time_prices": ['
        '{"sku": "chartgpt-lifetime", "name": "x", "unit_amount": 9950,'
        ' "currency": "eur", "policy": "p"}]}]}'
    )
    build_site(SiteSettings(dist_dir=tmp_path / "eur", catalog_file=catalog))
    assert "€99.50" in (tmp_path / "eur" / "index.html").read_text()
    build_site(SiteSettings(dist_dir=tmp_path / "none", catalog_file=tmp_path / "missing"))
    home = (tmp_path / "none" / "index.html").read_text()
    assert "One payment" in home and "$" not in home


def test_missing_docs_fall_back_and_events_are_generated_from_the_contracts(
    tmp_path: Path,
) -> None:
    out = tmp_path / "dist"
    build_site(SiteSettings(dist_dir=out, docs_dir=tmp_path / "no-docs"))
    events = (out / "docs" / "reference" / "events" / "index.html").read_text()
    classes = event_classes()
    assert len(classes) >= 5
    for cls in classes:
        assert f"<code>{cls.subject}</code>" in events
    assert "Generated from the payload models" in events
    assert not (out / "docs" / "reference" / "licensing-client").exists()
    integrators = (out / "docs" / "integrators" / "index.html").read_text()
    assert "/docs/reference/licensing-client/" not in integrators
    assert "will appear here when it ships" in integrators


def test_repo_docs_are_rendered_with_site_links_and_this_builds_addresses(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "licensing-client.md").write_text(
        "# Licensing client\n\n## Validate\n\n"
        "Call `http://127.0.0.1:8084/v1/licenses/validate`; see [events](events.md#streams),\n"
        "[the code](../services/licensing/src/x.py) and ![diagram](shot.png).\n\n"
        "- Headers:\n  - `traceparent`, nested by two spaces\n\n"
        "```\n  indented code stays as written\n```\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    (docs / "events.md").write_text("# Events\n\n## Streams\n\nOne per producer.\n")
    out = tmp_path / "dist"
    build_site(SiteSettings(dist_dir=out, docs_dir=docs, licensing_url="https://lic.example.test"))
    page = out / "docs" / "reference" / "licensing-client" / "index.html"
    html = page.read_text()
    parsed = parse(page)
    assert "<code>https://lic.example.test/v1/licenses/validate</code>" in html
    assert "/docs/reference/events/#streams" in parsed.anchors
    assert not any("services/licensing" in a for a in parsed.anchors)  # unwrapped to text
    assert "the code" in html
    assert "shot.png" not in html and "img" not in parsed.tags
    assert "<table>" in html
    assert re.search(r"<li>Headers:\s*<ul>\s*<li><code>traceparent</code>", html)
    assert "<pre><code>  indented code stays as written" in html
    assert "validate" in parsed.ids
    assert parsed.h1s == 1
    integrators = parse(out / "docs" / "integrators" / "index.html").anchors
    assert "/docs/reference/licensing-client/" in integrators


# ------------------------------------------------------------------ the dev server


async def test_the_dev_server_serves_the_build_with_strict_headers(
    tmp_path: Path, make_settings: Callable[..., SiteSettings]
) -> None:
    app = create_app(make_settings(tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://site") as client:
        page = await client.get("/", headers={"accept-encoding": "gzip"})
        docs = await client.get("/docs/getting-started/")
        missing = await client.get("/no/such/page/")
        health = await client.get("/healthz")
    assert page.status_code == 200
    assert "ChartGPT" in page.text
    assert page.headers["content-encoding"] == "gzip"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'none'" in page.headers["content-security-policy"]
    assert docs.status_code == 200 and "Move to a new machine" in docs.text
    assert missing.status_code == 404 and "This page is not here" in missing.text
    assert health.json() == {"status": "ok"}


async def test_the_server_rebuilds_at_start_so_links_follow_the_environment(
    tmp_path: Path, make_settings: Callable[..., SiteSettings]
) -> None:
    create_app(make_settings(tmp_path, portal_url="https://first.example.test"))
    create_app(make_settings(tmp_path, portal_url="https://second.example.test"))
    home = (tmp_path / "index.html").read_text()
    assert "https://second.example.test/" in home and "first.example.test" not in home
