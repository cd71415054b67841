"""The seller API's delivery log and replay bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class AttemptOut(BaseModel):
    id: int = Field(description="Newest first; pass the last one as `before` for the next page.")
    event_id: str = Field(description="The event's id: its `webhook-id`.")
    event_type: str
    attempt: int = Field(description="1 for the first attempt of this delivery, then 2, …")
    attempted_at: datetime
    status_code: int | None = Field(description="The receiver's status; null: no answer.")
    latency_ms: int
    response_excerpt: str = Field(description="The start of the receiver's answer.")
    error: str | None = Field(description="Why there was no answer (timeout, refused, …).")
    delivery_status: Literal["pending", "delivered", "failed"] = Field(
        description="Where the delivery stands now."
    )


class ReplayRequest(BaseModel):
    """One event (`event_id`), or every event since a time (`since`) the endpoint wants."""

    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(default=None, max_length=40)
    since: AwareDatetime | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ReplayRequest:
        if (self.event_id is None) == (self.since is None):
            raise ValueError("give exactly one of event_id and since")
        return self


class Replayed(BaseModel):
    queued: int = Field(description="Deliveries queued (again).")


class TestSent(BaseModel):
    event_id: str = Field(description="The test event's id: its `webhook-id`.")
