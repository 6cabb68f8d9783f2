"""Every knob of the service (docs/settings.md) in one class.

Sources, strongest first: arguments given in code (the CLI's flags), ``WEBHOOK_MANAGER_*`` environment
variables, then the TOML file named by ``--config``. A bad value stops start-up with one line that names the
setting (:func:`describe_error`).
"""

from __future__ import annotations

import contextvars
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from webhook_manager.capture.spec import CaptureSpec
from webhook_manager.domain.egress_proxy import no_proxy_entries, proxy_problem
from webhook_manager.store import url_problem

ENV_PREFIX = "WEBHOOK_MANAGER_"
_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("config_file", default=None)


class SettingsError(Exception):
    """Settings that cannot be used; the message is one line naming the setting."""


class Settings(BaseSettings):
    """The service's settings; every field has a default, a type and a one-line comment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    # Where the store lives: sqlite:///path/to/file.db (created on first start), or postgresql://user@host/db.
    database_url: str = "sqlite:///./var/webhook-manager.db"
    # Address the HTTP API listens on.
    host: str = "127.0.0.1"
    # Port the HTTP API listens on.
    port: int = Field(8080, ge=1, le=65535)
    # At most this many events in one webhook (Erply: 100).
    batch_max_events: int = Field(100, ge=1, le=100)
    # A batch that is not full is sent once its oldest event has waited this long.
    batch_linger_ms: int = Field(20, ge=0, le=3_600_000)
    # One try (connect, send, answer) must finish within this many seconds.
    delivery_timeout_s: float = Field(5.0, gt=0, le=300)
    # A failed try is retried this many times (1: two tries in all), then the webhook is failed.
    retries: int = Field(1, ge=0, le=100)
    # The k-th retry waits retry_delay_s × 2^(k-1) seconds, jittered.
    retry_delay_s: float = Field(10.0, ge=0, le=86_400)
    # A bulk resend (POST /v1/webhook/resend) makes its webhooks due this many per second, oldest first from
    # now, so webhooks formed meanwhile go between them.
    resend_rate: int = Field(100, ge=1, le=100_000)
    # Count any 2xx answer as success, not only 200.
    accept_any_2xx: bool = False
    # New events are refused (503) while the SQLite store's disk has less free space than this (in MiB) plus
    # room to form the events not yet formed; the pipeline may still use it, so what was accepted is delivered.
    disk_reserve_mb: float = Field(64.0, ge=0, le=1_048_576)
    # At most this many webhook configurations per client (a create beyond it is refused with 400).
    max_configurations_per_client: int = Field(100, ge=1, le=100_000)
    # At most this many configurations per client for one table and action: one event makes one POST per
    # configuration of its table and action.
    max_configurations_per_subject: int = Field(20, ge=1, le=10_000)
    # Allow endpoints on loopback, private, link-local, multicast and reserved addresses.
    allow_private_endpoints: bool = False
    # Send every try through this HTTP forward proxy, http://[user:password@]host:port (https:// endpoints by
    # CONNECT), for one egress address; unset: tries go direct. Endpoints are still checked as without it.
    egress_proxy: str | None = None
    # Endpoint hosts that go direct despite egress_proxy, comma-separated: names, .suffixes, IP addresses.
    egress_no_proxy: Annotated[tuple[str, ...], NoDecode] = ()
    # At most this many tries in flight at once, in all.
    max_in_flight: int = Field(1024, ge=1, le=100_000)
    # At most this many tries in flight to one endpoint, so a slow endpoint cannot hold everyone's share.
    max_in_flight_per_endpoint: int = Field(64, ge=1, le=10_000)
    # Add the Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature).
    signature_headers: bool = True
    # A configuration's replaced secret still signs its tries (webhook-signature) beside the new one this many
    # hours; 0: the new one alone at once.
    secret_grace_h: float = Field(24.0, ge=0, le=24 * 366)
    # Time zone of the `timestamp` of items in a webhook (an IANA name).
    timezone: str = "UTC"
    # Finished webhooks and processed events are kept this many hours, then purged.
    retention_hours: float = Field(24.0, gt=0, le=24 * 366)
    # A (client, username) with this many failed logins within the last login_block_s is refused (Erply 1052).
    login_max_failures: int = Field(5, ge=1, le=1000)
    # The window of failed logins, in seconds: a block ends when the oldest of its failures is this old.
    login_block_s: int = Field(900, ge=1, le=86_400)
    # The service's base URL as its clients reach it, which getServiceEndpoints gives (default: from host and
    # port, http://127.0.0.1:8080).
    public_url: str | None = None
    # The key that signs identity tokens (HS256, at least 32 characters); unset, one is made at first start
    # and kept in the store, so every process of a store signs alike.
    identity_token_secret: SecretStr | None = Field(None, min_length=32)
    # Log every HTTP request (costs throughput; off by default).
    access_log: bool = False
    # Log level of the service's own messages.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # How log lines look: text (one line of words) or json (one JSON object per line), on standard error.
    log_format: Literal["text", "json"] = "text"
    # A request's line and headers over this many bytes are answered 431 and the connection closed.
    max_header_bytes: int = Field(65_536, ge=1024, le=16 * 1024 * 1024)
    # A request's line and headers must arrive within this many seconds of its first byte (or the connection), else 408.
    header_read_timeout_s: float = Field(10.0, gt=0, le=3600)
    # A kept-alive connection with no request is closed after this many seconds.
    keep_alive_idle_s: int = Field(5, ge=1, le=3600)
    # Open connections at most; past it, the longest waiting with no request in flight is closed (503), or the new one.
    max_connections: int = Field(1000, ge=1, le=1_000_000)
    # Prometheus metrics (GET /metrics on the API port; docs/metrics.md). Off: no /metrics and nothing counted.
    metrics: bool = True
    # The port `worker` serves /metrics on, at `host` (a worker has no API port); unset: none.
    metrics_port: int | None = Field(None, ge=1, le=65535)
    # The store-level gauges (what waits in the store) are read from the store at most once this many seconds.
    metrics_refresh_s: float = Field(5.0, ge=0.1, le=3600)
    # Label tries with their endpoint's host (at most 500 hosts, the rest as _other); off keeps series few.
    metrics_endpoint_host: bool = False
    # Database change capture sources that `serve` and `worker` run ([[capture]] sections, docs/capture.md).
    capture: tuple[CaptureSpec, ...] = ()

    @field_validator("database_url")
    @classmethod
    def _known_store(cls, value: str) -> str:
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("capture")
    @classmethod
    def _distinct_sources(cls, specs: tuple[CaptureSpec, ...]) -> tuple[CaptureSpec, ...]:
        seen: set[tuple[str, ...]] = set()
        for spec in specs:
            where = (spec.kind, spec.database or spec.dsn or "", spec.slot_name if spec.kind == "postgres" else "")
            if where in seen:
                raise ValueError(
                    f"two [[capture]] sections name one source ({spec.describe()}); give each its own slot"
                )
            seen.add(where)
        return specs

    @field_validator("egress_proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        problem = None if value is None else proxy_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("egress_no_proxy", mode="before")
    @classmethod
    def _no_proxy_list(cls, value: Any) -> Any:
        return no_proxy_entries(value) if isinstance(value, str | list | tuple) else value

    @field_validator("public_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is not None and (not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value)):
            raise ValueError("must be an absolute http:// or https:// URL without query or fragment")
        return None if value is None else value.rstrip("/")

    def base_url(self) -> str:
        """The service's base URL as clients reach it: ``public_url``, else made of host and port."""
        if self.public_url is not None:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '[::]') else host}:{self.port}"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name such as UTC or Europe/Tallinn") from None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = _config_file.get()
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if config_file is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=config_file),)
        return sources

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Read the settings; raise :class:`SettingsError` with one line naming a bad setting."""
        if config_file is not None:
            _check_toml(config_file)
        token = _config_file.set(config_file)
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        except ValidationError as exc:
            raise SettingsError(describe_error(exc)) from None
        finally:
            _config_file.reset(token)


def _check_toml(path: Path) -> None:
    try:
        with path.open("rb") as f:
            tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"--config: no such file: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"--config: cannot read {path}: {exc}") from None


def describe_error(exc: ValidationError) -> str:
    """One line naming the first bad setting, by its variable and file key, and what it takes."""
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else "?"
    message = err["msg"].removeprefix("Value error, ")
    if name == "capture":
        if len(err["loc"]) > 1 and isinstance(err["loc"][1], int):
            where = ".".join(str(part) for part in err["loc"][2:])
            return f"[[capture]] section {err['loc'][1] + 1}: {where + ': ' if where else ''}{message}"
        return f"[[capture]]: {message}"
    if err["type"] == "extra_forbidden":
        return f"unknown setting {name!r} (settings are listed in the README)"
    given = re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", str(err["input"]))  # never echo a password
    if "secret" in name or name == "egress_proxy":
        return f"setting {ENV_PREFIX}{name.upper()} ({name} in the config file): {message}"  # nor a secret
    return f"setting {ENV_PREFIX}{name.upper()} ({name} in the config file): {message}; got {given!r}"
