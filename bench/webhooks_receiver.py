"""The fan-out bench's receivers: one process serving `/r/{n}` for every endpoint, each
verifying the Standard Webhooks signature with the `standardwebhooks` library under its
endpoint's secret (a 400 if it does not verify), and noting when each webhook arrived on
the machine-wide monotonic clock (`time.monotonic()`, CLOCK_MONOTONIC: the same clock in
every process), so the bench times publish to receipt across processes."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

app = FastAPI()
verifiers: dict[int, Webhook] = {}
# (endpoint number, webhook-id, monotonic seconds at receipt)
receipts: list[tuple[int, str, float]] = []
refused = 0


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


@app.put("/secrets")
async def set_secrets(secrets: dict[str, str]) -> dict[str, int]:
    verifiers.clear()
    verifiers.update({int(n): Webhook(secret) for n, secret in secrets.items()})
    return {"endpoints": len(verifiers)}


@app.post("/r/{n}")
async def receive(n: int, request: Request) -> Response:
    global refused
    body = await request.body()
    at = time.monotonic()
    verifier = verifiers.get(n)
    try:
        if verifier is None:
            raise WebhookVerificationError("unknown endpoint")
        verifier.verify(body, dict(request.headers))
    except WebhookVerificationError:
        refused += 1
        return Response(status_code=400)
    receipts.append((n, request.headers["webhook-id"], at))
    return Response(status_code=204)


@app.post("/receipts/take")
async def take() -> dict[str, object]:
    """Everything received since the last take (and the count of refused signatures)."""
    global refused
    taken, receipts[:] = receipts[:], []
    answer: dict[str, object] = {"receipts": taken, "refused": refused}
    refused = 0
    return answer
