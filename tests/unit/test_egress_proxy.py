"""The egress proxy's settings (egress_proxy, egress_no_proxy) and which hosts bypass it."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook_manager.domain.egress_proxy import goes_direct, no_proxy_entries, proxy_address
from webhook_manager.settings import Settings, SettingsError


@pytest.mark.parametrize(
    "value",
    ["http://proxy.internal:3128", "http://wm:pw@10.0.0.5:3128/", "HTTP://[fd00::1]:8080", "http://wm@proxy:1"],
)
def test_a_proxy_url_is_taken(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("WEBHOOK_MANAGER_EGRESS_PROXY", value)
    assert Settings.load().egress_proxy == value


def test_no_proxy_is_unset_by_default() -> None:
    s = Settings.load()
    assert (s.egress_proxy, s.egress_no_proxy) == (None, ())


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("https://wm:S3cretPass@proxy:3128", "only plain http:// proxies"),
        ("socks5://wm:S3cretPass@proxy:1080", "only plain http:// proxies"),
        ("wm:S3cretPass@proxy:3128", "only plain http:// proxies"),
        ("http://wm:S3cretPass@proxy", "the port is missing"),
        ("http://wm:S3cretPass@:3128", "no host name or IP address"),
        ("http://wm:S3cretPass@proxy:99999", "with a port from 1 to 65535"),
        ("http://wm:S3cretPass@proxy:0", "the port is missing"),
        ("http://wm:S3cret/Pass@proxy:3128", "with a port from 1 to 65535"),  # a / not percent-encoded
        ("http://wm:S3cretPass@proxy:3128/path", "without a path, query or fragment"),
        ("http://wm:S3cretPass@proxy:3128?x=1", "without a path, query or fragment"),
        ("http://wm:S3cretPass@pro xy:3128", "without spaces"),
        ("http://wm:S3cretPass@a*b:3128", "no host name or IP address"),
        ("", "only plain http:// proxies"),
    ],
)
def test_a_bad_proxy_is_one_line_naming_the_setting_without_its_password(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("WEBHOOK_MANAGER_EGRESS_PROXY", value)
    with pytest.raises(SettingsError) as caught:
        Settings.load()
    message = str(caught.value)
    assert message.startswith("setting WEBHOOK_MANAGER_EGRESS_PROXY (egress_proxy in the config file): must be ")
    assert says in message
    assert "\n" not in message
    assert "S3cret" not in message


def test_the_proxy_can_come_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "wm.toml"
    config.write_text('egress_proxy = "http://proxy:3128"\negress_no_proxy = ["Hooks.Internal.", ".corp"]\n')
    s = Settings.load(config)
    assert (s.egress_proxy, s.egress_no_proxy) == ("http://proxy:3128", ("hooks.internal", ".corp"))
    config.write_text('egress_proxy = "http://wm:S3cretPass@proxy"\n')
    with pytest.raises(SettingsError) as caught:
        Settings.load(config)
    assert "egress_proxy" in str(caught.value)
    assert "S3cretPass" not in str(caught.value)


def test_no_proxy_is_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_MANAGER_EGRESS_NO_PROXY", " localhost, .Internal ,10.0.0.5,[::1],,hooks.example.com.,")
    assert Settings.load().egress_no_proxy == ("localhost", ".internal", "10.0.0.5", "::1", "hooks.example.com")


@pytest.mark.parametrize("value", ["hooks example", "http://hooks.example.com", "*.example.com", "a/b", "10.0.0.0/8"])
def test_a_bad_no_proxy_entry_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("WEBHOOK_MANAGER_EGRESS_NO_PROXY", f"localhost,{value}")
    with pytest.raises(SettingsError) as caught:
        Settings.load()
    message = str(caught.value)
    assert message.startswith("setting WEBHOOK_MANAGER_EGRESS_NO_PROXY (egress_no_proxy in the config file): ")
    assert repr(value) in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("host", "direct"),
    [
        ("hooks.example.com", True),  # a name matches itself
        ("HOOKS.example.com.", True),
        ("sub.hooks.example.com", False),  # …only
        ("a.internal", True),  # a .suffix matches every name under it
        ("b.a.internal", True),
        ("internal", False),  # …not the bare name
        ("xinternal", False),
        ("10.0.0.5", True),  # an address matches that address, in any spelling
        ("10.0.5", True),
        ("[::1]", True),
        ("::1", True),
        ("10.0.0.6", False),
        ("example.com", False),
    ],
)
def test_which_hosts_go_direct(host: str, direct: bool) -> None:
    entries = no_proxy_entries("hooks.example.com,.internal,10.0.0.5,::1")
    assert goes_direct(host, entries) is direct


def test_the_proxy_is_named_without_its_credentials() -> None:
    assert proxy_address("http://wm:S3cretPass@proxy.internal:3128") == "proxy.internal:3128"
    assert proxy_address("http://[fd00::1]:8080/") == "[fd00::1]:8080"
