"""The spine: an order is paid, licenses are issued, a machine activates, validates and
deactivates — through real JetStream, Postgres and Redis."""

from __future__ import annotations

import pytest
from licensing_factories import Harness, an_order_paid  # type: ignore[import-not-found]

pytestmark = pytest.mark.integration

FP = "machine-fingerprint-0001"


async def test_a_paid_order_issues_a_license_that_activates_validates_and_deactivates(
    harness: Harness,
) -> None:
    paid = an_order_paid(seats=2, quantity=2)
    await harness.publish(paid)
    keys = await harness.issued(paid.order_id, 2)
    assert len(set(keys)) == 2

    r = await harness.http.post(
        "/v1/licenses/validate", json={"key": keys[0], "fingerprint": FP, "nonce": "n1"}
    )
    assert r.status_code == 200
    assert r.json()["code"] == "NOT_ACTIVATED"
    assert r.json()["nonce"] == "n1"

    r = await harness.http.post(
        "/v1/licenses/activate",
        json={"key": keys[0], "fingerprint": FP, "machine_name": "desk", "platform": "windows"},
    )
    body = r.json()
    assert body["code"] == "VALID", body
    assert body["valid"] is True
    assert body["entitlements"] == ["chartgpt.core"]
    assert body["lease"].count(".") == 2

    r = await harness.http.post(
        "/v1/licenses/validate", json={"key": keys[0], "fingerprint": FP, "nonce": "n2"}
    )
    body = r.json()
    assert body["code"] == "VALID"
    assert body["nonce"] == "n2"
    assert body["lease"]
    assert "tessera-signature" in r.headers

    r = await harness.http.post("/v1/licenses/deactivate", json={"key": keys[0], "fingerprint": FP})
    assert r.json()["code"] == "DEACTIVATED"
    r = await harness.http.post("/v1/licenses/validate", json={"key": keys[0], "fingerprint": FP})
    assert r.json()["code"] == "NOT_ACTIVATED"
    subjects = await harness.outbox_subjects()
    assert subjects.count("licensing.license.issued.v1") == 2
    assert "licensing.activation.created.v1" in subjects
    assert "licensing.activation.removed.v1" in subjects
