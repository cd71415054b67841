"""`/downloads`: what a license holder may download, and the download itself.

A product's download is configured (`TESSERA_PORTAL_DOWNLOADS`): a file in
`TESSERA_PORTAL_DOWNLOADS_DIR`, streamed by the portal, or an https:// URL it redirects to.
Either way only a signed-in customer with an active license of that product gets it: anyone
else gets the plain 404 (signed out: the sign-in page first).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse

from tessera.portal.context import Portal, PortalDep
from tessera.portal.upstream.licensing import License
from tessera.portal.web.errors import PageNotFound
from tessera.portal.web.pages import limit_lookups, page_headers, render, require_csrf
from tessera.portal.web.viewer import Viewer, ViewerDep

router = APIRouter(dependencies=[Depends(require_csrf)])

PRODUCT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def valid(license: License) -> bool:
    if license.status != "active":
        return False
    return license.expires_at is None or license.expires_at > datetime.now(UTC)


async def licensed_products(portal: Portal, viewer: Viewer) -> set[str]:
    caller = viewer.caller
    licenses = await viewer.call(lambda t: portal.licensing.my_licenses(caller, t))
    return {lic.product for lic in licenses if valid(lic)}


def file_of(portal: Portal, target: str) -> Path | None:
    """The configured file, if it is a plain name inside the downloads directory."""
    if target.startswith("https://"):
        return None
    if portal.downloads_root is None:
        return None
    root = portal.downloads_root.resolve()
    path = (root / target).resolve()
    if path.parent != root or not path.is_file():
        return None
    return path


def available(portal: Portal, target: str | None) -> bool:
    if target is None:
        return False
    return target.startswith("https://") or file_of(portal, target) is not None


@router.get("/downloads")
async def downloads(request: Request, portal: PortalDep, viewer: ViewerDep) -> Response:
    owned = await licensed_products(portal, viewer)
    names = await portal.names.refresh(portal.billing, viewer.caller)
    items = [
        {
            "product": product,
            "name": names.product(product),
            "available": available(portal, portal.settings.downloads.get(product)),
            "file": Path(portal.settings.downloads.get(product, "")).name,
        }
        for product in sorted(owned)
    ]
    return render(request, "account/downloads.html", items=items)


@router.get("/downloads/{product}", dependencies=[Depends(limit_lookups)])
async def download(
    request: Request, product: str, portal: PortalDep, viewer: ViewerDep
) -> Response:
    if not PRODUCT.match(product) or product not in await licensed_products(portal, viewer):
        raise PageNotFound()
    target = portal.settings.downloads.get(product)
    if target is None:
        raise PageNotFound()
    headers = page_headers(portal)
    if target.startswith("https://"):
        return Response(status_code=303, headers={**headers, "location": target})
    path = file_of(portal, target)
    if path is None:
        raise PageNotFound()
    headers["cache-control"] = "private, no-store"
    return FileResponse(path, filename=path.name, headers=headers)
