"""The one exception tree; the API maps it to ``{"error": …}`` in one place (api/app.py)."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class WebhookManagerError(Exception):
    """Base of every error this package raises on purpose."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(WebhookManagerError):
    """A request or command argument is malformed; ``field`` names what is wrong."""

    status = 400

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


class LimitReached(WebhookManagerError):
    """A change refused because it would take a client past a cap of the settings; the message names it."""

    status = 400


class NotFound(WebhookManagerError):
    """The thing asked for does not exist, or belongs to another client."""

    status = 404


class Unauthorized(WebhookManagerError):
    """Missing, unknown or expired session key, or a clientCode that is not the key's own."""

    status = 401


class PayloadTooLarge(WebhookManagerError):
    """A request body over the allowed size."""

    status = 413


class ClientGone(WebhookManagerError):
    """The client closed the connection before it had sent its whole request; there is nobody to answer."""

    status = 400


class StoreUnavailable(WebhookManagerError):
    """The store did not answer; the caller may try again."""

    status = 503


class Conflict(WebhookManagerError):
    """The store refused a write that would break a uniqueness rule (an existing user, say)."""

    status = 409


class CaptureError(WebhookManagerError):
    """A capture source cannot work as configured; the message is one line saying what to change."""


class CaptureBusy(WebhookManagerError):
    """Another process captures this source now; this one stands by and tries again."""


class CaptureConflict(WebhookManagerError):
    """The stored position of a source is not the one this process read from: another process recorded it."""
