"""The AsyncAPI documents in docs/ are what FastStream generates from the real subscribers."""

from pathlib import Path

import pytest

from tessera.devstack.asyncapi import SUBSCRIBERS, document, render

DOCS = Path(__file__).resolve().parents[1] / "docs" / "asyncapi"


@pytest.mark.parametrize("service", SUBSCRIBERS)
def test_the_committed_document_matches_the_code(service: str) -> None:
    committed = (DOCS / f"{service}.json").read_text(encoding="utf-8")
    assert committed == render(service), "run ./dev asyncapi and commit docs/asyncapi/"


def test_each_document_names_the_subjects_its_service_consumes() -> None:
    channels = document("auth")["channels"]
    assert isinstance(channels, dict)
    assert any("billing.account.created.v1" in str(c) for c in channels.values())
