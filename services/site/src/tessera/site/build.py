"""Render the site's templates into `dist/` with the links of this environment."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from tessera.site.settings import SiteSettings

TEMPLATES = Path(__file__).parent / "templates"


def template_context(settings: SiteSettings) -> dict[str, str]:
    billing = str(settings.billing_url).rstrip("/")
    return {
        "buy_url": f"{billing}/buy/{settings.product_sku}",
        "portal_url": str(settings.portal_url),
        "licensing_url": str(settings.licensing_url),
    }


def build_site(settings: SiteSettings, out: Path | None = None) -> list[Path]:
    target = out or settings.dist_dir
    target.mkdir(parents=True, exist_ok=True)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
    context = template_context(settings)
    written = []
    for name in sorted(p.name for p in TEMPLATES.glob("*.html")):
        path = target / name
        path.write_text(env.get_template(name).render(**context), encoding="utf-8")
        written.append(path)
    return written
