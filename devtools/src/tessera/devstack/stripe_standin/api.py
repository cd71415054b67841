"""What a resource module declares: its endpoints and the call its handlers receive."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response

from tessera.devstack.stripe_standin.settings import StandInSettings
from tessera.devstack.stripe_standin.store import Store
from tessera.devstack.stripe_standin.wire import Obj, Params


@dataclass
class Call:
    """One API request as a handler sees it."""

    store: Store
    settings: StandInSettings
    account: str
    params: Params
    path: dict[str, str]
    url: str

    def at(self, account: str) -> Call:
        """The same call acting in another account."""
        return Call(self.store, self.settings, account, self.params, self.path, self.url)

    def now(self, customer_id: str | None = None) -> int:
        return self.store.now(self.account, customer_id)


Handler = Callable[[Call], "Obj | Response"]


@dataclass(frozen=True)
class Endpoint:
    """A Stripe API route (`api=True`: key, account and idempotency apply) or one of the
    stand-in's own control routes and hosted pages under /_standin (`api=False`)."""

    method: str
    path: str
    handler: Handler
    accepts: tuple[str, ...] = ()
    api: bool = True
