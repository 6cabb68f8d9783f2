"""``webhook-manager listen``: a local receiver that prints each webhook it gets, with both signatures checked.

For trying the service out: configure ``http://127.0.0.1:9000/`` as an endpoint (``serve
--allow-private-endpoints``), record an event, and see what arrives. ``--status`` and ``--delay`` shape the
answer, so failures, retries and timeouts can be tried too. The checks (:func:`examine`) are pure; only
:func:`listen` does I/O.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web

from webhook_manager.delivery.signing import standard_signature, verify_hmac
from webhook_manager.service import base_url, serving_site

VALID = "valid"
ABSENT = "absent"
NO_SECRET = "not checked (no --secret)"
NOT_A_WEBHOOK = "not checked (not a webhook)"
MAX_BODY_BYTES = 32 * 1024 * 1024  # a webhook of 100 events with large data still fits
SHUTDOWN_S = 1.0  # on a stop, answers held back by --delay get this long before they are dropped

_UNIX_SECONDS = re.compile(r"[0-9]{1,18}")
_MISSING = object()


@dataclass(frozen=True)
class Options:
    """How ``listen`` listens and answers (the command's flags, already checked)."""

    host: str = "127.0.0.1"
    port: int = 9000
    secret: str | None = None
    status: int = 200
    delay: float = 0.0
    as_json: bool = False


@dataclass(frozen=True)
class Received:
    """What one POST brought, as the listener reports it; ``error`` says why the body is not a webhook."""

    path: str
    status: int
    hmac: str
    signature: str
    error: str | None = None
    id: str | None = None
    table: Any = None
    action: Any = None
    event_count: Any = None
    items: list[Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return {
            "id": self.id,
            "table": self.table,
            "action": self.action,
            "eventCount": self.event_count,
            "items": self.items,
            "hmac": self.hmac,
            "signature": self.signature,
            "path": self.path,
            "status": self.status,
            "error": self.error,
        }


def read_webhook(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The body as a webhook object, or None and why it is not one."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested past Python's stack
        return None, f"not a webhook: the body is not JSON ({len(raw)} bytes)"
    if not isinstance(body, dict):
        return None, "not a webhook: the body is not a JSON object"
    if not isinstance(body.get("id"), str):
        return None, 'not a webhook: no string "id"'
    if not isinstance(body.get("items"), list):
        return None, 'not a webhook: no "items" array'
    return body, None


def check_hmac(secret: str | None, body: Mapping[str, Any] | None) -> str:
    """The verdict on Erply's ``hmac`` field: HMAC-SHA256 of the id, keyed with the secret."""
    if body is None:
        return NOT_A_WEBHOOK
    given, webhook_id = body.get("hmac"), body["id"]
    if given is None:
        return ABSENT
    if secret is None:
        return NO_SECRET
    if not isinstance(given, str):
        return "INVALID: hmac is not a string"
    # verify_hmac wants ASCII on both sides; a real webhook's id and hmac are hex.
    if webhook_id.isascii() and given.isascii() and verify_hmac(secret, webhook_id, given):
        return VALID
    return "INVALID: hmac does not match"


def check_signature(secret: str | None, raw: bytes, headers: Mapping[str, str], body_id: str | None) -> str:
    """The verdict on the Standard Webhooks headers: ``webhook-signature`` holds space-separated signatures,
    one ``v1,<base64>`` of them must be HMAC-SHA256 over ``{webhook-id}.{webhook-timestamp}.{body}``, and
    ``webhook-id`` must be the body's id. The timestamp's age is not checked."""
    lowered = {name.lower(): value for name, value in headers.items()}
    names = ("webhook-id", "webhook-timestamp", "webhook-signature")
    webhook_id, timestamp, signatures = (lowered.get(name) for name in names)
    if webhook_id is None and timestamp is None and signatures is None:
        return ABSENT
    if webhook_id is None or timestamp is None or signatures is None:
        missing = [name for name in names if name not in lowered]
        return f"INVALID: no {', '.join(missing)} header"
    if secret is None:
        return NO_SECRET
    if not _UNIX_SECONDS.fullmatch(timestamp):
        return "INVALID: webhook-timestamp is not Unix seconds"
    given = [s.encode("utf-8", "surrogateescape") for s in signatures.split(" ") if s.startswith("v1,")]
    if not given:
        return "INVALID: no v1 signature in webhook-signature"
    if not webhook_id.isascii():  # never a real webhook's: its id is hex
        return "INVALID: signature does not match"
    expected = standard_signature(secret, webhook_id, int(timestamp), raw).encode("ascii")
    if not any(hmac.compare_digest(expected, signature) for signature in given):
        return "INVALID: signature does not match"
    if body_id is not None and webhook_id != body_id:
        return "INVALID: webhook-id differs from the body's id"
    return VALID


def examine(raw: bytes, headers: Mapping[str, str], secret: str | None, *, path: str, status: int) -> Received:
    """Everything the listener says about one POST: the webhook's fields and both verdicts."""
    body, error = read_webhook(raw)
    body_id = None if body is None else body["id"]
    signature = check_signature(secret, raw, headers, body_id)
    hmac_verdict = check_hmac(secret, body)
    if body is None:
        return Received(path=path, status=status, hmac=hmac_verdict, signature=signature, error=error)
    return Received(
        path=path,
        status=status,
        hmac=hmac_verdict,
        signature=signature,
        id=body["id"],
        table=body.get("table", _MISSING),
        action=body.get("action", _MISSING),
        event_count=body.get("eventCount", _MISSING),
        items=body["items"],
    )


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _shown(value: Any) -> str:
    if value is _MISSING:
        return "(missing)"
    return value if isinstance(value, str) else _compact(value)


def render_text(received: Received, at: str, delay: float = 0.0) -> str:
    """One readable block: where it came, the answer, the webhook's fields, the verdicts, one item a line."""
    after = f" after {delay:g} s" if delay else ""
    lines = [f"POST {received.path} at {at}, answering {received.status}{after}"]
    if received.error is not None:
        lines.append(f"  body        {received.error}")
    else:
        lines += [
            f"  id          {received.id}",
            f"  table       {_shown(received.table)}",
            f"  action      {_shown(received.action)}",
            f"  eventCount  {_shown(received.event_count)}",
        ]
    lines += [f"  hmac        {received.hmac}", f"  signature   {received.signature}"]
    if received.items is not None:
        items = [_compact(item) for item in received.items] or ["(none)"]
        lines += [f"  items       {items[0]}", *(f"              {item}" for item in items[1:])]
    return "\n".join(lines) + "\n"


def render_json(received: Received) -> str:
    """One JSON object on one line (ASCII, so any terminal or pipe takes it)."""
    return json.dumps(
        received.as_dict(), default=lambda value: None if value is _MISSING else value, separators=(",", ":")
    )


def emit(text: str) -> None:
    """Print a line now; what a terminal cannot show is escaped rather than stopping the listener."""
    encoding = sys.stdout.encoding or "utf-8"
    sys.stdout.write(text.encode(encoding, "backslashreplace").decode(encoding) + "\n")
    sys.stdout.flush()


async def _answer(options: Options, out: Callable[[str], None], request: web.Request) -> web.StreamResponse:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        received = Received(request.raw_path, options.status, NOT_A_WEBHOOK, NOT_A_WEBHOOK, "body over 32 MiB")
    else:
        received = examine(raw, request.headers, options.secret, path=request.raw_path, status=options.status)
    out(render_json(received) if options.as_json else render_text(received, time.strftime("%H:%M:%S"), options.delay))
    if options.delay:
        await asyncio.sleep(options.delay)  # the feature itself: a slow receiver, to try timeouts
        if not options.as_json and (request.transport is None or request.transport.is_closing()):
            out(f"  (the sender of {received.id or received.path} gave up before the answer)\n")
    return web.Response(status=options.status)


def banner(options: Options, port: int) -> str:
    """The first line: where to send webhooks, and how they are answered."""
    after = f" after {options.delay:g} s" if options.delay else ""
    return (
        f"listening on {base_url(options.host, port)}/ (answering {options.status}{after});"
        " configure this URL as an endpoint with serve --allow-private-endpoints"
    )


async def listen(options: Options, out: Callable[[str], None] = emit) -> None:
    """Receive webhooks on any path by POST until SIGTERM or SIGINT, printing each;
    :class:`~webhook_manager.service.ListenError` when the address cannot be bound."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_route("POST", "/{path:.*}", partial(_answer, options, out))
    async with serving_site(app, options.host, options.port, "--host, --port", shutdown_timeout=SHUTDOWN_S) as port:
        out(banner(options, port))
        await stop.wait()
