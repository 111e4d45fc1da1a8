"""Settings: env vars, .env, secrets directory, one-line errors, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app.settings import load_settings
from bot.kernel.errors import ConfigError

pytestmark = pytest.mark.usefixtures("no_alvh_env")


def test_defaults_need_nothing(tmp_path):
    s = load_settings(env_file=None, secrets_dir=tmp_path)
    assert s.data_dir == Path("./var")
    assert s.store_url == "sqlite:///var/alvh.sqlite"
    assert s.source == "live" and s.telegram_token is None
    assert any("ALVH_TELEGRAM_TOKEN" in m for m in s.missing())


def test_env_dotenv_and_secrets_dir(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("ALVH_DATA_DIR=/srv/alvh\nALVH_ADMIN_CHAT_IDS=11, 22\n")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "alvh_telegram_token").write_text("123:abc-from-secret")
    monkeypatch.setenv("ALVH_HTTP_PORT", "9090")
    s = load_settings(env_file=env, secrets_dir=secrets)
    assert s.data_dir == Path("/srv/alvh")
    assert s.admin_chat_ids == [11, 22]
    assert s.http_port == 9090
    assert s.telegram_token is not None
    assert s.telegram_token.get_secret_value() == "123:abc-from-secret"
    assert "abc-from-secret" not in repr(s) and "abc-from-secret" not in str(s.model_dump())


def test_env_overrides_dotenv(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("ALVH_CAPITAL=5000\n")
    monkeypatch.setenv("ALVH_CAPITAL", "250000")
    assert load_settings(env_file=env, secrets_dir=tmp_path).capital == 250000


@pytest.mark.parametrize(
    ("var", "value", "expect"),
    [
        ("ALVH_HTTP_PORT", "eighty", "ALVH_HTTP_PORT: Input should be a valid integer"),
        ("ALVH_SOURCE", "yahoo", "ALVH_SOURCE: Input should be 'live' or 'snapshot'"),
        ("ALVH_CAPITAL", "-5", "ALVH_CAPITAL: Input should be greater than 0"),
        ("ALVH_ADMIN_CHAT_IDS", "12,abc", "ALVH_ADMIN_CHAT_IDS"),
    ],
)
def test_invalid_setting_is_one_line_naming_the_variable(tmp_path, monkeypatch, var, value, expect):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None, secrets_dir=tmp_path)
    msg = str(err.value)
    assert expect in msg
    assert "\n" not in msg


def test_bad_secret_value_is_not_echoed(tmp_path, monkeypatch):
    monkeypatch.setenv("ALVH_HTTP_PORT", "x")
    monkeypatch.setenv("ALVH_TELEGRAM_TOKEN", "999:TOPSECRET")
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None, secrets_dir=tmp_path)
    assert "TOPSECRET" not in str(err.value)


def test_a_database_password_is_masked_and_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("ALVH_DATABASE_URL", "postgresql://alvh:pa55word@db.internal/alvh")
    s = load_settings(env_file=None, secrets_dir=tmp_path)
    assert s.store_url_shown == "postgresql://alvh:***@db.internal/alvh"
    assert "pa55word" in s.secret_values()  # so the log handler redacts it too


def test_replicas_with_email_must_share_one_unsubscribe_key(tmp_path, monkeypatch):
    """On PostgreSQL each instance has its own data directory: a generated key would
    differ between them and a link mailed by one would be refused by the other."""
    monkeypatch.setenv("ALVH_DATABASE_URL", "postgresql://alvh:pa55word@db.internal/alvh")
    monkeypatch.setenv("ALVH_SMTP_HOST", "smtp.example.com")
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None, secrets_dir=tmp_path)
    assert str(err.value).startswith("ALVH_UNSUBSCRIBE_SECRET: required")
    assert "pa55word" not in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setenv("ALVH_UNSUBSCRIBE_SECRET", "one-key-for-every-replica")
    assert load_settings(env_file=None, secrets_dir=tmp_path).unsubscribe_secret is not None
    monkeypatch.delenv("ALVH_UNSUBSCRIBE_SECRET")
    monkeypatch.delenv("ALVH_DATABASE_URL")  # SQLite: one instance, a generated key is fine
    assert load_settings(env_file=None, secrets_dir=tmp_path).unsubscribe_secret is None


@pytest.mark.parametrize("where", [".env", "secrets"])
def test_a_binary_settings_file_is_one_line_naming_it(tmp_path, where):
    env = tmp_path / ".env"
    env.write_text("ALVH_CAPITAL=5000\n")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    bad = env if where == ".env" else secrets / "alvh_telegram_token"
    bad.write_bytes(b"not a valid line\n\x00\xff")
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=env, secrets_dir=secrets)
    hold = "NAME=value lines" if where == ".env" else "the value alone, as text"
    assert str(err.value) == (f"{bad}: not UTF-8 text (byte 0xff at offset 18); this file "
                              f"holds {hold}")


@pytest.mark.parametrize("value", ["123456:ABCdef\x00SECRETpart", "123456:ABC def",
                                   "123456:ABC\tdefSECRET"])
def test_a_token_with_a_control_character_is_refused_without_showing_it(tmp_path, value):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "alvh_telegram_token").write_text(value + "\n")  # a NUL cannot be in env
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None, secrets_dir=secrets)
    assert str(err.value).startswith("ALVH_TELEGRAM_TOKEN: contains a space or a control "
                                     "character: not a bot token")
    assert "ABC" not in str(err.value)


def test_a_token_keeps_working_with_a_trailing_line_break(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "alvh_telegram_token").write_text("123456:ABCdef-_x\n")
    token = load_settings(env_file=None, secrets_dir=secrets).telegram_token
    assert token is not None and token.get_secret_value() == "123456:ABCdef-_x"


@pytest.mark.parametrize("capital", ["inf", "nan", "1e30"])
def test_an_impossible_capital_is_a_setting_error(tmp_path, monkeypatch, capital):
    monkeypatch.setenv("ALVH_CAPITAL", capital)
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None, secrets_dir=tmp_path)
    assert str(err.value).startswith("ALVH_CAPITAL: ")


def test_a_variable_set_but_empty_is_its_default(tmp_path, monkeypatch):
    """``ALVH_DATA_DIR="$UNSET"`` must not put the store in the working directory."""
    monkeypatch.setenv("ALVH_DATA_DIR", "")
    monkeypatch.setenv("ALVH_RULES_FILE", "")
    s = load_settings(env_file=None, secrets_dir=tmp_path)
    assert s.data_dir == Path("./var")
    assert s.rules_file is None or s.rules_file.name == "alvh.yaml"


def test_an_alvh_variable_that_is_no_setting_is_named_with_what_it_meant(tmp_path):
    from bot.app.settings import unknown_variables

    env = tmp_path / ".env"
    env.write_text("ALVH_SMTP_HOTS=mail.example.com\nALVH_CAPITAL=5000\n")
    environ = {"ALVH_TELEGRAM_TOKN": "123:abc", "ALVH_HTTP_PORT": "8080", "HOME": "/root",
               "ALVH_TEST_POSTGRES_URL": "postgresql://x", "ALVH_WHATEVER_THIS_IS": "1"}
    assert unknown_variables(environ, env) == [
        "ALVH_SMTP_HOTS is not a setting alvh reads; it is ignored (did you mean "
        "ALVH_SMTP_HOST?)",
        "ALVH_TELEGRAM_TOKN is not a setting alvh reads; it is ignored (did you mean "
        "ALVH_TELEGRAM_TOKEN?)",
        "ALVH_WHATEVER_THIS_IS is not a setting alvh reads; it is ignored",
    ]
    assert unknown_variables({"alvh_capital": "1"}) == []  # names are not case-sensitive


def test_the_cli_warns_about_a_mistyped_variable_and_still_runs(tmp_path, monkeypatch, capsys):
    from bot.app.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALVH_TELEGRAM_TOKN", "123:abcdefghSECRET")
    assert main(["rules", "check"]) == 0
    err = capsys.readouterr().err
    assert "WARNING bot.app.cli: ALVH_TELEGRAM_TOKN is not a setting alvh reads; it is " \
           "ignored (did you mean ALVH_TELEGRAM_TOKEN?)" in err
    assert "SECRET" not in err
