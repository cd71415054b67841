"""The retry schedule: the documented delays, spread by the jitter, then given up."""

from __future__ import annotations

import random

from tessera.webhooks.deliveries.service import retry_delay
from tessera.webhooks.settings import DEFAULT_RETRY_SCHEDULE, WebhooksSettings


def test_the_default_schedule_spans_about_three_days() -> None:
    total = sum(DEFAULT_RETRY_SCHEDULE)
    assert 2.5 * 86400 < total < 3.5 * 86400
    assert list(DEFAULT_RETRY_SCHEDULE) == sorted(DEFAULT_RETRY_SCHEDULE)  # backing off
    assert WebhooksSettings().retry_schedule == list(DEFAULT_RETRY_SCHEDULE)


def test_each_delay_is_the_schedules_within_the_jitter_and_then_none() -> None:
    rng = random.Random(7)
    schedule = [5.0, 300.0, 1800.0]
    for attempts_made, base in enumerate(schedule, start=1):
        delays = {retry_delay(attempts_made, schedule, 0.2, rng) for _ in range(200)}
        assert all(d is not None and base * 0.8 <= d <= base * 1.2 for d in delays)
        assert len(delays) > 100  # spread, not one value
    assert retry_delay(len(schedule) + 1, schedule, 0.2, rng) is None
    assert retry_delay(2, schedule, 0.0, rng) == 300.0
