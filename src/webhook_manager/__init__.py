"""webhook-manager: database changes in, batched and signed webhooks out (Erply-compatible)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("webhook-manager")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from webhook_manager.delivery.signing import erply_hmac, standard_signature, verify_hmac
from webhook_manager.settings import Settings

__all__ = ["Settings", "__version__", "erply_hmac", "standard_signature", "verify_hmac"]
