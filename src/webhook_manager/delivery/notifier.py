"""How the API and capture tell the pipeline of their process that there is work, without knowing it."""

from __future__ import annotations

from typing import Protocol


class Notifier(Protocol):
    """Wake-ups for the pipeline; only a hint, since the loops also poll the store."""

    def events_recorded(self) -> None:
        """Events were stored: batch them now rather than at the next poll."""
        ...

    def webhooks_due(self) -> None:
        """A webhook was made due (a resend): send it now rather than at the next poll."""
        ...


class NoPipeline:
    """The notifier of a process without a pipeline (``api``): the workers find the rows by polling, or are
    woken by the store (PostgreSQL's NOTIFY)."""

    def events_recorded(self) -> None:
        pass

    def webhooks_due(self) -> None:
        pass


NO_PIPELINE: Notifier = NoPipeline()
