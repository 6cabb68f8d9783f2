from __future__ import annotations

from pathlib import Path

import pytest

from webhook_manager.settings import Settings, SettingsError


def test_defaults_are_the_contracts() -> None:
    s = Settings.load()
    assert s.database_url == "sqlite:///./var/webhook-manager.db"
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert (s.batch_max_events, s.batch_linger_ms) == (100, 20)
    assert (s.delivery_timeout_s, s.retries, s.retry_delay_s) == (5, 1, 10)
    assert not s.accept_any_2xx
    assert not s.allow_private_endpoints
    assert s.signature_headers
    assert (s.timezone, s.retention_hours) == ("UTC", 24)


def test_environment_wins_over_the_file_and_flags_win_over_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "wm.toml"
    config.write_text('port = 9000\nretries = 3\ntimezone = "Europe/Tallinn"\n')
    monkeypatch.setenv("WEBHOOK_MANAGER_RETRIES", "5")
    s = Settings.load(config)
    assert (s.port, s.retries, s.timezone) == (9000, 5, "Europe/Tallinn")
    assert Settings.load(config, port=9100).port == 9100


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("WEBHOOK_MANAGER_PORT", "eighty", "WEBHOOK_MANAGER_PORT"),
        ("WEBHOOK_MANAGER_PORT", "70000", "WEBHOOK_MANAGER_PORT"),
        ("WEBHOOK_MANAGER_BATCH_MAX_EVENTS", "101", "WEBHOOK_MANAGER_BATCH_MAX_EVENTS"),
        ("WEBHOOK_MANAGER_BATCH_MAX_EVENTS", "0", "WEBHOOK_MANAGER_BATCH_MAX_EVENTS"),
        ("WEBHOOK_MANAGER_RETRIES", "-1", "WEBHOOK_MANAGER_RETRIES"),
        ("WEBHOOK_MANAGER_DELIVERY_TIMEOUT_S", "0", "WEBHOOK_MANAGER_DELIVERY_TIMEOUT_S"),
        ("WEBHOOK_MANAGER_ACCEPT_ANY_2XX", "perhaps", "WEBHOOK_MANAGER_ACCEPT_ANY_2XX"),
        ("WEBHOOK_MANAGER_TIMEZONE", "Mars/Olympus", "WEBHOOK_MANAGER_TIMEZONE"),
        ("WEBHOOK_MANAGER_DATABASE_URL", "mongodb://x", "WEBHOOK_MANAGER_DATABASE_URL"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        Settings.load()
    message = str(caught.value)
    assert named in message
    assert "\n" not in message


def test_file_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="--config: no such file"):
        Settings.load(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("port = \n")
    with pytest.raises(SettingsError, match="--config: cannot read"):
        Settings.load(broken)
    typo = tmp_path / "typo.toml"
    typo.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        Settings.load(typo)
    bad = tmp_path / "bad.toml"
    bad.write_text('retries = "many"\n')
    with pytest.raises(SettingsError, match="WEBHOOK_MANAGER_RETRIES"):
        Settings.load(bad)


def test_a_bad_store_url_is_never_echoed_with_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_MANAGER_DATABASE_URL", "mysql://wm:S3cretPass@db:3306/wm")
    with pytest.raises(SettingsError) as caught:
        Settings.load()
    assert "S3cretPass" not in str(caught.value)
    assert "wm:***@db" in str(caught.value)


def test_an_in_memory_store_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_MANAGER_DATABASE_URL", "sqlite:///:memory:")
    with pytest.raises(SettingsError, match="must name a file"):
        Settings.load()


def test_a_short_identity_token_secret_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_MANAGER_IDENTITY_TOKEN_SECRET", "hunter2-is-short")
    with pytest.raises(SettingsError) as caught:
        Settings.load()
    assert "WEBHOOK_MANAGER_IDENTITY_TOKEN_SECRET" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_the_base_url_is_the_public_url_or_made_of_host_and_port() -> None:
    assert Settings().base_url() == "http://127.0.0.1:8080"
    assert Settings(host="0.0.0.0", port=9000).base_url() == "http://127.0.0.1:9000"
    assert Settings(host="::1").base_url() == "http://[::1]:8080"
    assert Settings(public_url="https://hooks.example.com/erply/").base_url() == "https://hooks.example.com/erply"
    for bad in ("hooks.example.com", "ftp://x", "https://x/?a=1", "https://x/#f"):
        with pytest.raises(SettingsError, match="WEBHOOK_MANAGER_PUBLIC_URL"):
            Settings.load(public_url=bad)
