"""The entry point: python -m bot, rules check wiring, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot import __version__
from bot.app.cli import main

BAD = Path(__file__).parent / "fixtures" / "rules"


@pytest.fixture(autouse=True)
def clean_env(no_alvh_env, tmp_path):
    no_alvh_env.chdir(tmp_path)  # no stray .env


def test_python_dash_m_bot_runs_the_same_entry_point():
    out = subprocess.run([sys.executable, "-m", "bot", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == f"alvh {__version__}"


def test_rules_check_default_and_bad_file(capsys):
    assert main(["rules", "check"]) == 0
    out = capsys.readouterr().out
    assert "layer1" in out and "sha256" in out.lower()
    bad = sorted(p for p in BAD.glob("*.yaml") if p.name != "valid_minimal.yaml")[0]
    assert main(["rules", "check", str(bad)]) == 1
    assert bad.name in capsys.readouterr().out


def test_configured_rules_file_is_used(monkeypatch, capsys):
    bad = sorted(p for p in BAD.glob("*.yaml") if p.name != "valid_minimal.yaml")[0]
    monkeypatch.setenv("ALVH_RULES_FILE", str(bad))
    assert main(["rules", "check"]) == 1
    assert main(["run-once", "--source", "snapshot", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("alvh: ") and bad.name in err


def test_bad_setting_stops_start_up_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("ALVH_CATCHUP_SESSIONS", "lots")
    assert main(["data", "status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ALVH_CATCHUP_SESSIONS" in err


def test_bad_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["indicators", "--from", "2024-13-01", "--to", "2024-12-31"])
    assert exc.value.code == 2
    assert "expected a date YYYY-MM-DD" in capsys.readouterr().err


def test_a_session_that_has_not_closed_is_refused(capsys):
    import datetime as dt

    from bot.kernel.sessions import ET, get_calendar

    cal = get_calendar()
    future = cal.session_on_or_after(dt.datetime.now(tz=ET).date() + dt.timedelta(days=400))
    assert main(["run-once", "--source", "snapshot", "--date", future.isoformat(),
                 "--dry-run"]) == 2
    close = cal.close_time(future)
    assert f"{future} has not closed yet (close {close:%H:%M %Z})" in capsys.readouterr().err


@pytest.mark.parametrize(("url", "expect"), [
    ("http://127.0.0.1:9", "must end with /bot, the Bot API's path the token is appended to "
                           "(e.g. http://127.0.0.1:9/bot)"),
    ("https://api.telegram.org", "must end with /bot"),
    ("api.telegram.org/bot", "must be an http(s) URL"),
])
def test_a_telegram_base_url_without_bot_is_refused_and_the_token_never_shown(
        monkeypatch, capsys, url, expect):
    """PTB appends the token to the base URL as it is: without /bot the token becomes the
    port, and URL errors would quote it (found by a newcomer's try-out)."""
    monkeypatch.setenv("ALVH_TELEGRAM_TOKEN", "123456:AAE-realLookingSecretPart")
    monkeypatch.setenv("ALVH_TELEGRAM_BASE_URL", url)
    assert main(["run-once", "--source", "snapshot", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("alvh: configuration error: ALVH_TELEGRAM_BASE_URL: ")
    assert expect in err and err.count("\n") == 1
    assert "AAE-realLookingSecretPart" not in err


def test_the_secret_half_of_the_token_is_redacted_alone(monkeypatch):
    from bot.app.settings import load_settings

    monkeypatch.setenv("ALVH_TELEGRAM_TOKEN", "123456:AAE-realLookingSecretPart")
    values = load_settings(env_file=None).secret_values()
    assert {"123456:AAE-realLookingSecretPart", "AAE-realLookingSecretPart"} <= set(values)


@pytest.mark.parametrize("kind", ["file", "missing"])
def test_a_secrets_dir_that_is_not_a_directory_is_one_line(tmp_path, capsys, kind):
    path = tmp_path / "secrets"
    if kind == "file":
        path.write_text("not a directory")
    assert main(["--secrets-dir", str(path), "rules", "check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"--secrets-dir {path}: {'a file' if kind == 'file' else 'no such directory'}" in err


def test_a_database_that_stops_answering_is_an_outage_not_a_bug(monkeypatch, capsys):
    """The leader exits when PostgreSQL goes away (a supervisor restarts it): one line
    naming the database with its password masked, and not "a bug: please report it"."""
    import sqlalchemy.exc

    from bot.app import cli

    def gone(*_: object) -> int:
        raise sqlalchemy.exc.OperationalError(
            "SELECT 1", {}, Exception("terminating connection due to administrator command"))

    monkeypatch.setenv("ALVH_DATABASE_URL", "postgresql://alvh:pa55word@db.internal/alvh")
    monkeypatch.setattr(cli.COMMANDS["subscribers"], "run", gone)
    assert main(["subscribers", "list"]) == 1
    err = capsys.readouterr().err
    assert err == ("alvh: the database stopped answering (postgresql://alvh:***@db.internal/alvh)"
                   ": terminating connection due to administrator command; exiting\n")


def test_an_empty_secrets_dir_is_refused_not_taken_for_the_working_directory(capsys):
    """deploy/systemd passes --secrets-dir "$CREDENTIALS_DIRECTORY": unset, it is empty."""
    with pytest.raises(SystemExit) as exit_:
        main(["--secrets-dir", "", "rules", "check"])
    assert exit_.value.code == 2
    assert "argument --secrets-dir: empty: name the directory of secret files" in \
        capsys.readouterr().err


def test_a_misspelt_rules_key_leads_with_the_suggestion(tmp_path, monkeypatch, capsys):
    """The typo gives two problems (unknown key, required key missing): the one line a
    command has room for shows the cause, with its "did you mean"."""
    default = Path(__file__).resolve().parents[1] / "rules" / "alvh.yaml"
    typo = tmp_path / "typo.yaml"
    typo.write_text(default.read_text(encoding="utf-8").replace(
        "  cooldown_sessions:", "  cooldown_session:", 1), encoding="utf-8")
    monkeypatch.setenv("ALVH_RULES_FILE", str(typo))
    monkeypatch.setenv("ALVH_DATA_DIR", str(tmp_path / "data"))
    assert main(["run-once", "--source", "snapshot", "--dry-run"]) == 2
    line = capsys.readouterr().err.splitlines()[-1]
    assert line.startswith(f"alvh: rules file refused: {typo}:")
    assert "hedge.cooldown_session: unknown key; did you mean `cooldown_sessions`?" in line
    assert line.endswith(f"(and 1 more problem; see `alvh rules check {typo}`)")
