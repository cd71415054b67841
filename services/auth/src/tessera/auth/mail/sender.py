"""The mail sender: a background task that sends what `email_outbox` holds.

Rows are leased (not held in a transaction) while the SMTP conversation runs, so replicas
share the queue and a crashed replica's rows come back after the lease. A failed send is
retried with exponential backoff and never dropped; only a permanent refusal by the server
(5xx for the recipient) ends a row as `rejected`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import aiosmtplib

from tessera.auth.context import Auth
from tessera.auth.links.mint import mint
from tessera.auth.mail import templates
from tessera.auth.mail.templates import Rendered
from tessera.auth.mail_queue import queries
from tessera.auth.members import invites
from tessera.auth.sellers import service as sellers
from tessera.auth.users import queries as user_queries
from tessera.auth.users.schemas import User
from tessera.shared.sellers import HOME_LIVE, Tenant

log = logging.getLogger("tessera.auth.mail")

BATCH = 20


class Drop(Exception):
    """The mail must not go out (e.g. no such user): recorded as `dropped`, not retried."""


class MailSender:
    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    async def run(self) -> None:
        settings = self.auth.settings
        while not self.auth.stopping.is_set():
            try:
                sent = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("auth.mail.loop.failed")
                sent = 0
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.auth.mail_wakeup.wait(), settings.mail_poll_seconds)
                self.auth.mail_wakeup.clear()

    async def send_due(self) -> int:
        rows = await queries.claim_due(self.auth.pool, BATCH)
        await asyncio.gather(*(self.send_row(row) for row in rows))
        return len(rows)

    async def send_row(self, row: Any) -> None:
        mail_id: UUID = row["id"]
        pool = self.auth.pool
        try:
            tenant = Tenant(row["seller_id"], "test" if row["mode"] == "test" else "live")
            rendered = await self.compose(
                row["kind"], row["recipient"], json.loads(row["payload"]), tenant
            )
            await self.deliver(row["recipient"], rendered)
        except Drop as reason:
            await queries.mark_final(pool, mail_id, "dropped", str(reason))
            log.info("auth.mail.send.dropped", extra={"mail_id": str(mail_id), "kind": row["kind"]})
        except aiosmtplib.SMTPRecipientsRefused as error:
            if all(500 <= e.code < 600 for e in error.recipients):
                await queries.mark_final(pool, mail_id, "rejected", repr(error))
                log.warning("auth.mail.send.rejected", extra={"mail_id": str(mail_id)})
            else:
                await self.retry_later(mail_id, row["attempts"], error)
        except Exception as error:
            await self.retry_later(mail_id, row["attempts"], error)
        else:
            await queries.mark_sent(pool, mail_id)
            log.info("auth.mail.send.ok", extra={"mail_id": str(mail_id), "kind": row["kind"]})

    async def retry_later(self, mail_id: UUID, attempts: int, error: Exception) -> None:
        s = self.auth.settings
        delay = min(s.mail_retry_max_seconds, s.mail_retry_base_seconds * 2 ** min(attempts, 20))
        await queries.mark_failed(self.auth.pool, mail_id, repr(error), delay)
        log.warning(
            "auth.mail.send.failed",
            extra={"mail_id": str(mail_id), "error": repr(error), "retry_in": delay},
        )

    async def compose(
        self, kind: str, recipient: str, payload: dict[str, Any], tenant: Tenant = HOME_LIVE
    ) -> Rendered:
        s = self.auth.settings
        minutes = max(1, s.link_ttl_seconds // 60)
        seller = await sellers.by_id(self.auth.pool, tenant.seller_id)
        if seller is None or seller.status != "active":
            raise Drop("no such seller, or it is suspended")
        # The home seller's mails carry the product's name; another seller's, its own.
        product = s.product_name if tenant.is_home else seller.name
        if kind == "welcome":
            user = await self._active_user_by_id(payload["user_id"])
            link = await mint(
                self.auth, user.email, tenant=user.tenant, user_id=user.id, binding="",
                next_path="",
            )  # fmt: skip
            return templates.sign_in(product, link.url, link.code, minutes, welcome=True)
        if kind == "sign_in":
            row = await user_queries.find_by_email(self.auth.pool, tenant, recipient)
            if row is None and seller.signup_policy != "open":
                raise Drop("no user has this address")
            user_id = None
            if row is not None:
                user = User.of(row)
                if not user.active:
                    raise Drop("the user is disabled")
                user_id = user.id
            link = await mint(
                self.auth,
                recipient,
                tenant=tenant,
                user_id=user_id,
                binding=payload.get("binding", ""),
                next_path=payload.get("next", ""),
            )
            return templates.sign_in(product, link.url, link.code, minutes, welcome=False)
        if kind == "seller_sign_up":
            # Anyone may sign a seller up: a new address becomes a home user when the link
            # is verified, an existing one must still be active.
            row = await user_queries.find_by_email(self.auth.pool, HOME_LIVE, recipient)
            if row is not None and not User.of(row).active:
                raise Drop("the user is disabled")
            link = await mint(
                self.auth,
                recipient,
                tenant=HOME_LIVE,
                user_id=row["id"] if row is not None else None,
                binding=payload.get("binding", ""),
                next_path=payload.get("next", ""),
                purpose="seller_sign_up",
                data={"name": payload["name"], "slug": payload["slug"]},
                page="/sellers/sign-up/link",
            )
            return templates.seller_sign_up(product, payload["name"], link.url, link.code, minutes)
        if kind == "seller_invite":
            invite = await invites.mint_token(self.auth, UUID(payload["invite_id"]))
            if invite is None:
                raise Drop("the invite is no longer open")
            url = f"{s.portal_url.rstrip('/')}/sellers/join?{urlencode({'token': invite.token})}"
            days = max(1, s.invite_ttl_seconds // 86400)
            return templates.seller_invite(
                s.product_name, invite.seller_name, invite.role, url, days
            )
        if kind == "webhook_endpoint_disabled":
            return await self._endpoint_disabled(payload)
        if kind == "new_device":
            url = f"{s.portal_url.rstrip('/')}/account/sessions"
            return templates.new_device(product, url, payload["ip"], payload["device"])
        raise Drop(f"unknown kind {kind!r}")

    async def _endpoint_disabled(self, payload: dict[str, Any]) -> Rendered:
        s = self.auth.settings
        seller = await sellers.by_id(self.auth.pool, UUID(payload["seller_id"]))
        if seller is None:
            raise Drop("the seller no longer exists")
        since = datetime.fromisoformat(payload["failing_since"])
        days = max(1, round((datetime.now(UTC) - since).total_seconds() / 86400))
        return templates.webhook_endpoint_disabled(
            s.product_name, seller.name, payload["endpoint_id"], payload["url"], payload.get("description", ""),
            payload["mode"], days,
        )  # fmt: skip

    async def _active_user_by_id(self, user_id: str) -> User:
        row = await user_queries.find_by_id(self.auth.pool, UUID(user_id))
        if row is None or row["disabled_at"] is not None:
            raise Drop("no active user")
        return User.of(row)

    async def deliver(self, recipient: str, rendered: Rendered) -> None:
        s = self.auth.settings
        message = EmailMessage()
        message["From"] = s.mail_from
        message["To"] = recipient
        message["Subject"] = rendered.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="tessera.auth")
        if s.mail_reply_to:
            message["Reply-To"] = s.mail_reply_to
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            timeout=s.smtp_timeout_seconds,
        )
