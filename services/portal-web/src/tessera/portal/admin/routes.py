"""Admin pages. Every change goes through the owning service's admin API (which writes its
own audit entry) and only after a confirmation page."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Query, Request, Response

from tessera.portal.admin.actions import ACTIONS, EVENT_ID, NOTICES, BadEvent, Posted
from tessera.portal.admin.chart import chart
from tessera.portal.context import Portal, PortalDep
from tessera.portal.upstream.auth import User
from tessera.portal.upstream.base import UpstreamError
from tessera.portal.upstream.billing import AccountDetail
from tessera.portal.upstream.licensing import License
from tessera.portal.web.pages import limit_posts, redirect, render, require_csrf
from tessera.portal.web.viewer import AdminViewerDep, Viewer, admin_viewer
from tessera.shared.http.params import IsoDate

# The role check runs first: anyone but an admin gets the plain 404 for every /admin path
# and method, before CSRF (whose 403 would tell that /admin exists).
router = APIRouter(prefix="/admin", dependencies=[Depends(admin_viewer), Depends(require_csrf)])

LICENSE_KEY = re.compile(r"^[0-9A-Za-z]{5}(-?[0-9A-Za-z]{5}){4}$")
EXPORTS = {"orders.csv": "billing", "accounts.csv": "billing", "licenses.csv": "licensing"}


async def post_limit(request: Request, portal: PortalDep) -> None:
    await limit_posts(request, portal.settings.rl_post_per_ip, "post-ip")


Text = Annotated[str, Form(max_length=500)]
Short = Annotated[str, Query(max_length=200)]


@router.get("")
async def search(
    request: Request, portal: PortalDep, viewer: AdminViewerDep, q: Short = ""
) -> Response:
    query = q.strip()
    results = await find_accounts(portal, viewer, query) if query else []
    return render(request, "admin/search.html", q=query, results=results)


async def find_accounts(portal: Portal, viewer: Viewer, q: str) -> list[dict[str, Any]]:
    """Accounts matching an email (or part), an account, order or Stripe id, or a key."""
    caller = viewer.caller
    found: dict[UUID, dict[str, Any]] = {}
    if LICENSE_KEY.match(q):
        for lic in await viewer.call(lambda t: portal.licensing.search(caller, t, key=q)):
            found.setdefault(
                lic.account_id, {"id": lic.account_id, "email": lic.email, "via": "license key"}
            )
    for account in await viewer.call(lambda t: portal.billing.accounts(caller, t, q)):
        found.setdefault(account.id, {"id": account.id, "email": account.email, "via": "billing"})
    if not found:
        for order in await viewer.call(lambda t: portal.billing.orders(caller, t, q)):
            if order.account_id:
                found.setdefault(
                    order.account_id, {"id": order.account_id, "email": order.email, "via": "order"}
                )
    if "@" in q:
        for lic in await viewer.call(lambda t: portal.licensing.search(caller, t, email=q)):
            found.setdefault(
                lic.account_id, {"id": lic.account_id, "email": lic.email, "via": "license"}
            )
    return list(found.values())


@router.get("/accounts/{account_id}")
async def account(
    request: Request,
    account_id: UUID,
    portal: PortalDep,
    viewer: AdminViewerDep,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    caller = viewer.caller

    async def billing_account() -> AccountDetail | None:
        try:
            return await viewer.call(lambda t: portal.billing.account(caller, t, account_id))
        except UpstreamError as error:
            if error.status == 404:  # an account auth made by signup has no billing side
                return None
            raise

    detail, licenses = await asyncio.gather(
        billing_account(),
        viewer.call(lambda t: portal.licensing.search(caller, t, account_id=str(account_id))),
    )
    email = detail.account.email if detail else (licenses[0].email if licenses else None)
    if email is None:
        return render(
            request,
            "error.html",
            status_code=404,
            title="No such account",
            message="Nothing is known about this account.",
        )
    users = [
        u
        for u in await viewer.call(lambda t: portal.auth.users(caller, t, email))
        if u.account_id == account_id
    ]
    trail = await audit_trail(viewer, portal, users, licenses, detail)
    return render(
        request,
        "admin/account.html",
        account_id=account_id,
        email=email,
        detail=detail,
        licenses=licenses,
        user=users[0] if users else None,
        trail=trail,
        notice=NOTICES.get(done or ""),
        policy=portal.settings.default_policy,
    )


async def audit_trail(
    viewer: Viewer,
    portal: Portal,
    users: list[User],
    licenses: list[License],
    detail: AccountDetail | None,
) -> list[dict[str, Any]]:
    """One timeline from the three services' audit logs, newest first."""
    caller = viewer.caller
    rows: list[dict[str, Any]] = []

    async def auth_entries(user_id: UUID) -> None:
        entries = await viewer.call(lambda t: portal.auth.audit(caller, t, user_id))
        rows.extend(
            {"at": e.at, "service": "auth", "action": e.action,
             "by": str(e.actor_id or "-"), "detail": e.detail}
            for e in entries
        )  # fmt: skip

    async def licensing_entries(license_id: UUID) -> None:
        entries = await viewer.call(lambda t: portal.licensing.audit(caller, t, license_id))
        rows.extend(
            {"at": e.at, "service": "licensing", "action": e.action,
             "by": e.actor_role, "detail": e.detail}
            for e in entries
        )  # fmt: skip

    for user in users:
        await auth_entries(user.id)
    for lic in licenses:
        await licensing_entries(lic.id)
    rows.extend(
        {"at": e.at, "service": "billing", "action": e.action, "by": e.actor, "detail": e.detail}
        for e in (detail.audit if detail else [])
    )
    rows.sort(key=lambda r: r["at"], reverse=True)
    return rows[:100]


@dataclass(frozen=True)
class Target:
    """What an action will hit, described from the owning services' records."""

    fields: dict[str, str]
    label: str
    email: str = ""


OptionalId = Annotated[UUID | None, Query()]


@router.get("/confirm")
async def confirm(
    request: Request,
    viewer: AdminViewerDep,
    portal: PortalDep,
    action: Short,
    account_id: OptionalId = None,
    license_id: OptionalId = None,
    user_id: OptionalId = None,
    event_id: Short = "",
) -> Response:
    """Only the action's name and ids are read from the URL: what the page says the action
    will hit is looked up from those ids, so a crafted link cannot show one thing and do
    another."""
    spec = ACTIONS.get(action)
    if spec is None:
        return unknown_action(request)
    ids = {"account_id": account_id, "license_id": license_id, "user_id": user_id}
    target = await describe(portal, viewer, action, ids, event_id)
    if target is None:
        return render(
            request,
            "error.html",
            status_code=404,
            title="Nothing to act on",
            message="The link names something that does not exist (or not together).",
        )
    return render(
        request,
        "admin/confirm.html",
        action=action,
        spec=spec,
        fields=target.fields,
        label=target.label,
        email=target.email,
        policy=portal.settings.default_policy,
        sku=portal.settings.default_sku,
    )


async def account_email(portal: Portal, viewer: Viewer, account_id: UUID) -> str | None:
    """The account's email, from billing (or, for an account billing never saw, licensing)."""
    caller = viewer.caller
    try:
        detail = await viewer.call(lambda t: portal.billing.account(caller, t, account_id))
        return detail.account.email
    except UpstreamError as error:
        if error.status != 404:
            raise
    found = await viewer.call(
        lambda t: portal.licensing.search(caller, t, account_id=str(account_id))
    )
    return found[0].email if found else None


async def describe(
    portal: Portal, viewer: Viewer, action: str, ids: dict[str, UUID | None], event_id: str
) -> Target | None:
    """The target of an action, from its ids alone; None when they name nothing (or things
    that do not belong together)."""
    caller = viewer.caller
    kind = ACTIONS[action].target
    if kind == "new-account":  # starts from nothing: the admin types the email on the form
        return Target({}, "")
    if kind == "event":
        if not EVENT_ID.match(event_id):
            return None
        return Target({"event_id": event_id}, f"Stripe event {event_id}")
    account_id = ids["account_id"]
    if account_id is None:
        return None
    email = await account_email(portal, viewer, account_id)
    if email is None:
        return None
    fields = {"account_id": str(account_id)}
    if kind == "license":
        license_id = ids["license_id"]
        licenses = await viewer.call(
            lambda t: portal.licensing.search(caller, t, account_id=str(account_id))
        )
        lic = next((x for x in licenses if x.id == license_id), None)
        if lic is None:
            return None
        fields["license_id"] = str(lic.id)
        return Target(fields, f"{lic.product} license {lic.key} of {lic.email} ({lic.status})")
    if kind == "user":
        users = await viewer.call(lambda t: portal.auth.users(caller, t, email))
        user = next(
            (u for u in users if u.id == ids["user_id"] and u.account_id == account_id), None
        )
        if user is None:
            return None
        fields["user_id"] = str(user.id)
        state = "disabled" if user.disabled else "enabled"
        return Target(fields, f"User {user.email} ({user.role}, sign-in {state})")
    fields["email"] = email
    return Target(fields, email, email)


def unknown_action(request: Request) -> Response:
    return render(
        request,
        "error.html",
        status_code=404,
        title="Unknown action",
        message="There is no such action.",
    )


@router.post("/actions/{action}", dependencies=[Depends(post_limit)])
async def act(
    request: Request,
    action: str,
    viewer: AdminViewerDep,
    account_id: Annotated[str, Form(max_length=64)] = "",
    license_id: Annotated[str, Form(max_length=64)] = "",
    user_id: Annotated[str, Form(max_length=64)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    event_id: Annotated[str, Form(max_length=120)] = "",
    reason: Text = "",
    policy: Annotated[str, Form(max_length=64)] = "",
    sku: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    spec = ACTIONS.get(action)
    if spec is None:
        return unknown_action(request)
    reason = reason.strip()
    if spec.reason and not reason:
        return render(
            request,
            "error.html",
            status_code=400,
            title="A reason is required",
            message="Go back and say why: it is kept in the audit log.",
        )
    named = {"account_id": account_id, "license_id": license_id, "user_id": user_id}
    try:
        ids: dict[str, UUID] = {n: UUID(v) for n, v in named.items() if n in spec.ids}
        posted = Posted(ids, email=email, event_id=event_id, reason=reason, policy=policy, sku=sku)
        back = f"/admin/accounts/{UUID(account_id)}" if account_id else "/admin"
        done = await spec.call(action, viewer, posted)
    except BadEvent:
        return render(
            request, "error.html", status_code=400, title="Unknown event",
            message="That is not a Stripe event id.",
        )  # fmt: skip
    except ValueError:  # a malformed id in the form
        return render(
            request, "error.html", status_code=400, title="Bad request",
            message="The form named something that does not exist.",
        )  # fmt: skip
    except UpstreamError as error:
        if error.status not in (400, 409, 422):
            raise
        # Admins may see why the owning service refused (a revoked license, a bad policy).
        return render(
            request, "error.html", status_code=409, title=f"The {error.service} service refused",
            message=error.detail or error.slug,
        )  # fmt: skip
    if done is None:
        return redirect(request, back, done=action)
    return redirect(request, done.path, **done.query)


@router.get("/webhooks")
async def webhooks(
    request: Request,
    portal: PortalDep,
    viewer: AdminViewerDep,
    status: Annotated[str, Query(pattern="^(|processed|ignored|held|failed)$")] = "",
    type: Short = "",
    replayed: Short = "",
    outcome: Annotated[str, Query(pattern="^[a-z_]{0,20}$")] = "",
) -> Response:
    caller = viewer.caller
    events = await viewer.call(
        lambda t: portal.billing.webhook_events(caller, t, status or None, type.strip() or None)
    )
    return render(
        request,
        "admin/webhooks.html",
        events=events,
        status=status,
        type=type,
        replayed=replayed if EVENT_ID.match(replayed) else "",
        outcome=outcome,
    )


@router.get("/revenue")
async def revenue(
    request: Request,
    portal: PortalDep,
    viewer: AdminViewerDep,
    start: IsoDate | None = None,
    end: IsoDate | None = None,
) -> Response:
    caller = viewer.caller
    summary = await viewer.call(lambda t: portal.billing.revenue(caller, t, start, end))
    return render(request, "admin/revenue.html", revenue=summary, chart=chart(summary))


@router.get("/exports/{name}")
async def export(
    request: Request, name: str, portal: PortalDep, viewer: AdminViewerDep
) -> Response:
    service = EXPORTS.get(name)
    if service is None:
        return render(
            request,
            "error.html",
            status_code=404,
            title="Page not found",
            message="There is no such export.",
        )
    caller = viewer.caller
    if service == "licensing":
        body = await viewer.call(lambda t: portal.licensing.export(caller, t))
    else:
        body = await viewer.call(lambda t: portal.billing.export(caller, t, name))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{name}"',
            "cache-control": "no-store",
        },
    )
