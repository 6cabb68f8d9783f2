"""The exact body of a webhook (docs/payload.md). Pure.

Keys in this order: id, hmac, clientCode, table, action, eventCount (a string, as in Erply's example), items.
Items are kept in their wire form from the moment they are recorded, so building a body is slicing a list
and one orjson call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from webhook_manager.delivery.signing import erply_hmac


def webhook_body(
    webhook_id: str, secret: str, client_code: str, table: str, action: str, items: Sequence[Any]
) -> bytes:
    """The UTF-8 JSON body of one webhook."""
    return orjson.dumps(
        {
            "id": webhook_id,
            "hmac": erply_hmac(secret, webhook_id),
            "clientCode": client_code,
            "table": table,
            "action": action,
            "eventCount": str(len(items)),
            "items": items,
        }
    )
