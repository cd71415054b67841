"""The client's event types match the webhooks service's public catalogue, field for field,
and every model example the catalogue can build parses into a typed event."""

from __future__ import annotations

import pytest
from tessera_client.events import DATA_TYPES, WebhookEvent

from tessera.webhooks.catalogue.schemas import CATALOGUE


def test_every_catalogue_type_is_known_to_the_client() -> None:
    assert set(DATA_TYPES) == set(CATALOGUE)


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_each_types_data_has_the_catalogues_fields(event_type: str) -> None:
    data_model = CATALOGUE[event_type].model_fields["data"].annotation
    assert data_model is not None
    service_fields = set(data_model.model_fields)
    typed = DATA_TYPES[event_type]
    client_fields = set(typed.__required_keys__) | set(typed.__optional_keys__)  # type: ignore[attr-defined]
    assert client_fields == service_fields


def test_an_unknown_type_still_parses_and_refuses_a_wrong_view() -> None:
    event = WebhookEvent.parse(
        {"id": "evt_" + "a" * 32, "type": "invoice.future", "api_version": "v1",
         "timestamp": "2026-12-01T10:00:00Z", "data": {"x": 1}}
    )  # fmt: skip
    assert event.type == "invoice.future" and event.data == {"x": 1}
    with pytest.raises(TypeError):
        event.subscription()
