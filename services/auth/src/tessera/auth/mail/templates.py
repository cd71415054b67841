"""The mails auth sends, each as a plain-text and an HTML part."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _html(paragraphs: list[str], button: tuple[str, str] | None = None) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    if button is not None:
        label, url = button
        body += (
            f'<p><a href="{escape(url)}" style="display:inline-block;padding:10px 18px;'
            f'background:#1f4fd1;color:#fff;text-decoration:none;border-radius:4px">'
            f"{escape(label)}</a></p>"
        )
    return f'<!doctype html><html><body style="font-family:sans-serif">{body}</body></html>'


def sign_in(product: str, link: str, code: str, minutes: int, *, welcome: bool) -> Rendered:
    intro = (
        f"Welcome to {product}! Your account is ready."
        if welcome
        else f"Here is your sign-in link for {product}."
    )
    text = (
        f"{intro}\n\n"
        f"Sign in: {link}\n\n"
        f"Or, on another device, enter this code: {code}\n\n"
        f"The link and the code work once, within {minutes} minutes. "
        "If you did not ask to sign in, ignore this mail."
    )
    html = _html(
        [
            escape(intro),
            f"Or, on another device, enter this code: <strong>{escape(code)}</strong>",
            f"The link and the code work once, within {minutes} minutes. "
            "If you did not ask to sign in, ignore this mail.",
        ],
        button=("Sign in", link),
    )
    subject = f"Welcome to {product}" if welcome else f"Sign in to {product}"
    return Rendered(subject=f"{subject} (code {code})", text=text, html=html)


def new_device(product: str, sessions_url: str, ip: str, device: str) -> Rendered:
    line = f"Someone signed in to your {product} account from a new device ({device or 'unknown device'}, IP {ip})."
    advice = "If this was you, there is nothing to do. If not, sign out that session and every other one here:"
    text = f"{line}\n\n{advice} {sessions_url}\n"
    html = _html([escape(line), escape(advice)], button=("Review sessions", sessions_url))
    return Rendered(subject=f"New sign-in to {product}: was this you?", text=text, html=html)


def seller_sign_up(product: str, seller: str, link: str, code: str, minutes: int) -> Rendered:
    intro = f"Confirm your address to create the seller {seller} on {product}."
    text = (
        f"{intro}\n\n"
        f"Confirm: {link}\n\n"
        f"Or, on another device, enter this code: {code}\n\n"
        f"The link and the code work once, within {minutes} minutes. "
        "If you did not ask for this, ignore this mail."
    )
    html = _html(
        [
            escape(intro),
            f"Or, on another device, enter this code: <strong>{escape(code)}</strong>",
            f"The link and the code work once, within {minutes} minutes. "
            "If you did not ask for this, ignore this mail.",
        ],
        button=("Create the seller", link),
    )
    return Rendered(subject=f"Create {seller} on {product} (code {code})", text=text, html=html)


def seller_invite(product: str, seller: str, role: str, link: str, days: int) -> Rendered:
    intro = f"You are invited to join the seller {seller} on {product} as {role}."
    text = (
        f"{intro}\n\nJoin: {link}\n\n"
        f"The link works once, within {days} days. If you did not expect this, ignore this mail."
    )
    html = _html(
        [escape(intro), f"The link works once, within {days} days."], button=("Join", link)
    )
    return Rendered(subject=f"Join {seller} on {product}", text=text, html=html)


def webhook_endpoint_disabled(
    product: str,
    seller: str,
    endpoint_id: str,
    url: str,
    description: str,
    mode: str,
    days: int,
) -> Rendered:
    named = f"{url} ({description})" if description else url
    intro = (
        f"A webhook endpoint of {seller} on {product} was turned off: every delivery to it "
        f"has failed for {days} day{'' if days == 1 else 's'}."
    )
    detail = f"Endpoint ({mode} mode): {named}"
    advice = (
        "Events that arrive while it is off are not sent to it. Once it answers again, turn "
        f"it back on (PATCH /v1/webhook-endpoints/{endpoint_id} with enabled: true): what "
        "was queued "
        "before goes out, and a replay since a time recovers the rest."
    )
    text = f"{intro}\n\n{detail}\n\n{advice}\n"
    html = _html([escape(intro), escape(detail), escape(advice)])
    return Rendered(subject=f"{seller}: a webhook endpoint was turned off", text=text, html=html)
