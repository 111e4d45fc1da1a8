"""``alvh run`` as a whole: a real process, real HTTP, the real Telegram client.

- the Dockerfile's own entry command and environment, run outside Docker
  (CI has no Docker engine): health answers, alerts reach the console,
  SIGTERM stops it cleanly, and a second process on the same data is refused;
- in-process with the fake Bot API server: a subscriber receives the alerts
  of the catch-up, and /status and /why answer from the engine's real state.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fake_telegram import FakeTelegram
from pydantic import SecretStr

from bot.app.root import Root
from bot.app.runtime import run_service
from bot.app.settings import Settings
from bot.delivery.outbox import Subscribers
from bot.engine.rules import load_default_rules
from bot.kernel.alerts import Topic
from bot.kernel.errors import ConfigError
from bot.market.snapshot import STORE_NAME
from bot.store import open_store

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456:TEST-token-never-logged"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dockerfile_command() -> tuple[dict[str, str], list[str]]:
    """ENV, ENTRYPOINT and CMD of the runtime stage, as the image would run them."""
    text = (ROOT / "Dockerfile").read_text()
    runtime = text.split("FROM python:3.11-slim\n")[-1]
    env: dict[str, str] = {}
    for block in re.findall(r"^ENV (.+?)(?<!\\)$", runtime, flags=re.M | re.S):
        for pair in shlex.split(block.replace("\\\n", " ")):
            key, _, value = pair.partition("=")
            env[key] = value
    import json

    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", runtime, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", runtime, re.M).group(1))
    return env, entry + cmd


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ALVH_")}


def test_the_image_command_runs_answers_health_and_stops_on_sigterm(tmp_path):
    image_env, argv = dockerfile_command()
    assert argv == ["alvh", "run"]
    assert image_env["ALVH_HTTP_HOST"] == "0.0.0.0"  # what the image sets
    port = free_port()
    env = clean_env() | image_env | {
        "ALVH_DATA_DIR": str(tmp_path / "data"),  # the image's /data volume
        "ALVH_RULES_FILE": str(ROOT / "rules" / "alvh.yaml"),  # the image's /app/rules
        "ALVH_HTTP_HOST": "127.0.0.1",  # tests listen on loopback only
        "ALVH_HTTP_PORT": str(port),
        "ALVH_SOURCE": "snapshot",  # no network here
    }
    exe = [str(Path(sys.executable).parent / argv[0]), *argv[1:]]
    proc = subprocess.Popen(exe, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                body = r.json()
                if body.get("last_evaluated_session"):
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.5)
        assert body is not None and body["last_evaluated_session"] == "2026-02-27"
        assert r.status_code == 200 and body["source"] == "snapshot"
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        assert 'alvh_runs_total{outcome="late"} 1.0' in metrics
        # A second bot on the same data directory is refused.
        second = subprocess.run(exe, env=env | {"ALVH_HTTP_PORT": str(free_port())},
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "one alvh run per data directory" in second.stderr
        # Deliveries reach the console before the clean stop.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and 'channel="console"' not in metrics:
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            time.sleep(0.3)
        assert 'alvh_deliveries_total{channel="console",status="sent"} 2.0' in metrics
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "CONDOR GO · 2026-02-27" in out and "ALVH daily · 2026-02-27" in out
    assert "alvh run: stopping" in err and "0 deliveries pending" in err
    assert "ALVH_TELEGRAM_TOKEN not set" in err  # it says what is missing
    assert f"from {ROOT / 'rules' / 'alvh.yaml'} (ALVH_RULES_FILE)" in err  # the rules in force
    chart = tmp_path / "data" / "charts" / "2026-02-27-summary-daily_summary.png"
    assert f"[chart: {chart} (PNG, " in out and chart.read_bytes()[:4] == b"\x89PNG"


@pytest.fixture
def settings(snapshot_dir: Path, no_alvh_env) -> Settings:
    return Settings(_env_file=None, data_dir=snapshot_dir, source="snapshot",
                    http_port=0, admin_chat_ids=[900])


async def test_telegram_subscriber_gets_alerts_and_commands_answer(settings, snapshot_dir,
                                                                    caplog):
    store = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    # One subscriber store whatever the market source: the data directory's alvh.sqlite.
    main_store = open_store(settings.store_url)
    Subscribers(main_store.engine).subscribe("telegram", "501", [Topic.SUMMARY, Topic.CONDOR])
    main_store.close()
    with FakeTelegram(token=TOKEN) as fake:
        s = settings.model_copy(update={
            "telegram_token": SecretStr(TOKEN),
            "telegram_base_url": fake.base_url,
        })
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_service(Root(s), store, load_default_rules(), stop=stop))
        try:
            for _ in range(200):
                if len(fake.sent_to(501)) >= 2:
                    break
                await asyncio.sleep(0.05)
            fake.user_says(501, "/status")
            fake.user_says(501, "/why")
            fake.user_says(502, "/health")  # not an admin
            for _ in range(200):
                if len(fake.sent_to(501)) >= 4 and fake.sent_to(502):
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        texts = [m.text for m in fake.sent_to(501)]
        photos = [m for m in fake.sent_to(501) if m.method == "sendPhoto"]
    store.close()
    assert any("CONDOR GO · 2026-02-27" in t for t in texts)
    assert any("ALVH daily · 2026-02-27" in t for t in texts)
    assert photos and photos[0].photo[:8] == b"\x89PNG\r\n\x1a\n"  # the summary's chart
    assert any("Status after 2026-02-27" in t and "SPX: 6878.88" in t for t in texts)
    assert any("Why · 2026-02-27" in t and "layer1: not added" in t for t in texts)
    assert TOKEN not in caplog.text


async def test_paid_broadcast_cost_is_logged_and_shown_in_healthz_and_health(
        settings, snapshot_dir, caplog):
    """ALVH_TELEGRAM_PAID_BROADCAST: every fan-out message carries allow_paid_broadcast,
    the cost of each new alert (chats × messages × 0.1 Star) is logged, and /healthz and
    the admins' /health show it."""
    store = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    main_store = open_store(settings.store_url)
    subs = Subscribers(main_store.engine)
    for chat in (501, 502, 503):
        subs.subscribe("telegram", str(chat), [Topic.SUMMARY])
    main_store.close()
    port = free_port()
    caplog.set_level("INFO", logger="bot")
    with FakeTelegram(token=TOKEN) as fake:
        s = settings.model_copy(update={
            "telegram_token": SecretStr(TOKEN), "telegram_base_url": fake.base_url,
            "http_port": port, "telegram_paid_broadcast": True,
        })
        stop = asyncio.Event()
        task = asyncio.create_task(run_service(Root(s), store, load_default_rules(), stop=stop))
        try:
            await fake.wait_until(lambda: all(fake.sent_to(c) for c in (501, 502, 503)),
                                  within=60)
            for _ in range(100):
                status, body = await _healthz(port)
                if body["deliveries"]["pending"] == 0:
                    break
                await asyncio.sleep(0.1)
            assert status == 200
            fake.user_says(900, "/health")
            await fake.wait_until(lambda: bool(fake.sent_to(900)), within=30)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    store.close()
    paid = body["paid_broadcast"]
    fan_out = sum(len(fake.sent_to(c)) for c in (501, 502, 503))  # photo (+ text if long)
    assert fan_out >= 3 and fake.paid_messages == paid["messages_sent"] == fan_out
    assert paid["stars_per_message"] == 0.1
    assert paid["stars_spent"] == pytest.approx(0.1 * fan_out)
    (summary,) = [c for c in paid["recent_alerts"] if c["chats"] == 3]
    assert summary["messages"] == fan_out and summary["stars"] == pytest.approx(0.1 * fan_out)
    assert re.search(rf"paid broadcast: \S+ to 3 chat\(s\): {fan_out} message\(s\), "
                     rf"{0.1 * fan_out:.1f} Stars", caplog.text)
    (reply,) = [m.text for m in fake.sent_to(900) if "Health" in (m.text or "")]
    assert "paid_broadcast" in reply and "stars_spent" in reply
    assert TOKEN not in caplog.text


async def _healthz(port: int) -> tuple[int, dict]:
    async with httpx.AsyncClient(timeout=2) as client:
        r = await client.get(f"http://127.0.0.1:{port}/healthz")
        return r.status_code, r.json()


async def test_alvh_run_starts_without_telegram_and_delivers_when_it_comes_back(
    settings, snapshot_dir, caplog
):
    """Telegram unreachable at start: the bot runs anyway (scheduler, health), polling
    retries, /healthz shows the channel down, the logs name the server and not the
    token; when Telegram is back the subscriber gets every alert exactly once."""
    store = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    main_store = open_store(settings.store_url)
    Subscribers(main_store.engine).subscribe("telegram", "501", [Topic.SUMMARY, Topic.CONDOR])
    main_store.close()
    port = free_port()
    with FakeTelegram(token=TOKEN) as fake:
        fake.down()  # unreachable before the bot even starts
        s = settings.model_copy(update={
            "telegram_token": SecretStr(TOKEN), "telegram_base_url": fake.base_url,
            "http_port": port,
        })
        stop = asyncio.Event()
        task = asyncio.create_task(run_service(Root(s), store, load_default_rules(), stop=stop))
        try:
            body: dict = {}
            for _ in range(300):
                assert not task.done(), task.result()
                try:
                    status, body = await _healthz(port)
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
                    continue
                if (body.get("last_evaluated_session") and body["deliveries"]["pending"]
                        and body["channels"]["telegram"]["status"] == "down"):
                    break
                await asyncio.sleep(0.1)
            assert body["last_evaluated_session"] == "2026-02-27"  # the scheduler ran
            assert body["channels"]["telegram"]["status"] == "down"
            assert "127.0.0.1" in body["channels"]["telegram"]["last_error"]
            assert body["deliveries"]["pending"] >= 2 and status == 200  # not late yet
            fake.up()
            await fake.wait_until(lambda: len(fake.sent_to(501)) >= 2, within=60)
            for _ in range(100):
                status, body = await _healthz(port)
                if body["channels"]["telegram"]["status"] == "up" and \
                        body["deliveries"]["pending"] == 0:
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        titles = ("🦅 CONDOR GO · 2026-02-27", "📊 ALVH daily · 2026-02-27")
        per_alert = collections.Counter(t for m in fake.sent_to(501) for t in titles
                                        if t in m.text)
    store.close()
    assert status == 200 and body["deliveries"]["pending"] == 0
    assert body["channels"]["telegram"]["status"] == "up"
    assert per_alert == {"🦅 CONDOR GO · 2026-02-27": 1, "📊 ALVH daily · 2026-02-27": 1}
    reach = [r.getMessage() for r in caplog.records if "cannot reach the Bot API" in r.getMessage()]
    assert reach and f"at {fake.base_url.split('//')[1].split('/')[0]}" in reach[0]
    assert "ALVH_TELEGRAM_TOKEN" not in caplog.text  # not blamed on the token
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text


async def test_a_rejected_token_stops_alvh_run_with_one_line(settings, snapshot_dir, caplog):
    store = open_store(f"sqlite:///{snapshot_dir / STORE_NAME}")
    with FakeTelegram(token="999:the-right-one") as fake:
        s = settings.model_copy(update={
            "telegram_token": SecretStr(TOKEN), "telegram_base_url": fake.base_url,
        })
        with pytest.raises(ConfigError) as info:
            await asyncio.wait_for(run_service(Root(s), store, load_default_rules()), 60)
    store.close()
    assert str(info.value) == ("ALVH_TELEGRAM_TOKEN: Telegram rejected the bot token "
                               "(401 Unauthorized); copy it again from @BotFather")
    assert TOKEN.split(":")[1] not in caplog.text
