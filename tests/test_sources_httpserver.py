"""The loopback test server itself: routing, sequences, recording, delays."""

from __future__ import annotations

import httpx
import pytest
from httpserver import LocalServer, RecordingSleep, Reply, header_values


async def test_sequence_then_last_reply_repeats(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    server.route("/x", Reply(500, b"first"), Reply(200, b"second", headers={"X-Test": "1"}))
    answers = [await client.get(f"{server.url}/x") for _ in range(3)]
    assert [(r.status_code, r.text) for r in answers] == [
        (500, "first"),
        (200, "second"),
        (200, "second"),
    ]
    assert answers[1].headers["x-test"] == "1"


async def test_unknown_path_is_404(server: LocalServer, client: httpx.AsyncClient) -> None:
    r = await client.get(f"{server.url}/nothing")
    assert (r.status_code, r.text) == (404, "no route")


async def test_records_requests_and_decodes_paths(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    server.route("/chart/^GSPC", b"ok")
    await client.get(
        f"{server.url}/chart/%5EGSPC", params={"a": "1", "b": ""}, headers={"User-Agent": "ua/1"}
    )
    (req,) = server.requests_to("/chart/^GSPC")
    assert req.method == "GET" and req.raw_path == "/chart/%5EGSPC?a=1&b="
    assert req.query == {"a": ["1"], "b": [""]}
    assert header_values(server.requests, "User-Agent") == ["ua/1"]


async def test_post_body_and_method_routes(server: LocalServer, client: httpx.AsyncClient) -> None:
    server.route("/bot/sendMessage", Reply(200, b'{"ok":true}'), method="POST")
    server.route("/bot/sendMessage", Reply(405), method="GET")
    posted = await client.post(f"{server.url}/bot/sendMessage", json={"text": "hi"})
    got = await client.get(f"{server.url}/bot/sendMessage")
    assert (posted.status_code, got.status_code) == (200, 405)
    assert server.requests[0].body == b'{"text":"hi"}'


async def test_route_again_replaces(server: LocalServer, client: httpx.AsyncClient) -> None:
    server.route("/x", Reply(500))
    server.route("/x", Reply(201))
    assert (await client.get(f"{server.url}/x")).status_code == 201


async def test_delay_causes_client_timeout(server: LocalServer) -> None:
    server.route("/slow", Reply(200, b"late", delay=1.0))
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.1)) as quick:
        with pytest.raises(httpx.ReadTimeout):
            await quick.get(f"{server.url}/slow")
    assert len(server.requests_to("/slow")) == 1


async def test_recording_sleep() -> None:
    sleep = RecordingSleep()
    await sleep(1.5)
    await sleep(0)
    assert sleep.delays == [1.5, 0]
