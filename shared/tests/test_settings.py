import pytest

from tessera.billing.settings import BillingSettings
from tessera.shared.settings import ConfigurationError, InfraSettings, load_settings


def test_defaults_work_in_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESSERA_NATS_URL", raising=False)
    settings = load_settings(InfraSettings)
    assert str(settings.nats_url) == "nats://127.0.0.1:4222"
    assert settings.namespace == ""


def test_a_bad_value_fails_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TESSERA_NATS_URL", "not a url")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(InfraSettings)
    assert "TESSERA_NATS_URL" in str(raised.value)
    assert "Traceback" not in capsys.readouterr().err


def test_a_service_setting_is_named_with_its_service_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TESSERA_BILLING_PORT", "eighty")
    monkeypatch.setenv("TESSERA_BILLING_DATABASE_URL", "mysql://nope")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(BillingSettings)
    message = str(raised.value)
    assert "TESSERA_BILLING_PORT" in message
    assert "TESSERA_BILLING_DATABASE_URL" in message


def test_namespace_is_restricted_to_safe_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_NAMESPACE", "Has Spaces.>")
    with pytest.raises(ConfigurationError, match="TESSERA_NAMESPACE"):
        load_settings(InfraSettings)
