"""The admin actions, one row each: what the confirmation page names and warns, the target
it looks up, the ids the form must carry, whether a reason is required, and the one
upstream call that does it (the owning service writes its own audit entry)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from tessera.portal.web.security import new_browser_id
from tessera.portal.web.viewer import Viewer, mark_revoked

EVENT_ID = re.compile(r"^evt_[A-Za-z0-9_]{1,100}$")

# What the confirmation page looks up from the ids in its link (never from what it shows).
TargetKind = Literal["license", "user", "account", "new-account", "event"]
Id = Literal["account_id", "license_id", "user_id"]


@dataclass(frozen=True)
class Posted:
    """The posted form: the ids an action named (parsed), and what the admin typed."""

    ids: dict[str, UUID]
    email: str
    event_id: str
    reason: str
    policy: str
    sku: str

    def id(self, name: Id) -> UUID:
        return self.ids[name]


@dataclass(frozen=True)
class Done:
    """Where the admin lands afterwards, and what that page is told."""

    path: str
    query: dict[str, str] = field(default_factory=dict)


class BadEvent(ValueError):
    """The form names something that is not a Stripe event id."""


Call = Callable[[str, Viewer, Posted], Awaitable[Done | None]]


@dataclass(frozen=True)
class Action:
    title: str
    warning: str
    target: TargetKind
    ids: tuple[Id, ...]  # parsed from the form before the call: missing or malformed is a 400
    call: Call  # returns where to go, or None: back to the account (or /admin), `done=<name>`
    reason: bool = True


async def license_action(name: str, viewer: Viewer, form: Posted) -> None:
    portal, lid = viewer.portal, form.id("license_id")
    await viewer.call(lambda t: portal.licensing.act(viewer.caller, t, lid, name, form.reason))


async def grant(name: str, viewer: Viewer, form: Posted) -> None:
    portal, aid = viewer.portal, form.id("account_id")
    policy = form.policy or portal.settings.default_policy
    await viewer.call(
        lambda t: portal.licensing.grant(viewer.caller, t, aid, form.email, policy, form.reason)
    )


async def seed(name: str, viewer: Viewer, form: Posted) -> Done:
    billing = viewer.portal.billing
    seeded = await viewer.call(
        lambda t: billing.seed(viewer.caller, t, form.email, form.sku, form.reason)
    )
    return Done(f"/admin/accounts/{seeded.account_id}", {"done": name})


async def resend_link(name: str, viewer: Viewer, form: Posted) -> None:
    # A fresh binding value: the customer's own browser will be asked for the code.
    await viewer.portal.auth.request_link(viewer.caller, form.email, new_browser_id(), None)


async def set_disabled(name: str, viewer: Viewer, form: Posted) -> None:
    portal, uid, disable = viewer.portal, form.id("user_id"), name == "disable-user"
    await viewer.call(
        lambda t: portal.auth.set_disabled(viewer.caller, t, uid, disable, form.reason)
    )
    if disable:
        await mark_revoked(portal, user_id=str(uid))


async def replay(name: str, viewer: Viewer, form: Posted) -> Done:
    if not EVENT_ID.match(form.event_id):
        raise BadEvent(form.event_id)
    billing = viewer.portal.billing
    result = await viewer.call(lambda t: billing.replay(viewer.caller, t, form.event_id))
    return Done("/admin/webhooks", {"replayed": result.id, "outcome": result.status})


LICENSE: tuple[Id, ...] = ("license_id",)

ACTIONS: dict[str, Action] = {
    "suspend": Action(
        "Suspend license", "The app stops working at its next check.",
        "license", LICENSE, license_action,
    ),
    "reinstate": Action(
        "Reinstate license", "The license works again.", "license", LICENSE, license_action
    ),
    "revoke": Action(
        "Revoke license", "Permanent: a revoked license cannot be reinstated.",
        "license", LICENSE, license_action,
    ),
    "reset-activations": Action(
        "Reset machines", "Every machine is removed and every seat freed.",
        "license", LICENSE, license_action,
    ),
    "grant": Action(
        "Grant a complimentary license", "A new license is issued to this account.",
        "account", ("account_id",), grant,
    ),
    "seed": Action(
        "Seed an account", "Creates the account (and an order at no charge, with a SKU).",
        "new-account", (), seed,
    ),
    "resend-link": Action(
        "Send a sign-in link", "The customer receives a new sign-in email.",
        "account", (), resend_link, reason=False,
    ),
    "disable-user": Action(
        "Disable user", "Every session ends and the user cannot sign in.",
        "user", ("user_id",), set_disabled,
    ),
    "enable-user": Action(
        "Enable user", "The user can sign in again.", "user", ("user_id",), set_disabled
    ),
    "replay": Action(
        "Replay webhook event", "The recorded Stripe event is applied again (idempotent).",
        "event", (), replay, reason=False,
    ),
}  # fmt: skip

NOTICES = {name: f"Done: {action.title.lower()}." for name, action in ACTIONS.items()}
