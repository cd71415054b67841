"""A customer's journey over HTTP, as a browser, the mail reader and the desktop app make it:
buy on the test checkout, read the welcome mail in the dev inbox, sign in with its link,
see the license, activate a machine and validate. `./dev up --smoke` runs it against the
stack it started (CI does, on the embedded servers), and the journey test reuses its
browser and inbox."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx

SKU = "chartgpt-lifetime"
LINK = re.compile(r"http://\S+/sign-in/link\?token=[A-Za-z0-9_\-]+")
T = TypeVar("T")


class JourneyFailed(AssertionError):
    """A step of the journey did not go as a customer's would."""


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[str] = field(default_factory=list)


class Forms(HTMLParser):
    """The forms of a page: action, method, the values of their inputs, their buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "button" and self.forms:
            self._button = []

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            self.forms[-1].buttons.append(" ".join("".join(self._button).split()))
            self._button = None


class Browser:
    """A browser without JavaScript: keeps cookies, follows redirects, submits forms."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, follow_redirects=True, timeout=20)

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()

    async def get(self, url: str) -> httpx.Response:
        page = await self.http.get(url)
        if page.status_code != 200:
            raise JourneyFailed(f"GET {url}: {page.status_code} {page.text[:500]}")
        return page

    async def submit(self, page: httpx.Response, button: str, **values: str) -> httpx.Response:
        """Fill in `values` and press the button whose label starts with `button`."""
        parser = Forms()
        parser.feed(page.text)
        form = next((f for f in parser.forms if any(b.startswith(button) for b in f.buttons)), None)
        if form is None:
            raise JourneyFailed(f"no {button!r} button on {page.url}")
        target = urljoin(str(page.url), form.action)
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(target))
        answer = await self.http.request(
            form.method.upper(), target, data={**form.fields, **values}, headers={"origin": origin}
        )
        if answer.status_code != 200:
            raise JourneyFailed(f"{button}: {answer.status_code} {answer.text[:500]}")
        return answer

    def cookie(self, name: str) -> str:
        value = self.http.cookies.get(name)
        if not value:
            raise JourneyFailed(f"no {name} cookie")
        return str(value)


class Inbox:
    """The dev mail catcher's Mailpit-compatible API."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    async def text(self, to: str, subject: str) -> str | None:
        """The newest mail to `to` whose subject starts with `subject`, if one has come."""
        async with httpx.AsyncClient(base_url=self.api_url, timeout=5) as http:
            listing = (await http.get("/api/v1/messages")).json()["messages"]
            found = [
                m
                for m in listing
                if m["Subject"].startswith(subject) and any(a["Address"] == to for a in m["To"])
            ]
            if not found:
                return None
            return str((await http.get(f"/api/v1/message/{found[0]['ID']}")).json()["Text"])


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float) -> T:
    """The first truthy answer of `probe`, polled until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise JourneyFailed(f"{what}: nothing within {timeout:.0f} s")
        await asyncio.sleep(0.25)


async def access_token(auth_url: str, session_id: str) -> str:
    """What the portal does for each call: exchange its session for an access token."""
    async with httpx.AsyncClient(base_url=auth_url, timeout=10) as auth:
        answer = await auth.post("/v1/sessions/token", json={"session_id": session_id})
    if answer.status_code != 200:
        raise JourneyFailed(f"session exchange: {answer.status_code} {answer.text[:500]}")
    return str(answer.json()["access_token"])


async def me(url: str, path: str, token: str) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        answer = await http.get(path, headers={"authorization": f"Bearer {token}"})
    if answer.status_code != 200:
        raise JourneyFailed(f"GET {path}: {answer.status_code} {answer.text[:500]}")
    return answer.json()


async def journey(url: dict[str, str], mail_url: str, say: Callable[[str], None]) -> None:
    """Buy → welcome mail → sign in with its link → the license → activate → validate.
    `url` maps billing, portal-web, auth and licensing to their base URLs."""
    email = f"smoke-{secrets.token_hex(4)}@example.com"
    fingerprint = f"smoke-machine-{secrets.token_hex(8)}"
    inbox = Inbox(mail_url)
    async with Browser(url["billing"]) as shop, Browser(url["portal-web"]) as portal:
        checkout = await shop.get(f"/buy/{SKU}")
        paid = await shop.submit(checkout, "Pay", email=email)

        async def received() -> bool:
            # Stripe (and the stand-in `./dev up` runs) sends its events after the redirect:
            # the success page says "Confirming" until billing has them, as a browser sees.
            page = await shop.http.get(paid.url)
            return page.status_code == 200 and "Payment received" in page.text

        if "Payment received" not in paid.text:
            await eventually(received, f"the payment confirmed on {paid.url}", 30)
        say(f"bought {SKU} as {email}")

        welcome = await eventually(lambda: inbox.text(email, "Welcome to"), "welcome mail", 60)
        link = LINK.search(welcome)
        if link is None:
            raise JourneyFailed(f"no sign-in link in the welcome mail: {welcome[:500]}")
        say("welcome mail in the dev inbox")

        landing = await portal.get(link.group(0))
        signed_in = await portal.submit(landing, "Sign in")
        if urlsplit(str(signed_in.url)).path != "/licenses":
            raise JourneyFailed(f"sign-in ended on {signed_in.url}: {signed_in.text[:500]}")
        token = await access_token(url["auth"], portal.cookie("tessera_session"))
        say("signed in with the link")

        async def licenses() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = await me(url["licensing"], "/v1/me/licenses", token)
            return found

        [license_] = await eventually(licenses, "the license", 60)

    async with httpx.AsyncClient(base_url=url["licensing"], timeout=10) as desktop:
        machine = {"key": license_["key"], "fingerprint": fingerprint}
        activated = await desktop.post("/v1/licenses/activate", json=machine)
        if activated.status_code != 200 or activated.json().get("code") != "VALID":
            raise JourneyFailed(f"activate: {activated.status_code} {activated.text[:500]}")
        validated = await desktop.post("/v1/licenses/validate", json=machine)
        if validated.status_code != 200 or validated.json().get("code") != "VALID":
            raise JourneyFailed(f"validate: {validated.status_code} {validated.text[:500]}")
    say("activated a machine; validate answers VALID")
