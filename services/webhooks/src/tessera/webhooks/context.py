"""What webhooks holds while it runs, beside the kernel's connections: its settings, the
seller API's rate rule, the DNS resolver deliveries use (tests put in their own) and the
delivery worker (started with the process's workers).

Built in `app.create_app`; routes reach it with `WebhooksDep`, subscribers and start-up
hooks receive it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends

from tessera.shared.service import NotConnected, ServiceContext, context_dependency
from tessera.shared.settings import Environment, InfraSettings
from tessera.shared.synced_limits import Rule
from tessera.webhooks.deliveries.targets import Resolver, system_resolver
from tessera.webhooks.deliveries.worker import Worker
from tessera.webhooks.settings import WebhooksSettings


@dataclass(eq=False, kw_only=True)
class Webhooks(ServiceContext[WebhooksSettings]):
    name: str = "webhooks"
    resolver: Resolver = system_resolver
    per_seller_key: Rule = field(init=False)
    _worker: Worker | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        window = float(self.settings.rate_window_seconds)
        self.per_seller_key = Rule("seller-key", self.settings.rate_per_seller_key, window)

    @classmethod
    def of(cls, settings: WebhooksSettings, infra: InfraSettings) -> Webhooks:
        return cls(settings=settings, infra=infra)

    @property
    def production(self) -> bool:
        """Deliveries only to public https targets (docs/webhooks.md, "Safety")."""
        return self.infra.env == Environment.PRODUCTION

    @property
    def worker(self) -> Worker:
        if self._worker is None:
            raise NotConnected("The delivery worker is not running in this process.")
        return self._worker

    def start_worker(self) -> Worker:
        self._worker = Worker(self.pool, self.settings, self.production, self.resolver)
        return self._worker

    def wake_worker(self) -> None:
        """There may be new work: a fan-out or a replay in this process (other replicas
        find it at their next poll)."""
        if self._worker is not None:
            self._worker.wake.set()


WebhooksDep = Annotated[Webhooks, Depends(context_dependency(Webhooks))]
