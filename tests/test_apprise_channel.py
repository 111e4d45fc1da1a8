"""The Apprise channel against a real HTTP server on 127.0.0.1.

Apprise's ``json://`` plugin is a generic webhook (it POSTs JSON with title
and message) and ``ntfy://host:port/topic`` speaks ntfy's HTTP API; both are
served here by ``tests/httpserver.py``, so every request crosses a socket and
goes through Apprise's own plugin code, not a double of it.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from _delivery import make_alert
from httpserver import LocalServer, Reply

from bot.app.cli import main
from bot.app.root import Root
from bot.app.settings import Settings
from bot.delivery.channels.apprise_urls import AppriseChannel
from bot.delivery.channels.base import (
    ChannelEnv,
    DeliveryRejected,
    DeliveryUnavailable,
    InvalidAddress,
    RecipientGone,
    RetryLater,
)
from bot.delivery.channels.registry import channel_classes, channel_for
from bot.delivery.outbox import Subscribers
from bot.kernel.alerts import Topic
from bot.kernel.errors import ConfigError
from bot.store import open_store

PNG = b"\x89PNG\r\n\x1a\n" + b"chart" * 10
WEBHOOK_TOKEN = "s3cretW3bhookT0ken"


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


def hook(server: LocalServer, path: str = "/hook") -> str:
    return f"json://127.0.0.1:{server.url.rsplit(':', 1)[1]}{path}"


def test_the_registry_finds_the_channel_without_being_told():
    assert "apprise" in [c.name for c in channel_classes()]
    assert channel_for("ntfy://ntfy.sh/alvh-alerts") == "apprise"
    assert channel_for(f"discord://1234567/{WEBHOOK_TOKEN}") == "apprise"
    assert channel_for("trader@example.com") == "email"


def test_addresses_are_checked_and_shown_without_their_secrets():
    with pytest.raises(InvalidAddress, match="not a URL Apprise understands"):
        AppriseChannel.normalize_address("pigeon://loft/7")
    url = f"discord://1234567/{WEBHOOK_TOKEN}"
    assert AppriseChannel.normalize_address(f"  {url} ") == url
    shown = AppriseChannel.shown_address(url)
    assert shown.startswith("discord://") and WEBHOOK_TOKEN not in shown


async def test_an_alert_reaches_a_webhook_with_title_and_text(server):
    server.route("/hook", Reply(200, b"{}"))
    await AppriseChannel().send(hook(server), make_alert(title="Layer 1 added", late=True))
    (req,) = server.requests_to("/hook")
    payload = json.loads(req.body)
    assert payload["title"] == "Layer 1 added"
    assert payload["message"].startswith("⏱ delivered late")
    assert "buy 2 VX futures (plain)" in payload["message"]


async def test_the_chart_goes_along_as_an_attachment_to_ntfy(server):
    server.route("/alvh", Reply(200, b'{"id":"x"}'))
    port = server.url.rsplit(":", 1)[1]
    alert = make_alert(Topic.SUMMARY, "daily_summary", "", chart=PNG, title="ALVH daily")
    await AppriseChannel().send(f"ntfy://127.0.0.1:{port}/alvh", alert)
    (req,) = server.requests_to("/alvh")
    assert req.body == PNG  # ntfy takes an attachment as the body, the text as parameters
    assert req.query["filename"] == ["alvh-chart.png"]
    assert req.query["title"] == ["ALVH daily"]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(404, b"not found"), RecipientGone),
        (Reply(410, b"gone"), RecipientGone),
        (Reply(400, b"bad"), DeliveryRejected),
        (Reply(429, b"slow down"), RetryLater),
        (Reply(500, b"oops"), DeliveryUnavailable),
        (Reply(503, b"down"), DeliveryUnavailable),
    ],
)
async def test_failures_map_onto_what_the_worker_does(server, reply, error):
    server.route(f"/{WEBHOOK_TOKEN}", reply)
    with pytest.raises(error) as info:
        await AppriseChannel(timeout=5).send(hook(server, f"/{WEBHOOK_TOKEN}"), make_alert())
    assert str(reply.status) in str(info.value)
    assert WEBHOOK_TOKEN not in str(info.value)  # the URL's secret never reaches a log


async def test_a_dead_host_is_temporary():
    with pytest.raises(DeliveryUnavailable):
        await AppriseChannel(timeout=2).send("json://127.0.0.1:9/hook", make_alert())


def test_with_no_settings_apprise_is_on_and_the_console_still_prints_everything(
    tmp_path, no_alvh_env
):
    settings = Settings(_env_file=None, data_dir=tmp_path)
    store = open_store(settings.store_url)
    try:
        delivery = Root(settings).delivery(store)
        assert sorted(c.name for c in delivery.channels) == ["apprise", "console"]
        assert "console: every alert is printed here" in delivery.described
    finally:
        store.close()


def test_admin_urls_get_ops_and_the_console_does_not(tmp_path, no_alvh_env, server):
    settings = Settings(_env_file=None, data_dir=tmp_path, apprise_admin_urls=[hook(server)])
    store = open_store(settings.store_url)
    try:
        delivery = Root(settings).delivery(store)
        assert [c.name for c in delivery.channels] == ["apprise"]
        assert any("1 admin URL(s) get ops" in line for line in delivery.described)
        setup = AppriseChannel.from_settings(settings, ChannelEnv())
        assert setup.admins == (hook(server),)
        assert "ALVH_APPRISE_ADMIN_URLS" not in settings.secret_values()
        assert hook(server) in settings.secret_values()  # redacted from every log line
    finally:
        store.close()


@pytest.mark.parametrize(("url", "why"), [
    (WEBHOOK_TOKEN, "not a URL (no “://”)"),
    (f"tgram:/123456:{WEBHOOK_TOKEN}/1234", "not a URL (no “://”)"),
    (f"x$y{WEBHOOK_TOKEN}://host/path", "not a URL Apprise understands (no scheme before"),
    ("pigeon://loft/7", "not a URL Apprise understands (scheme “pigeon”)"),
])
def test_a_bad_admin_url_names_the_variable_and_never_its_value(tmp_path, no_alvh_env,
                                                                url, why):
    settings = Settings(_env_file=None, data_dir=tmp_path,
                        apprise_admin_urls=[hook_url := "ntfy://ntfy.sh/ops", url])
    with pytest.raises(ConfigError) as err:
        AppriseChannel.from_settings(settings, ChannelEnv())
    message = str(err.value)
    assert message.startswith(f"ALVH_APPRISE_ADMIN_URLS (URL 2 of 2): {why}")
    assert WEBHOOK_TOKEN not in message and "loft" not in message and hook_url not in message


def test_an_address_no_channel_takes_is_not_echoed_past_its_scheme(capsys, no_alvh_env,
                                                                   tmp_path):
    no_alvh_env.setenv("ALVH_DATA_DIR", str(tmp_path))
    assert main(["subscribers", "add", f"discord//1234/{WEBHOOK_TOKEN}"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("alvh: no channel takes “discord…” (")
    assert WEBHOOK_TOKEN not in err


def test_a_subscriber_added_on_the_command_line_gets_the_snapshot_run(
    snapshot_dir: Path, no_alvh_env, server, capsys
):
    """`alvh subscribers add json://…` then `alvh run-once --source snapshot`: the webhook
    receives the condor alert and the daily summary, through the whole bot."""
    server.route("/hook", Reply(200, b"{}"))
    no_alvh_env.setenv("ALVH_DATA_DIR", str(snapshot_dir))
    assert main(["subscribers", "add", hook(server), "condor", "summary"]) == 0
    assert capsys.readouterr().out.startswith("apprise json://")
    assert main(["run-once", "--source", "snapshot"]) == 0
    out = capsys.readouterr().out
    assert "2 alert(s) stored" in out and "0 left" in out
    titles = sorted(json.loads(r.body)["title"] for r in server.requests_to("/hook"))
    assert titles == ["📊 ALVH daily · 2026-02-27", "🦅 CONDOR GO · 2026-02-27"]
    store = open_store(f"sqlite:///{snapshot_dir / 'alvh.sqlite'}")
    try:
        (sub,) = Subscribers(store.engine).all("apprise")
        assert sub.active and sub.topics == {Topic.CONDOR, Topic.SUMMARY}
    finally:
        store.close()


def test_a_deleted_webhook_deactivates_its_subscriber(snapshot_dir, no_alvh_env, server, capsys):
    server.route("/hook", Reply(404, b"Unknown Webhook"))
    no_alvh_env.setenv("ALVH_DATA_DIR", str(snapshot_dir))
    assert main(["subscribers", "add", hook(server), "summary"]) == 0
    assert main(["run-once", "--source", "snapshot"]) == 0
    capsys.readouterr()
    assert main(["subscribers", "list", "--channel", "apprise"]) == 0
    listing = capsys.readouterr().out
    assert "inactive" in listing and "404" in listing
    assert len(server.requests_to("/hook")) == 1  # never retried


def test_every_channel_reads_only_settings_that_exist():
    """Each channel declares the settings it reads in a Protocol; the app's Settings has them."""
    import typing

    settings = Settings(_env_file=None)
    for cls in channel_classes():
        hints = typing.get_type_hints(cls.from_settings)
        wanted = typing.get_type_hints(hints["settings"])
        missing = [name for name in wanted if not hasattr(settings, name)]
        assert not missing, f"{cls.name} reads settings that do not exist: {missing}"


def test_the_worker_drains_to_a_webhook(tmp_path, no_alvh_env, server):
    server.route("/hook", Reply(503, b"busy"), Reply(200, b"{}"))
    settings = Settings(_env_file=None, data_dir=tmp_path)
    store = open_store(settings.store_url)
    try:
        Subscribers(store.engine).subscribe("apprise", hook(server), [Topic.HEDGE])
        delivery = Root(settings).delivery(store, console=io.StringIO())
        delivery.outbox.enqueue([make_alert()])
        delivery.worker._backoff = type(delivery.worker._backoff)(initial=0.05)

        async def drain() -> None:
            async with asyncio.timeout(20):
                await delivery.worker.drain()

        asyncio.run(drain())
        (row,) = [r for r in delivery.outbox.queue.rows() if r.channel == "apprise"]
        assert row.status == "sent" and row.failures == 1 and "503" in (row.last_error or "")
        assert len(server.requests_to("/hook")) == 2  # the 503, then the delivery
    finally:
        store.close()
