"""The Stripe stand-in on a real port and the official stripe library pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import stripe

from tessera.devstack.stripe_standin.testing import StandInServer, running_standin


@pytest.fixture
async def server() -> AsyncIterator[StandInServer]:
    async with running_standin() as running:
        yield running


@pytest.fixture
def client(server: StandInServer) -> stripe.StripeClient:
    return server.client()
