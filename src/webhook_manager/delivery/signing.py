"""Signatures of a webhook: Erply's ``hmac`` field and the Standard Webhooks headers. Pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence


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


def standard_signatures(secrets: Iterable[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` of several secrets: one ``v1,<base64>`` for each non-empty one (the first of
    repeats), space-separated as the Standard Webhooks spec has it; "" when every one is empty."""
    signing = dict.fromkeys(secret for secret in secrets if secret)
    return " ".join(standard_signature(secret, webhook_id, timestamp, body) for secret in signing)


def standard_headers(
    secret: str, webhook_id: str, timestamp: int, body: bytes, extra_secrets: Sequence[str] = ()
) -> dict[str, str]:
    """The Standard Webhooks headers of one try, signed with ``secret`` and each of ``extra_secrets`` (a replaced
    secret in its grace); none when they are all empty."""
    signature = standard_signatures((secret, *extra_secrets), webhook_id, timestamp, body)
    if not signature:
        return {}
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}
