"""The admin portal over real HTTP against real auth, billing and licensing: search, the
account page, confirmed actions landing in the owning service, webhooks, revenue, CSV."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tessera.devstack.pins import root_pins
from tessera.licensing_client.client import LicensingClient
from tessera.licensing_client.store import LeaseStore

ADMIN = "operator@example.com"
KEY = re.compile(r'<code class="key" id="key-[^"]+">([0-9A-Z\-]{29})</code>')


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, html[:2000]
    return found.group(1)


def new_email() -> str:
    return f"buyer-{secrets.token_hex(4)}@example.com"


async def buyer(stack: Any, email: str | None = None) -> tuple[httpx.AsyncClient, str]:
    email = email or new_email()
    await stack.buy(email)
    client = stack.browser()
    await stack.land(client, await stack.welcome_link(email))
    return client, email


async def confirm_and_do(client: httpx.AsyncClient, href: str, **fields: str) -> httpx.Response:
    """Open a confirmation page, then press its button (with a reason where asked)."""
    page = await client.get(href.replace("&amp;", "&"))
    assert page.status_code == 200, page.text
    action = re.search(r'<form method="post" action="(/admin/actions/[a-z\-]+)"', page.text)
    assert action, page.text
    hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', page.text))
    return await client.post(action.group(1), data={**hidden, **fields})


async def account_page(admin: httpx.AsyncClient, email: str) -> tuple[str, str]:
    found = await admin.get("/admin", params={"q": email})
    assert found.status_code == 200
    link = re.search(r'href="(/admin/accounts/[0-9a-f\-]{36})">' + re.escape(email), found.text)
    assert link, found.text
    page = await admin.get(link.group(1))
    assert page.status_code == 200, page.text
    return link.group(1), page.text


async def test_an_admin_suspends_a_license_and_the_desktop_hears_suspended(
    stack: Any, tmp_path: Path
) -> None:
    customer, email = await buyer(stack)
    admin, _ = await buyer(stack, ADMIN)
    key_match = KEY.search(await stack.licenses(customer))
    assert key_match
    key = key_match.group(1)
    async with LicensingClient(
        stack.licensing_url,
        LeaseStore(tmp_path / "l.json"),
        roots=await root_pins(stack.licensing_url),
    ) as desktop:
        await desktop.public_keys()
        assert (
            await desktop.activate("fp-suspend-0001", key=key, machine_name="PC")
        ).code == "VALID"
        path, page = await account_page(admin, email)
        assert key in page and "149.00 USD" in page and "PC (?, last heartbeat" in page
        suspend = re.search(r'href="(/admin/confirm\?action=suspend[^"]+)"', page)
        assert suspend
        done = await confirm_and_do(admin, suspend.group(1), reason="chargeback investigation")
        assert done.status_code == 303 and done.headers["location"] == f"{path}?done=suspend"
        assert (await desktop.validate(key, "fp-suspend-0001")).code == "SUSPENDED"
        mine = await customer.get("/licenses")
        assert "status-suspended" in mine.text and "This license is suspended" in mine.text
        page = (await admin.get(path)).text
        assert "license.suspended" in page and "chargeback investigation" in page
        reinstate = re.search(r'href="(/admin/confirm\?action=reinstate[^"]+)"', page)
        assert reinstate
        await confirm_and_do(admin, reinstate.group(1), reason="resolved")
        assert (await desktop.validate(key, "fp-suspend-0001")).code == "VALID"


async def test_search_finds_an_account_by_license_key_and_order_id(stack: Any) -> None:
    customer, email = await buyer(stack)
    admin, _ = await buyer(stack, ADMIN)
    key_match = KEY.search(await stack.licenses(customer))
    assert key_match
    by_key = await admin.get("/admin", params={"q": key_match.group(1)})
    assert email in by_key.text and "found by license key" in by_key.text
    _, page = await account_page(admin, email)
    order_id = re.search(r'<code class="muted">([0-9a-f\-]{36})</code>', page)
    assert order_id
    by_order = await admin.get("/admin", params={"q": order_id.group(1)})
    assert email in by_order.text
    nothing = await admin.get("/admin", params={"q": "nobody-here@example.com"})
    assert "No account matches" in nothing.text
    hostile = await admin.get("/admin", params={"q": "<script>alert(1)</script>"})
    assert hostile.status_code == 200
    assert "<script>alert" not in hostile.text and "&lt;script&gt;alert(1)" in hostile.text


async def test_grant_seed_resend_and_disable_go_through_the_owning_services(
    stack: Any,
) -> None:
    customer, email = await buyer(stack)
    admin, _ = await buyer(stack, ADMIN)
    path, page = await account_page(admin, email)
    grant = re.search(r'href="(/admin/confirm\?action=grant[^"]+)"', page)
    assert grant
    done = await confirm_and_do(
        admin, grant.group(1), email=email, policy="chartgpt-lifetime", reason="press copy"
    )
    assert done.status_code == 303
    page = (await admin.get(path)).text
    assert "complimentary" in page and page.count("status-active") == 2
    # an unknown policy is refused by licensing, and the page says so
    refused = await confirm_and_do(admin, grant.group(1), email=email, policy="no-such", reason="x")
    assert refused.status_code == 409 and "licensing service refused" in refused.text
    # resend: a new sign-in mail reaches the customer
    resend = re.search(r'href="(/admin/confirm\?action=resend-link[^"]+)"', page)
    assert resend
    assert (await confirm_and_do(admin, resend.group(1))).status_code == 303
    await stack.mailbox.wait_for(email, "Sign in to")
    # disable: the customer's session ends at the next page
    disable = re.search(r'href="(/admin/confirm\?action=disable-user[^"]+)"', page)
    assert disable
    assert (await confirm_and_do(admin, disable.group(1), reason="abuse")).status_code == 303
    gone = await customer.get("/licenses")
    assert gone.status_code == 303 and gone.headers["location"] == "/sign-in?next=%2Flicenses"
    page = (await admin.get(path)).text
    assert "user.disabled" in page and "Enable user" in page
    # seed: a new account with a complimentary order
    seeded_email = new_email()
    seed = await confirm_and_do(
        admin,
        "/admin/confirm?action=seed",
        email=seeded_email,
        sku="chartgpt-lifetime",
        reason="reviewer",
    )
    assert seed.status_code == 303
    location = seed.headers["location"]
    assert location.startswith("/admin/accounts/") and location.endswith("?done=seed")
    await stack.mailbox.wait_for(seeded_email, "Welcome to")


async def test_webhook_events_replay_revenue_chart_and_csv_exports(stack: Any) -> None:
    _, email = await buyer(stack)
    admin, _ = await buyer(stack, ADMIN)
    events = await admin.get("/admin/webhooks")
    assert events.status_code == 200 and "checkout.session.completed" in events.text
    replay = re.search(r'href="(/admin/confirm\?action=replay[^"]+)"', events.text)
    assert replay
    done = await confirm_and_do(admin, replay.group(1))
    assert done.status_code == 303
    query = parse_qs(urlsplit(done.headers["location"]).query)
    assert query["replayed"][0].startswith("evt_") and query["outcome"]
    after = await admin.get(done.headers["location"])
    assert "Replayed" in after.text
    filtered = await admin.get("/admin/webhooks", params={"status": "failed"})
    assert "No events." in filtered.text
    revenue = await admin.get("/admin/revenue")
    assert revenue.status_code == 200
    assert '<svg class="chart"' in revenue.text and '<rect class="bar"' in revenue.text
    assert "298.00 USD" in revenue.text  # two purchases at 149.00
    assert "style=" not in revenue.text and "<script>" not in revenue.text
    for name, expected in (("orders.csv", email), ("accounts.csv", email), ("licenses.csv", email)):
        csv = await admin.get(f"/admin/exports/{name}")
        assert csv.status_code == 200, name
        assert csv.headers["content-type"].startswith("text/csv")
        assert expected in csv.text
    assert (await admin.get("/admin/exports/secrets.csv")).status_code == 404


async def test_an_admin_action_without_csrf_or_confirmation_fields_changes_nothing(
    stack: Any, tmp_path: Path
) -> None:
    customer, email = await buyer(stack)
    admin, _ = await buyer(stack, ADMIN)
    path, page = await account_page(admin, email)
    license_id = re.search(r"license_id=([0-9a-f\-]{36})", page)
    assert license_id
    forged = await admin.post(
        "/admin/actions/revoke", data={"license_id": license_id.group(1), "reason": "forged"}
    )
    assert forged.status_code == 403
    no_reason = await admin.post(
        "/admin/actions/revoke",
        data={"license_id": license_id.group(1), "csrf": csrf_of(page), "account_id": path[16:]},
    )
    assert no_reason.status_code == 400
    bad_id = await admin.post(
        "/admin/actions/revoke",
        data={"license_id": "not-a-uuid", "csrf": csrf_of(page), "reason": "x"},
    )
    assert bad_id.status_code == 400
    assert "status-active" in (await customer.get("/licenses")).text
    # a customer posting to an admin action (with their own valid token) gets the 404
    mine = await customer.get("/licenses")
    tried = await customer.post(
        "/admin/actions/revoke",
        data={"license_id": license_id.group(1), "csrf": csrf_of(mine.text), "reason": "x"},
    )
    assert tried.status_code == 404
    assert "status-active" in (await customer.get("/licenses")).text


async def test_the_confirmation_page_names_its_target_from_the_ids_alone(stack: Any) -> None:
    customer, email = await buyer(stack)
    other, other_email = await buyer(stack)
    admin, _ = await buyer(stack, ADMIN)
    key_match = KEY.search(await stack.licenses(customer))
    other_key = KEY.search(await stack.licenses(other))
    assert key_match and other_key
    path, page = await account_page(admin, email)
    revoke = re.search(r'href="(/admin/confirm\?action=revoke[^"]+)"', page)
    assert revoke
    href = revoke.group(1).replace("&amp;", "&")
    crafted = await admin.get(href + "&label=ATTACKER-CHOSEN+TEXT")
    assert crafted.status_code == 200
    assert "ATTACKER-CHOSEN" not in crafted.text
    target = re.search(r'<strong id="target">([^<]+)</strong>', crafted.text)
    assert target and key_match.group(1) in target.group(1) and email in target.group(1)
    # another customer's license under this account's id: refused, not described
    _, other_page = await account_page(admin, other_email)
    other_license = re.search(r"license_id=([0-9a-f\-]{36})", other_page)
    assert other_license
    mixed = await admin.get(
        "/admin/confirm",
        params={"action": "revoke", "account_id": path[16:], "license_id": other_license.group(1)},
    )
    assert mixed.status_code == 404 and other_key.group(1) not in mixed.text
    # an email in the URL is not shown either: the resend page names the account's own
    resend = await admin.get(
        "/admin/confirm",
        params={"action": "resend-link", "account_id": path[16:], "email": "evil@example.net"},
    )
    assert resend.status_code == 200 and "evil@example.net" not in resend.text
    assert f'name="email" value="{email}"' in resend.text


async def test_every_destructive_action_needs_a_reason_and_disabling_keeps_it(
    stack: Any,
) -> None:
    customer, email = await buyer(stack)
    admin, _ = await buyer(stack, ADMIN)
    path, page = await account_page(admin, email)
    disable = re.search(r'href="(/admin/confirm\?action=disable-user[^"]+)"', page)
    assert disable
    form = await admin.get(disable.group(1).replace("&amp;", "&"))
    assert '<textarea id="reason" name="reason" required' in form.text
    for reason in ("", "   "):
        refused = await confirm_and_do(admin, disable.group(1), reason=reason)
        assert refused.status_code == 400 and "A reason is required" in refused.text
    assert (await customer.get("/licenses")).status_code == 200  # still signed in
    page = (await admin.get(path)).text
    assert "Disable user" in page and "user.disabled" not in page
    done = await confirm_and_do(admin, disable.group(1), reason="card testing from this account")
    assert done.status_code == 303
    page = (await admin.get(path)).text
    assert "user.disabled" in page and "card testing from this account" in page
    license_id = re.search(r"license_id=([0-9a-f\-]{36})", page)
    assert license_id
    for verb in ("suspend", "revoke", "reset-activations"):
        bare = await admin.post(
            f"/admin/actions/{verb}",
            data={"license_id": license_id.group(1), "csrf": csrf_of(page), "reason": " "},
        )
        assert bare.status_code == 400, verb
    assert "status-active" in (await admin.get(path)).text


async def test_admin_paths_answer_404_to_anyone_but_an_admin_before_any_csrf_check(
    stack: Any,
) -> None:
    customer, _ = await buyer(stack)
    anonymous = stack.browser()
    probes = (
        ("GET", "/admin"),
        ("GET", "/admin/confirm?action=revoke"),
        ("GET", "/admin/revenue"),
        ("POST", "/admin/actions/revoke"),
        ("POST", "/admin/actions/no-such-action"),
        ("POST", "/admin"),  # a path served only for GET: not a 405 either
        ("POST", "/admin/webhooks"),
    )
    for who, client in (("anonymous", anonymous), ("customer", customer)):
        for method, url in probes:
            answer = await client.request(method, url, data={"reason": "x"})
            assert answer.status_code == 404, (who, method, url, answer.status_code)
            assert "expired" not in answer.text and "Not allowed" not in answer.text
            assert "Page not found" in answer.text


async def test_admin_paths_answer_404_before_parsing_a_malformed_body(stack: Any) -> None:
    # FastAPI parses a form before the route's dependencies (the role check among them) run:
    # a body that does not parse must not get its 400 where an unknown path gets a 404.
    customer, _ = await buyer(stack)
    anonymous = stack.browser()
    bodies = (
        ("multipart/form-data", b"no boundary at all"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: broken\r\n\r\n"),
        ("multipart/form-data; boundary=x", b"--x\r\nno headers, no end"),
    )
    for who, client in (("anonymous", anonymous), ("customer", customer)):
        for url in ("/admin/actions/suspend", "/admin/actions/disable", "/admin/webhooks"):
            for content_type, body in bodies:
                answer = await client.post(
                    url, content=body, headers={"content-type": content_type}
                )
                assert answer.status_code == 404, (who, url, content_type, answer.status_code)
                assert "Page not found" in answer.text and "refused" not in answer.text
    # The same broken body where the role is not asked still gets its own 400.
    outside = await anonymous.post(
        "/sign-in", content=bodies[0][1], headers={"content-type": bodies[0][0]}
    )
    assert outside.status_code == 400


async def test_a_suspended_license_downloads_nothing(stack: Any) -> None:
    customer, email = await buyer(stack)
    admin, _ = await buyer(stack, ADMIN)
    await stack.licenses(customer)
    assert (await customer.get("/downloads/chartgpt")).status_code == 200
    _, page = await account_page(admin, email)
    suspend = re.search(r'href="(/admin/confirm\?action=suspend[^"]+)"', page)
    assert suspend
    assert (await confirm_and_do(admin, suspend.group(1), reason="fraud")).status_code == 303
    assert (await customer.get("/downloads/chartgpt")).status_code == 404
    listing = await customer.get("/downloads")
    assert "Downloads are for holders of an active license" in listing.text
    assert 'href="/downloads/chartgpt"' not in listing.text


async def test_the_revenue_page_takes_only_dates(stack: Any) -> None:
    admin, _ = await buyer(stack, ADMIN)
    for value in ("0", "0.5", "1700000000", "2026-01-31T00:00:00Z", "0001-01-05", "9999-12-31"):
        page = await admin.get("/admin/revenue", params={"end": value})
        assert page.status_code == 400, (value, page.text[:300])
        assert "1969" not in page.text and "1970" not in page.text
    good = await admin.get("/admin/revenue", params={"start": "2026-01-01", "end": "2026-01-31"})
    assert good.status_code == 200 and "No orders in this period." in good.text
