"""Connect: `/v1/accounts`, `/v1/account`, `/v1/account_links`, connect.stripe.com's OAuth
(`/oauth/authorize` page, `POST /oauth/token`, `POST /oauth/deauthorize`), and the hosted
onboarding page an account link opens. Objects made with `Stripe-Account: acct_...` live in
that account, and their events carry `account` (they go to the Connect endpoint)."""

from __future__ import annotations

import html
from urllib.parse import urlencode

from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.store import PLATFORM, snapshot
from tessera.devstack.stripe_standin.wire import Obj, StripeApiError, new_id, page

ONBOARDING_DUE = [
    "business_profile.url", "external_account", "tos_acceptance.date", "tos_acceptance.ip",
]  # fmt: skip


def _requirements(due: list[str]) -> Obj:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(due),
        "disabled_reason": "requirements.past_due" if due else None,
        "errors": [],
        "eventually_due": list(due),
        "past_due": list(due),
        "pending_verification": [],
    }


def new_account(call: Call, kind: str, email: str | None, country: str, onboarded: bool) -> Obj:
    account: Obj = {
        "id": new_id("acct_1", 16),
        "object": "account",
        "business_profile": {"mcc": None, "name": None, "support_email": None, "url": None},
        "business_type": None,
        "capabilities": {"card_payments": "active", "transfers": "active"}
        if onboarded
        else {"card_payments": "inactive", "transfers": "inactive"},
        "charges_enabled": onboarded,
        "controller": {
            "type": "application",
            "is_controller": True,
            "stripe_dashboard": {"type": "full" if kind == "standard" else kind},
        },
        "country": country,
        "created": call.store.now(PLATFORM),
        "default_currency": "usd",
        "details_submitted": onboarded,
        "email": email,
        "external_accounts": {"object": "list", "data": [], "has_more": False, "url": ""},
        "future_requirements": _requirements([]),
        "livemode": False,
        "metadata": {},
        "payouts_enabled": onboarded,
        "requirements": _requirements([] if onboarded else ONBOARDING_DUE),
        "settings": {"dashboard": {"display_name": None, "timezone": "Etc/UTC"}},
        "tos_acceptance": {"date": None},
        "type": kind,
    }
    account["external_accounts"]["url"] = f"/v1/accounts/{account['id']}/external_accounts"
    return call.store.add(PLATFORM, account)


def _platform_only(call: Call) -> None:
    if call.account != PLATFORM:
        raise StripeApiError(
            403,
            "Only the platform can manage connected accounts.",
        )


def create_account(call: Call) -> Obj:
    _platform_only(call)
    params = call.params
    kind = params.choice("type", ("express", "standard", "custom")) or "standard"
    account = new_account(call, kind, params.text("email"), params.text("country") or "US", False)
    account["metadata"] = params.metadata()
    return account


def retrieve_account(call: Call) -> Obj:
    _platform_only(call)
    return call.store.get(PLATFORM, "account", call.path["id"])


def own_account(call: Call) -> Obj:
    """`GET /v1/account`: the account the request acts for."""
    if call.account == PLATFORM:
        return {"id": "acct_standin_platform", "object": "account", "type": "standard",
                "charges_enabled": True, "payouts_enabled": True, "details_submitted": True,
                "country": "US", "default_currency": "usd", "email": None, "metadata": {}}  # fmt: skip
    return call.store.get(PLATFORM, "account", call.account)


def update_account(call: Call) -> Obj:
    account = retrieve_account(call)
    before = snapshot(account)
    if call.params.has("email"):
        account["email"] = call.params.text("email") or None
    account["metadata"] = call.params.metadata(account["metadata"])
    profile = call.params.sub("business_profile")
    if profile is not None:
        for key in ("name", "url", "support_email", "mcc"):
            if profile.has(key):
                account["business_profile"][key] = profile.text(key) or None
    _account_updated(call, account, before)
    return account


def _account_updated(call: Call, account: Obj, before: Obj) -> None:
    call.store.emit_update(account["id"], "account.updated", account, before)


def delete_account(call: Call) -> Obj:
    account = retrieve_account(call)
    call.store.remove(account["id"])
    return {"id": account["id"], "object": "account", "deleted": True}


def list_accounts(call: Call) -> Obj:
    _platform_only(call)
    return page(call.store.all(PLATFORM, "account"), call.params, "/v1/accounts")


def create_account_link(call: Call) -> Obj:
    _platform_only(call)
    params = call.params
    account = call.store.get(PLATFORM, "account", params.required("account"), "account")
    params.choice("type", ("account_onboarding", "account_update"), required=True)
    return_url = params.required("return_url")
    refresh_url = params.text("refresh_url") or return_url
    token = new_id("", 32)
    call.store.links[token] = {
        "account": account["id"],
        "return_url": return_url,
        "refresh_url": refresh_url,
    }
    now = call.store.now(PLATFORM)
    return {
        "object": "account_link",
        "created": now,
        "expires_at": now + 300,
        "url": f"{call.settings.public_url}/_standin/connect/onboarding/{token}",
    }


def onboard(call: Call, account: Obj) -> Obj:
    """What finishing Stripe's onboarding does: charges and payouts enabled, nothing due."""
    before = snapshot(account)
    account.update(
        charges_enabled=True,
        payouts_enabled=True,
        details_submitted=True,
        capabilities={"card_payments": "active", "transfers": "active"},
        requirements=_requirements([]),
    )
    _account_updated(call, account, before)
    return account


def onboard_control(call: Call) -> Obj:
    """Control: `POST /_standin/accounts/{id}/onboard` finishes onboarding at once."""
    return onboard(call, call.store.get(PLATFORM, "account", call.path["id"]))


def _link(call: Call) -> Obj:
    link = call.store.links.get(call.path["token"])
    if link is None:
        raise StripeApiError(
            404, "This account link has expired or does not exist.", code="resource_missing"
        )
    return link


def onboarding_page(call: Call) -> Response:
    link = _link(call)
    return HTMLResponse(
        "<!doctype html><title>Stripe stand-in onboarding</title>"
        f"<h1>Onboard {html.escape(link['account'])}</h1>"
        f'<form method="post"><button>Submit the details</button></form>'
    )


def onboarding_submit(call: Call) -> Response:
    link = call.store.links.pop(call.path["token"], None)
    if link is None:
        raise StripeApiError(
            404, "This account link has expired or does not exist.", code="resource_missing"
        )
    onboard(call, call.store.get(PLATFORM, "account", link["account"]))
    return RedirectResponse(link["return_url"], status_code=303)


def _oauth_error(code: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": code, "error_description": description}, status_code=status)


def authorize_page(call: Call) -> Response:
    """connect.stripe.com's authorize page: `Connect` makes (or, with `stripe_user[email]`
    of a known account, picks) a Standard account and returns a code to `redirect_uri`."""
    params = call.params
    if params.text("client_id") != call.settings.client_id:
        return _oauth_error("invalid_client", f"No such application: '{params.text('client_id')}'")
    if params.text("response_type") not in (None, "code"):
        return _oauth_error("unsupported_response_type", "Only response_type=code is supported.")
    query = html.escape(urlencode({k: v for k, v in params.data.items() if isinstance(v, str)}))
    return HTMLResponse(
        "<!doctype html><title>Stripe stand-in Connect</title><h1>Connect to the platform</h1>"
        f'<form method="post" action="/_standin/oauth/authorize?{query}">'
        "<button>Connect my Stripe account</button></form>"
    )


def authorize_submit(call: Call) -> Response:
    params = call.params
    redirect = params.text("redirect_uri")
    if redirect is None:
        return _oauth_error("invalid_request", "No redirect_uri was given.")
    code = issue_code(call)
    query = {"code": code, "scope": params.text("scope") or "read_write"}
    if params.text("state") is not None:
        query["state"] = params.required("state")
    separator = "&" if "?" in redirect else "?"
    return RedirectResponse(f"{redirect}{separator}{urlencode(query)}", status_code=303)


def issue_code(call: Call) -> str:
    account = new_account(call, "standard", None, "US", True)
    code = new_id("ac_", 32)
    call.store.oauth_codes[code] = account["id"]
    return code


def code_control(call: Call) -> Obj:
    """Control: `POST /_standin/oauth/codes` makes an onboarded Standard account and an
    authorization code for it, as a seller clicking Connect would."""
    code = issue_code(call)
    return {"code": code, "stripe_user_id": call.store.oauth_codes[code]}


def oauth_token(call: Call) -> Response:
    params = call.params
    grant = params.text("grant_type")
    if grant == "authorization_code":
        code = params.text("code") or ""
        account_id = call.store.oauth_codes.pop(code, None)
        if account_id is None:
            return _oauth_error("invalid_grant", f"Authorization code does not exist: {code}")
    elif grant == "refresh_token":
        refresh = params.text("refresh_token") or ""
        account_id = call.store.refresh_tokens.get(refresh)
        if account_id is None or account_id in call.store.revoked:
            return _oauth_error("invalid_grant", f"Invalid refresh token: {refresh}")
    else:
        return _oauth_error("unsupported_grant_type", f"Unsupported grant type: {grant}")
    access, refresh = new_id("sk_test_", 40), new_id("rt_", 40)
    call.store.access_tokens[access] = account_id
    call.store.refresh_tokens[refresh] = account_id
    call.store.connected.add(account_id)
    call.store.revoked.discard(account_id)
    return JSONResponse(
        {
            "access_token": access,
            "livemode": False,
            "refresh_token": refresh,
            "scope": params.text("scope") or "read_write",
            "stripe_publishable_key": new_id("pk_test_", 40),
            "stripe_user_id": account_id,
            "token_type": "bearer",
        }
    )


def oauth_deauthorize(call: Call) -> Response:
    params = call.params
    if params.text("client_id") != call.settings.client_id:
        return _oauth_error("invalid_client", f"No such application: '{params.text('client_id')}'")
    account_id = params.text("stripe_user_id") or ""
    if account_id not in call.store.connected:
        return _oauth_error(
            "invalid_client",
            f"This application is not connected to stripe account {account_id}, or that account does not exist.",
        )
    call.store.connected.discard(account_id)
    application = {
        "id": call.settings.client_id,
        "object": "application",
        "name": "Tessera (stand-in)",
    }
    call.store.emit(account_id, "account.application.deauthorized", application)
    call.store.revoked.add(account_id)
    return JSONResponse({"stripe_user_id": account_id})


ACCOUNT_FIELDS = ("type", "country", "email", "business_type", "capabilities", "metadata",
                  "controller", "business_profile", "settings", "tos_acceptance")  # fmt: skip

ENDPOINTS = [
    Endpoint("POST", "/v1/accounts", create_account, ACCOUNT_FIELDS),
    Endpoint("GET", "/v1/accounts", list_accounts, ("created",)),
    Endpoint("GET", "/v1/accounts/{id}", retrieve_account),
    Endpoint("POST", "/v1/accounts/{id}", update_account, ("email", "metadata", "business_profile", "settings")),
    Endpoint("DELETE", "/v1/accounts/{id}", delete_account),
    Endpoint("GET", "/v1/account", own_account),
    Endpoint("POST", "/v1/account_links", create_account_link, ("account", "type", "return_url", "refresh_url", "collect", "collection_options")),
    Endpoint("POST", "/oauth/token", oauth_token, ("grant_type", "code", "refresh_token", "scope", "assert_capabilities")),
    Endpoint("POST", "/oauth/deauthorize", oauth_deauthorize, ("client_id", "stripe_user_id")),
    Endpoint("GET", "/oauth/authorize", authorize_page, api=False),
    Endpoint("GET", "/express/oauth/authorize", authorize_page, api=False),
    Endpoint("POST", "/_standin/oauth/authorize", authorize_submit, api=False),
    Endpoint("POST", "/_standin/oauth/codes", code_control, api=False),
    Endpoint("POST", "/_standin/accounts/{id}/onboard", onboard_control, api=False),
    Endpoint("GET", "/_standin/connect/onboarding/{token}", onboarding_page, api=False),
    Endpoint("POST", "/_standin/connect/onboarding/{token}", onboarding_submit, api=False),
]  # fmt: skip
