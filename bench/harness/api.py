"""The service's HTTP API as a user sees it: log in (Erply's ``verifyUser``), configurations, ``POST /v1/event``.

Every call is bounded (at most 120 s, never much past the global deadline); a failure is a :class:`BenchError`
naming the call, what went wrong and, when a process of the service has exited, its log's tail.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from bench.harness.limits import BenchError, Deadline
from bench.harness.service import CLIENT_CODE, PASSWORD, SECRET, USERNAME, Service


def json_or_text(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:200].decode(errors="replace")


class Api:
    """The HTTP API of a running :class:`Service`, through one aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, service: Service, deadline: Deadline) -> None:
        self.session = session
        self.service = service
        self.deadline = deadline
        self.base = service.base
        self.headers: dict[str, str] = {}

    async def login(self, account_error: str | None) -> None:
        form = {"request": "verifyUser", "clientCode": CLIENT_CODE, "username": USERNAME, "password": PASSWORD}
        try:
            async with self.session.post(f"{self.base}/api/", data=form, timeout=self.timeout()) as response:
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.failed("POST /api/ verifyUser", exc) from exc
        doc = json_or_text(raw)
        try:
            key = str(doc["records"][0]["sessionKey"])
        except (TypeError, KeyError, IndexError) as exc:
            why = f"; `account create` said: {account_error}" if account_error else ""
            raise BenchError(f"({self.service.label}) verifyUser failed: HTTP {response.status} {doc}{why}") from exc
        self.headers = {"clientCode": CLIENT_CODE, "sessionKey": key, "Content-Type": "application/json"}

    def timeout(self) -> aiohttp.ClientTimeout:
        """Up to 120 s per call, never much past the global deadline."""
        return aiohttp.ClientTimeout(total=max(1.0, min(120.0, self.deadline.remaining() + 1.0)))

    def failed(self, what: str, exc: Exception) -> BenchError:
        why = "no answer in time" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        exited = self.service.exited()
        gone = f"; {exited}" if exited is not None else ""
        return BenchError(f"({self.service.label}) {what}: {why}{gone}")

    async def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        url = f"{self.base}{path}"
        try:
            async with self.session.request(
                method, url, data=body, headers=self.headers, timeout=self.timeout()
            ) as response:
                return response.status, json_or_text(await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.failed(f"{method} {path}", exc) from exc

    async def configure(self, table: str, action: str, endpoint: str) -> None:
        """One configuration (table, action) → endpoint; earlier ones for the same pair are removed (shared store)."""
        status, existing = await self.call("GET", "/v1/webhook-configuration")
        if status != 200 or not isinstance(existing, list):
            raise BenchError(f"({self.service.label}) GET /v1/webhook-configuration: HTTP {status} {existing}")
        for config in existing:
            if config.get("table") == table and config.get("action") == action:
                await self.call("DELETE", f"/v1/webhook-configuration/{config['id']}")
        body = orjson.dumps({"table": table, "action": action, "endpoint": endpoint, "secret": SECRET})
        status, created = await self.call("POST", "/v1/webhook-configuration", body)
        if status != 200:
            raise BenchError(f"({self.service.label}) POST /v1/webhook-configuration: HTTP {status} {created}")

    async def post_events(self, body: bytes, items: int) -> tuple[int, int]:
        """POST /v1/event; (received, recorded), or a BenchError naming what the service answered."""
        try:
            async with self.session.post(
                f"{self.base}/v1/event", data=body, headers=self.headers, timeout=self.timeout()
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.failed("POST /v1/event", exc) from exc
        if status != 200:
            label = self.service.label
            if status in (404, 405):
                raise BenchError(
                    f"({label}) POST /v1/event answered {status}: this build of webhook-manager does not record "
                    "events yet (CONTRACT.md §5), so there is no pipeline to measure"
                )
            if status == 413:
                raise BenchError(
                    f"({label}) POST /v1/event refused {items} items ({len(body):,} bytes) with 413; "
                    "CONTRACT.md §5 allows up to 10000 items per call"
                )
            raise BenchError(f"({label}) POST /v1/event answered {status}: {json_or_text(raw)}")
        doc = json_or_text(raw)
        try:
            return int(doc["received"]), int(doc["recorded"])
        except (TypeError, KeyError, ValueError) as exc:
            raise BenchError(
                f"({self.service.label}) POST /v1/event: 200 without received/recorded: {doc!r:.200}"
            ) from exc
