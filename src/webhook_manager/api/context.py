"""What every handler may use, carried by the app: the settings, the open store, the pipeline's notifier and
the clock. Typed, so a handler never looks anything up by name."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from fastapi import FastAPI

from webhook_manager.delivery.notifier import Notifier
from webhook_manager.domain.clock import Clock
from webhook_manager.identity import IdentityTokens
from webhook_manager.login_guard import LoginGuard
from webhook_manager.observability.metrics import NO_METRICS, Metrics
from webhook_manager.settings import Settings
from webhook_manager.store import Store


@dataclass(frozen=True, slots=True)
class ApiContext:
    """The parts of the process the API works with."""

    settings: Settings
    store: Store
    notifier: Notifier
    clock: Clock
    tokens: IdentityTokens = field(default_factory=lambda: IdentityTokens(secrets.token_bytes(32)))
    logins: LoginGuard = field(default_factory=LoginGuard)
    metrics: Metrics = NO_METRICS


class ServiceApp(FastAPI):
    """The FastAPI app, carrying its :class:`ApiContext`."""

    context: ApiContext
