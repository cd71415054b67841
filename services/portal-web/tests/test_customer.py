"""The customer portal over real HTTP, without JavaScript, against real auth, billing and
licensing: sign-in, the dashboard, machines, orders, sessions, device approval, CSRF."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from pathlib import Path
from typing import Any

import httpx

from tessera.devstack.pins import root_pins
from tessera.licensing_client.client import LicensingClient
from tessera.licensing_client.store import LeaseStore


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, html[:2000]
    return found.group(1)


def new_email() -> str:
    return f"buyer-{secrets.token_hex(4)}@example.com"


LINK = re.compile(r"/sign-in/link\?token=([A-Za-z0-9_\-]+)")
KEY = re.compile(r'<code class="key" id="key-[^"]+">([0-9A-Z\-]{29})</code>')


async def signed_in_buyer(stack: Any) -> tuple[httpx.AsyncClient, str]:
    email = new_email()
    await stack.buy(email)
    client = stack.browser()
    link = await stack.welcome_link(email)
    await stack.land(client, link)
    return client, email


async def test_the_email_form_answers_the_same_for_known_and_unknown_addresses(stack: Any) -> None:
    client = stack.browser()
    form = await client.get("/sign-in")
    assert form.status_code == 200
    assert "default-src 'none'" in form.headers["content-security-policy"]
    assert "script-src 'self'" in form.headers["content-security-policy"]
    assert "unsafe-inline" not in form.headers["content-security-policy"]
    cookie = form.headers["set-cookie"]
    assert "tessera_browser=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    answers = []
    for email in (new_email(), "nobody-at-all@example.com"):
        answer = await client.post("/sign-in", data={"email": email, "csrf": csrf_of(form.text)})
        answers.append((answer.status_code, answer.headers["location"]))
    assert answers == [(303, "/sign-in/check-email")] * 2
    page = await client.get("/sign-in/check-email")
    assert "Check your email" in page.text


async def test_a_link_is_signed_in_only_by_the_button_not_by_a_get(stack: Any) -> None:
    email = new_email()
    await stack.buy(email)
    link = await stack.welcome_link(email)
    scanner = stack.browser()
    for _ in range(3):  # a mail scanner fetching the link, repeatedly
        landing = await scanner.get(link)
        assert landing.status_code == 200
        assert '<button type="submit">Sign in</button>' in landing.text
        assert landing.headers["referrer-policy"] == "no-referrer"
        assert "tessera_session" not in landing.headers.get("set-cookie", "")
    person = stack.browser()
    done = await stack.land(person, link)
    assert done.headers["location"] == "/licenses"
    session_cookie = [c for c in done.headers.get_list("set-cookie") if "tessera_session=" in c]
    assert (
        session_cookie and "HttpOnly" in session_cookie[0] and "SameSite=lax" in session_cookie[0]
    )
    page = await stack.licenses(person)
    assert email in page
    # single use: the same link again is the "expired" page offering a new one
    again = stack.browser()
    landing = await again.get(link)
    used = await again.post(
        "/sign-in/link", data={"token": link.split("token=")[1], "csrf": csrf_of(landing.text)}
    )
    assert used.status_code == 401
    assert "This sign-in link has expired" in used.text and 'href="/sign-in"' in used.text


async def test_a_link_opened_in_another_browser_asks_for_the_code(stack: Any) -> None:
    email = new_email()
    await stack.buy(email)
    await stack.welcome_link(email)
    asking = stack.browser()
    form = await asking.get("/sign-in")
    await asking.post("/sign-in", data={"email": email, "csrf": csrf_of(form.text)})
    text = await stack.mailbox.wait_for(email, "Sign in to")
    link = re.search(r"/sign-in/link\?token=[A-Za-z0-9_\-]+", text)
    code = re.search(r"enter this code: (\d{6})", text)
    assert link and code
    other = stack.browser()
    landing = await other.get(link.group(0))
    token = link.group(0).split("token=")[1]
    csrf = csrf_of(landing.text)
    asked = await other.post("/sign-in/link", data={"token": token, "csrf": csrf})
    assert asked.status_code == 200 and 'name="code"' in asked.text
    done = await other.post(
        "/sign-in/link", data={"token": token, "code": code.group(1), "csrf": csrf}
    )
    assert done.status_code == 303 and done.headers["location"] == "/licenses"


async def test_the_code_form_signs_in_on_another_device(stack: Any) -> None:
    email = new_email()
    await stack.buy(email)
    text = await stack.mailbox.wait_for(email, "Welcome to")
    code = re.search(r"enter this code: (\d{6})", text)
    assert code
    device = stack.browser()
    form = await device.get("/sign-in/code")
    wrong = await device.post(
        "/sign-in/code", data={"email": email, "code": "000000", "csrf": csrf_of(form.text)}
    )
    assert wrong.status_code == 401 and "did not work" in wrong.text
    done = await device.post(
        "/sign-in/code", data={"email": email, "code": code.group(1), "csrf": csrf_of(form.text)}
    )
    assert done.status_code == 303
    assert "License key" in await stack.licenses(device)


async def test_a_post_without_the_csrf_token_changes_nothing(stack: Any) -> None:
    client, _ = await signed_in_buyer(stack)
    page = await stack.licenses(client)
    forged = await client.post("/account/sessions/revoke-all", data={})
    assert forged.status_code == 403
    assert "This form has expired" in forged.text
    wrong = await client.post("/account/sessions/revoke-all", data={"csrf": "0" * 64})
    assert wrong.status_code == 403
    foreign = await client.post(
        "/account/sessions/revoke-all",
        data={"csrf": csrf_of(page)},
        headers={"origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    cross_site = await client.post(
        "/account/sessions/revoke-all",
        data={"csrf": csrf_of(page)},
        headers={"sec-fetch-site": "cross-site", "origin": "null"},
    )
    assert cross_site.status_code == 403
    # still signed in: nothing was revoked
    assert (await client.get("/licenses")).status_code == 200
    # another browser's token does not work with this browser's cookie
    stranger = stack.browser()
    other_token = csrf_of((await stranger.get("/sign-in")).text)
    assert other_token != csrf_of(page)
    assert (await client.post("/sign-out", data={"csrf": other_token})).status_code == 403


async def test_the_dashboard_shows_the_license_and_a_machine_can_be_removed(
    stack: Any, tmp_path: Path
) -> None:
    client, _ = await signed_in_buyer(stack)
    page = await stack.licenses(client)
    found = KEY.search(page)
    assert found, page
    key = found.group(1)
    assert "status-active" in page and "No machine uses this license yet" in page
    fingerprint = secrets.token_hex(16)
    async with LicensingClient(
        stack.licensing_url,
        LeaseStore(tmp_path / "lease.json"),
        roots=await root_pins(stack.licensing_url),
    ) as desktop:
        await desktop.public_keys()
        activated = await desktop.activate(
            fingerprint, key=key, machine_name="TRADING-PC", platform="windows-x64"
        )
        assert activated.code == "VALID"
        page = await stack.licenses(client)
        assert "TRADING-PC" in page and "windows-x64" in page
        assert "last heartbeat" in page  # licensing reports each machine's last heartbeat
        remove = re.search(r'action="(/licenses/[^"]+/remove)"', page)
        assert remove
        removed = await client.post(remove.group(1), data={"csrf": csrf_of(page)})
        assert (
            removed.status_code == 303
            and removed.headers["location"] == "/licenses?done=machine-removed"
        )
        after = await client.get(removed.headers["location"])
        assert "its seat is free" in after.text and "TRADING-PC" not in after.text
        assert (await desktop.validate(key, fingerprint)).code == "NOT_ACTIVATED"


async def test_orders_list_receipts_and_the_stripe_portal_is_explained_in_test_mode(
    stack: Any,
) -> None:
    client, _ = await signed_in_buyer(stack)
    orders = await client.get("/orders")
    assert orders.status_code == 200
    assert "149.00 USD" in orders.text and "/receipt" in orders.text
    portal = await client.post("/orders/billing-portal", data={"csrf": csrf_of(orders.text)})
    assert portal.status_code == 409
    assert "not available for this account" in portal.text


async def test_sessions_sign_out_and_sign_out_everywhere(stack: Any) -> None:
    email = new_email()
    await stack.buy(email)
    await stack.welcome_link(email)
    first, second = stack.browser(), stack.browser()
    await stack.sign_in(first, email, count=1)
    await stack.sign_in(second, email, count=2)
    page = await first.get("/account/sessions")
    assert page.status_code == 200 and page.text.count('/revoke"') >= 2
    everywhere = await first.post("/account/sessions/revoke-all", data={"csrf": csrf_of(page.text)})
    assert everywhere.status_code == 200 and "Signed out everywhere" in everywhere.text
    for browser in (first, second):
        gone = await browser.get("/licenses")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/sign-in")


async def test_a_signed_out_visitor_is_sent_to_sign_in_with_a_safe_next(stack: Any) -> None:
    client = stack.browser()
    answer = await client.get("/orders")
    assert answer.status_code == 303 and answer.headers["location"] == "/sign-in?next=%2Forders"
    form = await client.get("/sign-in?next=https://evil.example/")
    assert 'name="next" value=""' in form.text
    form = await client.get("/sign-in?next=//evil.example/x")
    assert 'name="next" value=""' in form.text


async def test_a_customer_gets_404_for_admin_and_cannot_touch_another_customers_machine(
    stack: Any, tmp_path: Path
) -> None:
    alice, _ = await signed_in_buyer(stack)
    bob, _ = await signed_in_buyer(stack)
    for path in ("/admin", "/admin/revenue", "/admin/webhooks", "/admin/exports/orders.csv"):
        response = await alice.get(path)
        assert response.status_code == 404, path
        assert "Page not found" in response.text
    anonymous = stack.browser()
    assert (await anonymous.get("/admin")).status_code == 404
    bob_page = await stack.licenses(bob)
    bob_key = KEY.search(bob_page)
    assert bob_key
    async with LicensingClient(
        stack.licensing_url,
        LeaseStore(tmp_path / "lease.json"),
        roots=await root_pins(stack.licensing_url),
    ) as desktop:
        await desktop.public_keys()
        await desktop.activate("bob-machine-0001", key=bob_key.group(1), machine_name="BOB-PC")
    bob_page = await stack.licenses(bob)
    remove = re.search(r'action="(/licenses/[^"]+/remove)"', bob_page)
    assert remove
    alice_page = await stack.licenses(alice)
    assert "BOB-PC" not in alice_page and bob_key.group(1) not in alice_page
    tried = await alice.post(remove.group(1), data={"csrf": csrf_of(alice_page)})
    assert tried.status_code == 303  # the same answer as a machine already gone...
    assert "BOB-PC" in await stack.licenses(bob)  # ...and Bob's machine is still there


async def test_a_refunded_license_says_why(stack: Any) -> None:
    email = new_email()
    async with httpx.AsyncClient(base_url=stack.billing_url, timeout=20) as shop:
        buy = await shop.get("/buy/chartgpt-lifetime")
        session_id = buy.headers["location"].rsplit("/", 1)[1]
        await shop.post(f"/test-checkout/{session_id}/pay", data={"email": email})
        client = stack.browser()
        await stack.land(client, await stack.welcome_link(email))
        assert "status-active" in await stack.licenses(client)
        refunded = await shop.post(f"/test-checkout/{session_id}/refund")
        assert refunded.status_code in (200, 303)
    for _ in range(100):
        page = (await client.get("/licenses")).text
        if "status-revoked" in page:
            break
        await asyncio.sleep(0.2)
    assert "This license was revoked: the order was refunded." in page
    orders = await client.get("/orders")
    assert "refunded 149.00 USD" in orders.text


async def test_approving_a_desktop_needs_a_recent_browser_sign_in(stack: Any) -> None:
    client, email = await signed_in_buyer(stack)
    async with httpx.AsyncClient(base_url=stack.auth_url) as auth_http:
        grant = (
            await auth_http.post(
                "/v1/device/authorize",
                data={"client_id": "chartgpt-desktop", "client_version": "2.0.0"},
            )
        ).json()
    # This browser signed in an hour ago (more than auth's 30 minutes for approvals).
    auth = stack.apps["auth"].state.context
    old_session = client.cookies.get("tessera_session")
    assert old_session
    key = auth.keys("sess", auth.hasher("session", old_session))
    assert await auth.redis.hset(key, "created_at", repr(time.time() - 3600)) == 0
    form = await client.get("/device")
    asked = await client.post(
        "/device", data={"user_code": grant["user_code"], "csrf": csrf_of(form.text)}
    )
    assert asked.status_code == 303
    assert asked.headers["location"] == "/sign-in?next=%2Fdevice&again=device"
    again = await client.get(asked.headers["location"])
    assert again.status_code == 200 and 'id="again"' in again.text
    assert f'value="{email}"' in again.text and 'name="next" value="/device"' in again.text
    requested = await client.post(
        "/sign-in", data={"email": email, "next": "/device", "csrf": csrf_of(again.text)}
    )
    assert requested.status_code == 303
    link = LINK.search(await stack.mailbox.wait_for(email, "Sign in to"))
    assert link
    done = await stack.land(client, link.group(0))
    assert done.headers["location"] == "/device"
    assert client.cookies.get("tessera_session") not in (None, old_session)
    # the replaced session is over at auth too
    async with httpx.AsyncClient(base_url=stack.auth_url) as auth_http:
        dead = await auth_http.post("/v1/sessions/token", json={"session_id": old_session})
    assert dead.status_code == 401
    form = await client.get("/device")
    shown = await client.post(
        "/device", data={"user_code": grant["user_code"], "csrf": csrf_of(form.text)}
    )
    assert shown.status_code == 200 and "ChartGPT for NinjaTrader" in shown.text
    approved = await client.post(
        "/device/decision",
        data={"user_code": grant["user_code"], "decision": "approve", "csrf": csrf_of(shown.text)},
    )
    assert approved.status_code == 303 and approved.headers["location"] == "/device?done=approved"
    await asyncio.sleep(grant["interval"] + 0.2)  # the desktop's first poll
    async with httpx.AsyncClient(base_url=stack.auth_url) as auth_http:
        polled = await auth_http.post(
            "/v1/device/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": grant["device_code"],
                "client_id": "chartgpt-desktop",
            },
        )
    assert polled.status_code == 200 and polled.json()["refresh_token"], polled.text


async def test_a_signed_in_person_sees_no_sign_in_with_a_code_footer(stack: Any) -> None:
    anonymous = stack.browser()
    assert "Sign in with a code" in (await anonymous.get("/sign-in")).text
    assert 'href="/sign-in/code"' in (await anonymous.get("/no-such-page")).text
    client, _ = await signed_in_buyer(stack)
    for path in ("/licenses", "/orders", "/device", "/account/sessions", "/no-such-page"):
        page = await client.get(path)
        assert "Sign in with a code" not in page.text and "/sign-in/code" not in page.text, path


async def test_customer_pages_name_products_and_plans_and_count_machines(
    stack: Any, tmp_path: Path
) -> None:
    client, _ = await signed_in_buyer(stack)
    page = await stack.licenses(client)
    text = re.sub(r"<[^>]+>", " ", page)  # what the person reads, not the markup
    assert "chartgpt-lifetime" not in text and "Entitlements" not in text
    assert re.search(r"<dt>Plan</dt><dd>ChartGPT — lifetime license</dd>", page)
    assert re.search(r'<h2 id="lic-[^"]+">ChartGPT <span', page)
    assert "<dt>Machines</dt><dd>0 of 3 machines</dd>" in page and "in use" not in page
    key = KEY.search(page)
    assert key
    async with LicensingClient(
        stack.licensing_url,
        LeaseStore(tmp_path / "lease.json"),
        roots=await root_pins(stack.licensing_url),
    ) as desktop:
        await desktop.public_keys()
        activated = await desktop.activate("fp-" + secrets.token_hex(8), key=key.group(1))
        assert activated.code == "VALID"
    page = await stack.licenses(client)
    assert "<dt>Machines</dt><dd>1 of 3 machines</dd>" in page
    orders = await client.get("/orders")
    assert orders.status_code == 200
    assert '<td data-label="Item">ChartGPT — lifetime license</td>' in orders.text
    assert "chartgpt-lifetime" not in re.sub(r"<[^>]+>", " ", orders.text)


async def test_a_license_holder_downloads_the_app_and_no_one_else_does(stack: Any) -> None:
    client, _ = await signed_in_buyer(stack)
    await stack.licenses(client)
    page = await client.get("/downloads")
    assert page.status_code == 200 and 'href="/downloads/chartgpt"' in page.text
    got = await client.get("/downloads/chartgpt")
    assert got.status_code == 200
    assert got.headers["content-disposition"].startswith("attachment;")
    assert "ChartGPT-for-NinjaTrader-dev.zip" in got.headers["content-disposition"]
    served = stack.apps["portal"].state.context.downloads_root
    assert served is not None
    assert got.content == (served / "ChartGPT-for-NinjaTrader-dev.zip").read_bytes()
    assert got.content.startswith(b"PK\x03\x04")  # a real zip archive
    # no license of that product, an unknown one, a path trick: the plain 404
    for path in ("/downloads/otherproduct", "/downloads/..%2Fsettings.py", "/downloads/CHARTGPT"):
        assert (await client.get(path)).status_code == 404, path
    # signed out: sign in first, and come back here
    anonymous = stack.browser()
    away = await anonymous.get("/downloads/chartgpt")
    assert away.status_code == 303 and away.headers["location"].startswith("/sign-in")


async def test_statuses_read_as_words_and_a_purchase_without_a_receipt_is_not_no_charge(
    stack: Any,
) -> None:
    from .test_checkout_success import new_session, signed_checkout_event

    # A paid purchase whose charge (and so its receipt URL) has not arrived from Stripe.
    session_id, intent, email = new_session()
    await signed_checkout_event(
        stack, "checkout.session.completed", session_id=session_id, email=email,
        payment_intent=intent,
    )  # fmt: skip
    client = stack.browser()
    await stack.land(client, await stack.welcome_link(email))
    page = await stack.licenses(client)
    assert re.search(r'<span class="status status-active">Active</span>', page)
    assert "· Paid" in page and "· paid" not in page
    orders = await client.get("/orders")
    assert orders.status_code == 200
    assert '<td data-label="Status">Paid</td>' in orders.text
    assert "no charge" not in orders.text and "/receipt" not in orders.text
    assert '<td data-label="Receipt"><span class="muted">—</span></td>' in orders.text
