"""The site builds to static files whose links come from settings, not from templates."""

from pathlib import Path

import httpx

from tessera.site.app import create_app
from tessera.site.build import build_site
from tessera.site.settings import SiteSettings


def test_links_come_from_the_environment(tmp_path: Path) -> None:
    settings = SiteSettings(
        dist_dir=tmp_path,
        portal_url="https://portal.example.test",
        billing_url="https://pay.example.test",
    )
    written = build_site(settings)
    html = (tmp_path / "index.html").read_text()
    assert written == [tmp_path / "index.html"]
    assert 'href="https://pay.example.test/buy/chartgpt-lifetime"' in html
    assert 'href="https://portal.example.test/"' in html
    assert "127.0.0.1" not in html


async def test_the_dev_server_serves_the_build(tmp_path: Path) -> None:
    app = create_app(SiteSettings(dist_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://site") as client:
        page = await client.get("/")
        health = await client.get("/healthz")
    assert page.status_code == 200
    assert "ChartGPT" in page.text
    assert page.headers["x-content-type-options"] == "nosniff"
    assert health.json() == {"status": "ok"}
