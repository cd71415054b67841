"""A mailbox stand-in for load runs: real SMTP (aiosmtpd) that accepts every message and
keeps nothing. Unlike the dev mail catcher it does not parse or store what it receives, so
hundreds of welcome mails a second cost the shared cores as little as a Python SMTP server
can.

    python bench/smtp_sink.py --port 2525
"""

from __future__ import annotations

import argparse
import asyncio

import uvloop
from aiosmtpd.smtp import SMTP, Envelope, Session


class Discard:
    """aiosmtpd handler: acknowledge DATA and drop the message."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK"


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Discard(), hostname="bench-smtp-sink"), host, port
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))
