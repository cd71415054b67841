"""What webhooks holds while it runs, beside the kernel's connections: its settings, the
seller API's rate rule, the sealer of signing secrets and the DNS resolver deliveries use (tests put in their own).
The delivery worker is started in `app.start`.

Built in `app.create_app`; routes reach it with `WebhooksDep`, subscribers and start-up
hooks receive it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends

from tessera.shared.keys import Sealer
from tessera.shared.service import ServiceContext, context_dependency
from tessera.shared.settings import Environment, InfraSettings
from tessera.shared.synced_limits import Rule
from tessera.webhooks.settings import WebhooksSettings
from tessera.webhooks.targets import Resolver, system_resolver


@dataclass(eq=False, kw_only=True)
class Webhooks(ServiceContext[WebhooksSettings]):
    name: str = "webhooks"
    resolver: Resolver = system_resolver
    # Seals the endpoints' signing secrets at rest (settings.key_encryption_key).
    sealer: Sealer = field(init=False)
    per_seller_key: Rule = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.sealer = Sealer(self.settings.kek)
        window = float(self.settings.rate_window_seconds)
        self.per_seller_key = Rule("seller-key", self.settings.rate_per_seller_key, window)

    @classmethod
    def of(cls, settings: WebhooksSettings, infra: InfraSettings) -> Webhooks:
        return cls(settings=settings, infra=infra)

    @property
    def public_targets_only(self) -> bool:
        """https and public addresses only (docs/webhooks.md, "Safety"): always in
        production, and wherever the operator asks for it."""
        return self.infra.env == Environment.PRODUCTION or self.settings.public_targets_only


WebhooksDep = Annotated[Webhooks, Depends(context_dependency(Webhooks))]
