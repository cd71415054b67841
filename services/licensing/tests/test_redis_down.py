"""With Redis unreachable, the desktop API keeps answering: running copies of the app must
not stop validating because the rate limiter's store is away (it fails open, and says so
in the logs)."""

from __future__ import annotations

from typing import Any

import pytest
from licensing_factories import Harness, an_order_paid  # type: ignore[import-not-found]
from redis import exceptions as redis_errors

from tessera.devstack.infra import free_port
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def infra_settings(infra_settings: InfraSettings) -> InfraSettings:
    return infra_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})


async def test_activate_and_validate_keep_answering_without_redis(harness: Harness) -> None:
    with pytest.raises(redis_errors.ConnectionError):
        await harness.app.state.context.redis.ping()
    paid = an_order_paid(seats=1, quantity=1)
    await harness.publish(paid)
    (key,) = await harness.issued(paid.order_id, 1)
    body = {"key": key, "fingerprint": "machine-redis-down-01"}
    activated = await harness.http.post("/v1/licenses/activate", json=body)
    assert activated.status_code == 200, activated.text
    assert activated.json()["code"] == "VALID"
    for _ in range(3):
        validated = await harness.http.post("/v1/licenses/validate", json=body)
        assert validated.status_code == 200
        answer: dict[str, Any] = validated.json()
        assert answer["code"] == "VALID"
        assert answer["lease"]
