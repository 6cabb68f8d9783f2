"""Signatures of a webhook: Erply's ``hmac`` field and the Standard Webhooks headers. Pure."""

from __future__ import annotations

import base64
import hashlib
import hmac


def erply_hmac(secret: str, webhook_id: str) -> str:
    """Lowercase hex HMAC-SHA256 with the secret (UTF-8) as key and the webhook's id as message."""
    return hmac.new(secret.encode("utf-8"), webhook_id.encode("ascii"), hashlib.sha256).hexdigest()


def verify_hmac(secret: str, webhook_id: str, given: str) -> bool:
    """True when ``given`` is the webhook's hmac; for receivers (constant-time)."""
    return hmac.compare_digest(erply_hmac(secret, webhook_id), given.lower())


def standard_signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>``: HMAC-SHA256 keyed with the secret's UTF-8 bytes over ``{id}.{timestamp}.{body}``."""
    message = b"%s.%d.%s" % (webhook_id.encode("ascii"), timestamp, body)
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def standard_headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one try; none when the secret is empty."""
    if not secret:
        return {}
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(secret, webhook_id, timestamp, body),
    }
