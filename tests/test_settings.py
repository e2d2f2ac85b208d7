"""Settings errors name each invalid variable with its value and the rule it broke."""

import pytest

from pulseboard.server.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PULSEBOARD_PORT", "eighty", "PULSEBOARD_PORT='eighty': Input should be a valid integer"),
        ("PULSEBOARD_PORT", "70000", "PULSEBOARD_PORT='70000': Input should be less than or equal to 65535"),
        ("PULSEBOARD_CACHE_TTL_S", "-5", "PULSEBOARD_CACHE_TTL_S='-5': Input should be greater than or equal to 0"),
    ],
)
def test_invalid_setting_shows_value(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).splitlines()[1].strip().startswith(expected)


def test_invalid_project_shows_value(monkeypatch):
    monkeypatch.setenv("PULSEBOARD_DEFAULT_PROJECT", "Acme Corp")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    line = str(raised.value).splitlines()[1].strip()
    assert line.startswith("PULSEBOARD_DEFAULT_PROJECT='Acme Corp': Value error, 'Acme Corp' is not a valid project id")


def test_every_invalid_setting_listed(monkeypatch):
    monkeypatch.setenv("PULSEBOARD_PORT", "x")
    monkeypatch.setenv("PULSEBOARD_QUERY_TIMEOUT_S", "0")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    names = [line.strip().split("=")[0] for line in str(raised.value).splitlines()[1:]]
    assert names == ["PULSEBOARD_PORT", "PULSEBOARD_QUERY_TIMEOUT_S"]


def test_secret_setting_hidden(monkeypatch):
    secrets = {"PULSEBOARD_API_TOKEN": "s3cret-token", "PULSEBOARD_CLICKHOUSE_URL": "http://u:pw@127.0.0.1:8123"}
    with pytest.raises(SettingsError) as raised:
        load_settings(api_token=["s3cret-token"], clickhouse_url=["http://u:pw@127.0.0.1:8123"])
    message = str(raised.value)
    assert "PULSEBOARD_API_TOKEN=<hidden>" in message
    assert "PULSEBOARD_CLICKHOUSE_URL=<hidden>" in message
    for secret in secrets.values():
        assert secret not in message
