"""The AsyncAPI documents in docs/ are what FastStream generates from the real subscribers."""

from pathlib import Path
from urllib.parse import unquote

import pytest

from tessera.devstack.asyncapi import SERVICES, document, produced_by, render
from tessera.shared.events import auth, billing, licensing, webhooks
from tessera.shared.events.envelope import Event

DOCS = Path(__file__).resolve().parents[1] / "docs" / "asyncapi"


@pytest.mark.parametrize("service", SERVICES)
def test_the_committed_document_matches_the_code(service: str) -> None:
    committed = (DOCS / f"{service}.json").read_text(encoding="utf-8")
    assert committed == render(service), (
        "run `./dev openapi` (it writes AsyncAPI too) and commit docs/asyncapi/"
    )


def test_each_document_names_the_subjects_its_service_consumes() -> None:
    channels = document("auth")["channels"]
    assert isinstance(channels, dict)
    assert any("billing.account.created.v1" in str(c) for c in channels.values())


EVENT_MODULES = {"auth": auth, "billing": billing, "licensing": licensing, "webhooks": webhooks}


@pytest.mark.parametrize("service", EVENT_MODULES)
def test_each_document_publishes_every_event_its_service_produces(service: str) -> None:
    """Each event class of `tessera.shared.events.<service>` is something the service's
    outbox publishes: its document has a `send` operation on that subject, with the
    event's fields as the message's payload."""
    module = EVENT_MODULES[service]
    events: list[type[Event]] = [
        cls
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, Event)
        and isinstance(getattr(cls, "subject", None), str)
    ]
    assert events and sorted(e.subject for e in events) == [e.subject for e in produced_by(service)]
    doc = document(service)
    channels = doc["channels"]
    operations = doc["operations"]
    components = doc["components"]
    assert isinstance(channels, dict) and isinstance(operations, dict)
    assert isinstance(components, dict)
    sent = {
        # A $ref is a URI fragment: `apikeys.*` is written `apikeys.%2A` there.
        channels[unquote(op["channel"]["$ref"].rsplit("/", 1)[1])]["address"]: op
        for op in operations.values()
        if op["action"] == "send"
    }
    assert sorted(sent) == sorted(e.subject for e in events)
    for event in events:
        schema = components["schemas"][event.__name__]
        assert set(event.model_fields) <= set(schema["properties"]), event.subject
