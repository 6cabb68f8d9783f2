"""The HTTP API: Erply's configuration API and session keys, the delivery log, health."""

from webhook_manager.api.app import create_app

__all__ = ["create_app"]
