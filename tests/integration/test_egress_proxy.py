"""Delivery through an egress proxy (issue 15, item 7): every try goes through it, but to hosts of
``egress_no_proxy``; endpoints are checked by the service itself before anything reaches the proxy.

A real forward proxy (tests/forward_proxy.py) and real receivers, on 127.0.0.1. The tests that need the SSRF guard
on name public hosts (a literal public address, or a name a fake resolver maps to one), and the proxy sends those
to the local receiver (its ``upstream``), as a proxy that resolves names its own way would."""

from __future__ import annotations

import base64
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from standardwebhooks import Webhook

from tests.clock import FakeClock
from tests.forward_proxy import ForwardProxy
from tests.integration.pipeline_helpers import add_configuration, record
from tests.receiver import Receiver
from webhook_manager.delivery.egress import Answer, Egress
from webhook_manager.delivery.pipeline import Pipeline
from webhook_manager.domain.model import WebhookStatus
from webhook_manager.settings import Settings
from webhook_manager.store import Store

PASSWORD = "s3cret/pw"  # sent percent-encoded in the setting, never shown
PROXY_USER = "wm:s3cret%2Fpw"
BASIC = "Basic " + base64.b64encode(b"wm:" + PASSWORD.encode()).decode()


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    p = ForwardProxy()
    await p.start()
    yield p
    await p.stop()


def make_settings(tmp_path: Path, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'wm.db'}",
        "allow_private_endpoints": True,
        "batch_linger_ms": 0,
        "retry_delay_s": 0,
        "retries": 0,
    }
    return Settings(**{**base, **changes})


async def deliver(store: Store, settings: Settings) -> None:
    p = Pipeline(store, settings)
    await p.egress.start()
    try:
        await p.run_once()
    finally:
        await p.egress.close()


async def failures(store: Store) -> dict[str, str]:
    return {w.table: w.last_failure for w in await store.list_webhooks("100", None, None, 100)}


class FakeResolver(AbstractResolver):
    """Names to addresses, as a DNS server would answer; other names do not resolve."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        if host not in self.names:
            raise OSError(f"no such name: {host}")
        address = self.names[host]
        kind = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [ResolveResult(hostname=host, host=address, port=port, family=kind, proto=0, flags=0)]

    async def close(self) -> None:
        pass


async def test_webhooks_go_through_the_proxy_and_arrive_whole(
    tmp_path: Path, store: Store, receiver: Receiver, proxy: ForwardProxy
) -> None:
    await add_configuration(store, receiver.url("/ok/a"), secret="s3cr3t")
    await record(store, range(3))
    await deliver(store, make_settings(tmp_path, egress_proxy=proxy.url(PROXY_USER)))
    # An absolute-URI request to the proxy, with the proxy's credentials
    assert [(r.method, r.target) for r in proxy.requests] == [("POST", receiver.url("/ok/a"))]
    assert proxy.requests[0].headers["Proxy-Authorization"] == BASIC
    (got,) = receiver.received
    assert [item["rowId"] for item in got.json["items"]] == [0, 1, 2]
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"].startswith("webhook-manager/")
    Webhook(b"s3cr3t").verify(got.body, got.headers)
    (w,) = await store.list_webhooks("100", None, None, 100)
    assert (w.status, w.tries, w.last_failure) == (WebhookStatus.SENT, 1, "")


async def test_hosts_of_no_proxy_go_direct(
    tmp_path: Path, store: Store, receiver: Receiver, proxy: ForwardProxy
) -> None:
    port = receiver.base.rpartition(":")[2]
    await add_configuration(store, receiver.url("/ok/ip"))  # http://127.0.0.1:port
    await add_configuration(store, f"http://localhost:{port}/ok/name", table="a")
    await record(store, range(1))
    await record(store, range(1), table="a")
    settings = make_settings(tmp_path, egress_proxy=proxy.url(), egress_no_proxy=".internal, 127.0.0.1,localhost")
    await deliver(store, settings)
    assert sorted(r.path for r in receiver.received) == ["/ok/ip", "/ok/name"]
    assert (proxy.connections, proxy.requests) == (0, [])


async def test_private_endpoints_are_refused_before_anything_reaches_the_proxy(
    tmp_path: Path, store: Store, receiver: Receiver, proxy: ForwardProxy
) -> None:
    port = receiver.base.rpartition(":")[2]
    # Inserted into the store directly: the API refuses them at configuration time.
    await add_configuration(store, receiver.url("/ok/literal"))
    await add_configuration(store, f"http://localhost:{port}/ok/name", table="a")
    await add_configuration(store, f"https://localhost:{port}/ok/tls", table="b")
    await add_configuration(store, "http://[::ffff:10.0.0.1]/hook", table="c")
    for table in ("product", "a", "b", "c"):
        await record(store, range(1), table=table)
    # The proxy itself is on loopback: the proxy's own address may be private
    await deliver(store, make_settings(tmp_path, allow_private_endpoints=False, egress_proxy=proxy.url()))
    found = await failures(store)
    assert found["product"] == "blocked: 127.0.0.1 is a loopback address"
    for table in ("a", "b"):
        assert found[table].startswith("blocked: localhost resolves to ")
        assert found[table].endswith(", a loopback address")
    assert found["c"] == "blocked: ::ffff:a00:1 is a private address"
    assert (proxy.connections, proxy.requests) == (0, [])
    assert receiver.received == []


async def test_a_name_is_checked_here_and_resolved_again_by_the_proxy(receiver: Receiver) -> None:
    proxy = ForwardProxy(upstream=receiver.base)
    await proxy.start()
    names = {"hooks.example.com": "93.184.215.14", "rebound.example.com": "10.0.0.1"}
    egress = Egress(
        timeout_s=5.0,
        accept_any_2xx=False,
        allow_private=False,
        proxy=f"http://localhost:{proxy.port}",  # a name resolving to loopback: the proxy may be private
        resolver=FakeResolver(names),
    )
    await egress.start()
    try:
        assert await egress.post("http://hooks.example.com/ok/name", b"{}", {}) == Answer(200, "")
        assert await egress.post("http://1.1.1.1:8080/ok/literal", b"{}", {}) == Answer(200, "")
        rebound = await egress.post("http://rebound.example.com/ok/private", b"{}", {})
        unknown = await egress.post("http://nowhere.example.com/ok/unknown", b"{}", {})
    finally:
        await egress.close()
        await proxy.stop()
    assert rebound == Answer(
        None, "blocked: rebound.example.com resolves to 10.0.0.1, a private address", outcome="blocked"
    )
    assert unknown == Answer(None, "cannot resolve nowhere.example.com", outcome="connection")
    # The proxy is given the name, not the address checked here: it resolves the name again.
    assert [r.target for r in proxy.requests] == ["http://hooks.example.com/ok/name", "http://1.1.1.1:8080/ok/literal"]
    assert [r.path for r in receiver.received] == ["/ok/name", "/ok/literal"]


async def test_a_proxy_that_cannot_be_reached_fails_the_try_in_plain_words_and_it_is_retried(
    tmp_path: Path, store: Store, receiver: Receiver, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="webhook_manager")
    down = ForwardProxy()
    await down.start()
    port = down.port
    await down.stop()  # nothing listens on its port now
    settings = make_settings(
        tmp_path, egress_proxy=f"http://{PROXY_USER}@127.0.0.1:{port}", retries=1, retry_delay_s=0.01
    )
    await add_configuration(store, receiver.url("/ok/a"), clock=clock)
    await record(store, range(1), clock=clock)
    p = Pipeline(store, settings, clock)
    await p.batcher.run_once()
    await p.egress.start()
    back = ForwardProxy()
    try:
        await p.dispatcher.run_once()
        (w,) = await store.list_webhooks("100", None, None, 100)
        refused = f"cannot reach the egress proxy 127.0.0.1:{port}: connection refused"
        assert (w.status, w.tries, w.last_failure) == (WebhookStatus.RETRYING, 1, refused)
        await back.start(port)  # the proxy is back, on its port
        clock.advance(50)  # the retry comes due (after 10 ms ± 20 %)
        await p.dispatcher.run_once()
    finally:
        await p.egress.close()
        await back.stop()
    found = await store.get_webhook("100", w.id)
    assert found is not None
    assert found[0].status == WebhookStatus.SENT
    assert [(a.http_status, a.error) for a in found[2]] == [(None, refused), (200, "")]
    assert [r.target for r in back.requests] == [receiver.url("/ok/a")]
    assert len(receiver.received) == 1
    assert refused in caplog.text  # the failed try is logged in the same words
    assert PASSWORD not in caplog.text
    assert "s3cret" not in caplog.text


async def test_an_https_endpoint_goes_through_a_connect_tunnel(receiver: Receiver, proxy: ForwardProxy) -> None:
    """No TLS receiver here (neither ``cryptography`` nor ``trustme`` is installed): the tunnel reaches the plain
    HTTP receiver, whose answer to the TLS handshake is no TLS, so the try fails as a TLS error."""
    port = receiver.base.rpartition(":")[2]
    egress = Egress(timeout_s=5.0, accept_any_2xx=False, allow_private=True, proxy=proxy.url(PROXY_USER))
    await egress.start()
    try:
        tls = await egress.post(f"https://127.0.0.1:{port}/ok/tls", b"{}", {})
        closed = await egress.post("https://127.0.0.1:9/ok/closed", b"{}", {})  # nothing listens on port 9
    finally:
        await egress.close()
    assert [(r.method, r.target) for r in proxy.requests] == [
        ("CONNECT", f"127.0.0.1:{port}"),
        ("CONNECT", "127.0.0.1:9"),
    ]
    assert all(r.headers["Proxy-Authorization"] == BASIC for r in proxy.requests)
    assert (tls.status, tls.outcome) == (None, "connection")
    assert tls.error.startswith("TLS error: ")
    assert receiver.received == []  # the handshake never became a request
    assert closed == Answer(
        None, f"the egress proxy 127.0.0.1:{proxy.port} answered HTTP 502 to CONNECT", outcome="connection"
    )


async def test_a_request_on_a_connection_the_proxy_closed_goes_on_a_new_one(
    receiver: Receiver, proxy: ForwardProxy
) -> None:
    """As tests/integration/test_keep_alive.py, with the proxy's keep-alive running out: a request not written on
    the connection to the proxy cannot have reached it, so it goes again on a new connection, in the same try."""
    egress = Egress(timeout_s=5.0, accept_any_2xx=False, allow_private=True, proxy=proxy.url())
    await egress.start()
    try:
        answers, closed = [], 0
        for n in range(6):
            closed += proxy.close_kept_alive()  # the loop has not seen it: the pool still holds the connection
            answers.append(await egress.post(receiver.url("/ok/a"), b'{"n":%d}' % n, {}))
    finally:
        await egress.close()
    assert closed == 3
    assert answers == [Answer(200, "")] * 6
    assert len(proxy.requests) == 6  # each reached the proxy once
    assert [r.body for r in receiver.received] == [b'{"n":%d}' % n for n in range(6)]
