"""The outbox: alerts stored before sending, idempotent fan-out, subscriber management."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from _delivery import make_alert, store_at

from bot.delivery.outbox import InvalidSubscription, Outbox, Standing, Subscribers, parse_topics
from bot.kernel.alerts import Topic
from bot.store import schema as t
from bot.store.schema import MIGRATIONS

pytestmark = pytest.mark.usefixtures("store_lane")  # a SQLite file, then PostgreSQL


@pytest.fixture
def db(tmp_path: Path) -> sa.Engine:
    store = store_at(tmp_path / "alvh.sqlite")
    yield store.engine
    store.close()


def _deliveries(engine: sa.Engine) -> list[tuple[str, str, str, str]]:
    d = t.deliveries
    q = sa.select(d.c.alert_key, d.c.channel, d.c.recipient, d.c.status).order_by(d.c.id)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(q)]


def admins(channel: str, *addresses: int) -> list[Standing]:
    return [Standing(channel, str(a), frozenset({Topic.OPS})) for a in addresses]


def test_standing_recipients_need_their_channel(db: sa.Engine) -> None:
    with pytest.raises(ValueError, match="not configured: telegram"):
        Outbox(db, channels=("email",), standing=admins("telegram", 900))


def test_migration_3_creates_the_outbox_tables(db: sa.Engine) -> None:
    assert MIGRATIONS[2][:2] == (3, "outbox, deliveries, subscribers")
    names = set(sa.inspect(db).get_table_names())
    assert {"alerts", "deliveries", "subscribers"} <= names


def test_fan_out_follows_topics_and_channels(db: sa.Engine) -> None:
    subs = Subscribers(db)
    subs.subscribe("telegram", "101", [Topic.HEDGE, Topic.SUMMARY])
    subs.subscribe("telegram", "102", [Topic.CONDOR])
    subs.subscribe("email", "Ann@Example.COM", [Topic.HEDGE])
    outbox = Outbox(db, channels=("telegram", "email"), standing=admins("telegram", 900))

    hedge = make_alert(Topic.HEDGE)
    assert outbox.enqueue([hedge]) == [hedge.key]

    rows = _deliveries(db)
    assert {(channel, recipient) for _, channel, recipient, _ in rows} == {
        ("telegram", "101"),
        ("email", "Ann@example.com"),
    }
    assert all(status == "pending" for *_, status in rows)
    stored = outbox.alert(hedge.key)
    assert stored == hedge


def test_ops_goes_to_admin_chats_only(db: sa.Engine) -> None:
    subs = Subscribers(db)
    subs.subscribe("telegram", "101", [Topic.HEDGE, Topic.SUMMARY, Topic.CONDOR, Topic.WARNING])
    outbox = Outbox(db, channels=("telegram", "email"), standing=admins("telegram", 900, 901, 900))
    ops = make_alert(Topic.OPS, "data_incomplete", "")
    outbox.enqueue([ops])
    assert [(c, r) for _, c, r, _ in _deliveries(db)] == [("telegram", "900"), ("telegram", "901")]


def test_enqueue_is_idempotent(db: sa.Engine) -> None:
    Subscribers(db).subscribe("telegram", "101", [Topic.HEDGE, Topic.CONDOR])
    outbox = Outbox(db, channels=("telegram",))
    alerts = [make_alert(Topic.HEDGE), make_alert(Topic.CONDOR, "condor_go", "")]
    assert outbox.enqueue(alerts) == [a.key for a in alerts]
    first = _deliveries(db)

    # The same session evaluated again (a re-run, a restart, a duplicate in one batch):
    again = Outbox(db, channels=("telegram",))
    assert again.enqueue(alerts + alerts) == []
    assert _deliveries(db) == first
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.alerts)).scalar() == 2


def test_console_gets_every_alert_when_configured(db: sa.Engine) -> None:
    everything = Standing("console", "console", frozenset(Topic))
    outbox = Outbox(db, channels=("console",), standing=[everything])
    outbox.enqueue([make_alert(Topic.SUMMARY, "daily_summary", ""), make_alert(Topic.OPS, "x", "")])
    assert [(c, r) for _, c, r, _ in _deliveries(db)] == [("console", "console")] * 2


def test_unconfigured_channels_get_no_rows(db: sa.Engine) -> None:
    subs = Subscribers(db)
    subs.subscribe("email", "a@example.com", [Topic.HEDGE])
    subs.subscribe("telegram", "5", [Topic.HEDGE])
    outbox = Outbox(db, channels=("email",))
    outbox.enqueue([make_alert(Topic.HEDGE), make_alert(Topic.OPS, "x", "")])
    assert [(c, r) for _, c, r, _ in _deliveries(db)] == [("email", "a@example.com")]


def test_an_alert_nobody_subscribes_to_is_a_warning(
        db: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    """A new operator with a token and no subscribers yet: the alert is stored, and the
    log says loudly that it reaches nobody (not an INFO line about 0 recipients)."""
    Subscribers(db).subscribe("telegram", "5", [Topic.HEDGE])
    outbox = Outbox(db, channels=("telegram",))
    alert, hedge = make_alert(Topic.CONDOR), make_alert(Topic.HEDGE, "layer_removed")
    with caplog.at_level("INFO", logger="bot.delivery.outbox"):
        assert outbox.enqueue([alert, hedge]) == [alert.key, hedge.key]  # both stored
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"outbox: {alert.key} reaches nobody: no active subscriber of topic "
                        "'condor' on any channel (/start in Telegram, or alvh subscribers add)"]


def test_subscriber_management(db: sa.Engine) -> None:
    subs = Subscribers(db)
    ann = subs.subscribe("email", " ann@Example.org ", parse_topics(["hedge,condor"]))
    assert ann.address == "ann@example.org"
    assert ann.topics == {Topic.HEDGE, Topic.CONDOR}
    assert subs.unsubscribe("email", "ann@example.org", [Topic.CONDOR]).topics == {Topic.HEDGE}
    assert subs.toggle("telegram", "42", Topic.WARNING).topics == {Topic.WARNING}
    assert subs.toggle("telegram", "42", Topic.WARNING).topics == frozenset()

    assert subs.remove("email", "ann@example.org") is True
    assert subs.remove("email", "nobody@example.org") is False
    listed = {(s.channel, s.address): s for s in subs.all()}
    assert listed["email", "ann@example.org"].active is False
    assert listed["email", "ann@example.org"].deactivated_reason == "removed"
    assert [s.address for s in subs.all(include_inactive=False)] == ["42"]

    # Coming back reactivates the same row instead of creating a second one.
    back = subs.subscribe("email", "ann@example.org", [Topic.SUMMARY])
    assert back.active and back.deactivated_reason is None
    assert back.topics == {Topic.HEDGE, Topic.SUMMARY}
    assert len(subs.all("email")) == 1


def test_removed_subscriber_gets_nothing_and_pending_is_skipped(db: sa.Engine) -> None:
    subs = Subscribers(db)
    subs.subscribe("email", "ann@example.org", [Topic.HEDGE])
    outbox = Outbox(db, channels=("email",))
    outbox.enqueue([make_alert(Topic.HEDGE)])
    subs.remove("email", "ann@example.org")
    assert [s for *_, s in _deliveries(db)] == ["skipped"]
    outbox.enqueue([make_alert(Topic.HEDGE, layer="L2")])
    assert len(_deliveries(db)) == 1


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["hedges"], "unknown topic “hedges”; topics: condor, hedge, warning, summary"),
        (["ops"], "“ops” is not a subscribable topic (admins receive it automatically)"),
    ],
)
def test_bad_topics_are_one_line_errors(words: list[str], message: str) -> None:
    with pytest.raises(InvalidSubscription) as info:
        parse_topics(words)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_all_means_every_subscribable_topic() -> None:
    assert parse_topics(["ALL"]) == {Topic.CONDOR, Topic.HEDGE, Topic.WARNING, Topic.SUMMARY}


@pytest.mark.parametrize(
    ("channel", "address"),
    [("email", "not-an-address"), ("email", "a@b"), ("telegram", "@user"), ("sms", "123")],
)
def test_bad_addresses_are_refused(db: sa.Engine, channel: str, address: str) -> None:
    with pytest.raises(InvalidSubscription):
        Subscribers(db).subscribe(channel, address, [Topic.HEDGE])


def test_ops_cannot_be_subscribed(db: sa.Engine) -> None:
    with pytest.raises(InvalidSubscription):
        Subscribers(db).subscribe("telegram", "1", [Topic.OPS])


def test_ops_can_go_to_the_console_when_no_admin_is_configured(db: sa.Engine) -> None:
    Subscribers(db).subscribe("telegram", "5", [Topic.HEDGE])
    ops_only = Standing("console", "console", frozenset({Topic.OPS}))
    outbox = Outbox(db, channels=("telegram", "console"), standing=[ops_only])
    outbox.enqueue([make_alert(Topic.HEDGE), make_alert(Topic.OPS, "x", "")])
    rows = [(k.split("|")[1], c, r) for k, c, r, _ in _deliveries(db)]
    assert rows == [("hedge", "telegram", "5"), ("ops", "console", "console")]
