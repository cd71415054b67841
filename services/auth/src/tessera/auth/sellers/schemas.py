"""Sellers as the API names them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict

from tessera.shared.events.auth import (
    Branding,
    GraceDays,
    HttpsUrl,
    SupportEmail,
    UsageThresholds,
)

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{2,39}$"

# A seller's slug in a path: it names a page or one of the caller's own sellers, never
# whose data a call may touch (that comes from the credential).
Slug = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=40)]


class BrandingInput(Branding):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SettingsPatch(BaseModel):
    """A JSON merge of top-level fields: a field left out keeps its value, `null` takes it
    back to its default, and `branding` is replaced whole."""

    model_config = ConfigDict(extra="forbid")

    support_email: SupportEmail | None = None
    upgrade_url: HttpsUrl | None = None
    branding: BrandingInput | None = None
    past_due_grace_days: GraceDays | None = None
    usage_thresholds: UsageThresholds | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the body names, as JSON values (None: back to the default)."""
        return self.model_dump(mode="json", exclude_unset=True)
