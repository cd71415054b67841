"""The dev mail catcher: a real SMTP server (aiosmtpd) that keeps what it receives, an inbox
page, and a Mailpit-compatible JSON API, so a person running `./dev up` can click the links
auth mails, and tests can read them.

    python -m tessera.devstack.mailcatcher --smtp-port 1025 --http-port 8025

API (the subset of Mailpit's `/api/v1` that Tessera uses):
`GET /api/v1/messages` (summaries, newest first), `GET /api/v1/message/{ID}` (`latest` works;
with `Text` and `HTML` bodies), `DELETE /api/v1/messages` (all, or `{"IDs": [...]}`).
Messages live in memory only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from functools import partial
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from tessera.devstack.serving import LoopServer

MAX_MESSAGES = 1000


def _addresses(value: str | None) -> list[dict[str, str]]:
    return [{"Name": name, "Address": addr} for name, addr in getaddresses([value or ""]) if addr]


@dataclass
class Message:
    id: str
    raw: bytes
    parsed: EmailMessage
    created: datetime
    read: bool = False

    def body(self, subtype: str) -> str:
        part = self.parsed.get_body(preferencelist=(subtype,))
        return str(part.get_content()) if part is not None else ""

    def summary(self) -> dict[str, Any]:
        text = self.body("plain")
        return {
            "ID": self.id,
            "MessageID": str(self.parsed.get("Message-ID", "")).strip("<>"),
            "Read": self.read,
            "From": (_addresses(self.parsed.get("From")) or [{"Name": "", "Address": ""}])[0],
            "To": _addresses(self.parsed.get("To")),
            "Cc": _addresses(self.parsed.get("Cc")),
            "Bcc": [],
            "ReplyTo": _addresses(self.parsed.get("Reply-To")),
            "Subject": str(self.parsed.get("Subject", "")),
            "Created": self.created.isoformat(),
            "Tags": [],
            "Size": len(self.raw),
            "Attachments": 0,
            "Snippet": " ".join(text.split())[:250],
        }

    def detail(self) -> dict[str, Any]:
        summary = self.summary()
        return {
            **{k: summary[k] for k in ("ID", "MessageID", "From", "To", "Cc", "Bcc", "ReplyTo")},
            "ReturnPath": str(self.parsed.get("Return-Path", "")),
            "Subject": summary["Subject"],
            "Date": self.created.isoformat(),
            "Tags": [],
            "Text": self.body("plain"),
            "HTML": self.body("html"),
            "Size": len(self.raw),
            "Inline": [],
            "Attachments": [],
        }


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)

    def add(self, raw: bytes) -> Message:
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        message = Message(secrets.token_urlsafe(12), raw, parsed, datetime.now(UTC))
        self.messages.insert(0, message)
        del self.messages[MAX_MESSAGES:]
        return message

    def find(self, message_id: str) -> Message | None:
        if message_id == "latest":
            return self.messages[0] if self.messages else None
        return next((m for m in self.messages if m.id == message_id), None)


class Handler:
    """aiosmtpd handler: accept every recipient, keep the message."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        self.mailbox.add(content if isinstance(content, bytes) else content.encode())
        return "250 Message accepted for delivery"


def http_app(mailbox: Mailbox) -> FastAPI:
    app = FastAPI(title="Tessera dev mail", docs_url=None, redoc_url=None)

    @app.get("/api/v1/messages")
    async def messages(start: int = 0, limit: int = 50) -> dict[str, Any]:
        page = mailbox.messages[start : start + limit]
        unread = sum(not m.read for m in mailbox.messages)
        return {
            "total": len(mailbox.messages),
            "unread": unread,
            "messages_count": len(mailbox.messages),
            "messages_unread": unread,
            "count": len(page),
            "start": start,
            "tags": [],
            "messages": [m.summary() for m in page],
        }

    @app.get("/api/v1/message/{message_id}")
    async def message(message_id: str) -> dict[str, Any]:
        found = mailbox.find(message_id)
        if found is None:
            raise HTTPException(404, "message not found")
        found.read = True
        return found.detail()

    @app.delete("/api/v1/messages")
    async def delete(request: Request) -> PlainTextResponse:
        body = await request.body()
        ids: list[str] = []
        if body:
            ids = list((await request.json()).get("IDs") or [])
        if ids:
            mailbox.messages[:] = [m for m in mailbox.messages if m.id not in set(ids)]
        else:
            mailbox.messages.clear()
        return PlainTextResponse("ok")

    @app.get("/", response_class=HTMLResponse)
    async def inbox() -> str:
        rows = "".join(
            f"<tr><td>{html.escape(m.created.strftime('%H:%M:%S'))}</td>"
            f"<td>{html.escape(', '.join(a['Address'] for a in m.summary()['To']))}</td>"
            f'<td><a href="/view/{m.id}">{html.escape(m.summary()["Subject"])}</a></td></tr>'
            for m in mailbox.messages
        )
        return (
            "<!doctype html><title>Tessera dev mail</title>"
            '<meta http-equiv="refresh" content="5">'
            "<h1>Tessera dev mail</h1><p>Mail that auth sends in dev lands here.</p>"
            f"<table border=1 cellpadding=4><tr><th>at</th><th>to</th><th>subject</th></tr>{rows}</table>"
        )

    @app.get("/view/{message_id}", response_class=HTMLResponse)
    async def view(message_id: str) -> str:
        found = mailbox.find(message_id)
        if found is None:
            raise HTTPException(404, "message not found")
        found.read = True
        body = found.body("html") or f"<pre>{html.escape(found.body('plain'))}</pre>"
        subject = html.escape(str(found.parsed.get("Subject", "")))
        return f'<!doctype html><p><a href="/">inbox</a></p><h2>{subject}</h2>{body}'

    return app


class MailCatcher:
    """SMTP and HTTP on the running event loop; `await start()`, `await stop()`."""

    def __init__(
        self, host: str = "127.0.0.1", smtp_port: int = 1025, http_port: int = 8025
    ) -> None:
        self.host = host
        self.smtp_port = smtp_port
        self.http_port = http_port
        self.mailbox = Mailbox()
        self._smtp: asyncio.base_events.Server | None = None
        self._http: LoopServer | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        factory = partial(SMTP, Handler(self.mailbox), hostname="tessera-dev-mail")
        self._smtp = await loop.create_server(factory, self.host, self.smtp_port)
        self._http = await LoopServer.start(
            http_app(self.mailbox),
            self.http_port,
            host=self.host,
            log_config=uvicorn.config.LOGGING_CONFIG,
            log_level="warning",
            lifespan="off",
        )

    async def stop(self) -> None:
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.stop(timeout=5)
        if self._smtp is not None:
            self._smtp.close()
            await self._smtp.wait_closed()


async def serve(host: str, smtp_port: int, http_port: int) -> None:
    catcher = MailCatcher(host, smtp_port, http_port)
    await catcher.start()
    print(f"dev mail: SMTP {host}:{smtp_port}, inbox {catcher.api_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await catcher.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Tessera's dev mail catcher.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.smtp_port, args.http_port))


if __name__ == "__main__":
    main()
