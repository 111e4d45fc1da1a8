"""Every bad input of issue 11 gets one line naming what and where, no traceback, exit ≠ 0.

Each case runs the real entry point (:func:`bot.app.cli.main`) with the
environment and files a user would have. Log lines (a fresh store says which
migrations it applied) may come before; exactly one other line may be
printed, and it is the error.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.app.cli import main

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \w+ (DEBUG|INFO|WARNING|ERROR) ")
ROOT = Path(__file__).resolve().parents[1]


def _binary(tmp: Path) -> list[str]:
    path = tmp / "export.csv"
    path.write_bytes(bytes(range(256)) * 8)  # what a zip or a spreadsheet looks like
    return ["data", "import", str(path)]


def _csv(name: str, body: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        path = tmp / name
        path.write_text(body)
        return ["data", "import", "--symbol", "SPX", str(path)]

    return make


def _file_as_data_dir(tmp: Path) -> dict[str, str]:
    (tmp / "afile").write_text("not a directory")
    return {"ALVH_DATA_DIR": str(tmp / "afile")}


def _no_permission(tmp: Path) -> dict[str, str]:
    """A directory this user may not create: in a read-only one, or (root passes every
    permission check) in sysfs, where the kernel refuses."""
    if os.geteuid() == 0:
        return {"ALVH_DATA_DIR": "/sys/alvh-data"}
    locked = tmp / "locked"
    locked.mkdir(mode=0o555)
    return {"ALVH_DATA_DIR": str(locked / "data")}


Case = tuple[
    Callable[[Path], list[str]], Callable[[Path], dict[str, str]] | None, str, bool]
"""argv (given a scratch dir), extra environment, what the line must say, needs the
snapshot store in the data directory."""

CASES: dict[str, Case] = {
    "run-once outside the calendar": (
        lambda t: ["run-once", "--date", "1950-01-01"], None,
        "alvh: --date 1950-01-01 is outside the NYSE session calendar (1965-01-01..", False),
    "data check outside the calendar": (
        lambda t: ["data", "check", "--date", "1950-01-01"], None,
        "alvh: --date 1950-01-01 is outside the NYSE session calendar (1965-01-01..", False),
    "indicators with no session": (
        lambda t: ["indicators", "--from", "2026-01-03", "--to", "2026-01-04"], None,
        "alvh: no NYSE session between 2026-01-03 and 2026-01-04", False),
    "indicators on an empty store": (
        lambda t: ["indicators", "--from", "2026-01-05", "--to", "2026-01-09"], None,
        "alvh: the store has no SPX history: load it with `alvh data import`", False),
    "indicators in the future": (
        lambda t: ["indicators", "--from", "2027-01-04", "--to", "2027-01-08",
                   "--source", "snapshot"], None,
        "alvh: no data between 2027-01-04 and 2027-01-08: the shipped snapshot has SPX "
        "1999-01-04..2026-02-27", True),
    "data import of a binary file": (
        _binary, None, "export.csv: not a text file (byte 0x80 at offset 128 is not UTF-8)",
        False),
    "data import of a negative close": (
        _csv("spx.csv", "Date,Open,High,Low,Close\n2026-01-05,6900,6950,6880,-6902.05\n"),
        None, "file:spx.csv: SPX close -6902.05 on 2026-01-05 (line 2) is not a positive price",
        False),
    "data import of an invalid date": (
        _csv("spx.csv", "Date,Open,High,Low,Close\n2026-02-27,1,2,1,2\n2026-02-30,1,2,1,2\n"),
        None, "file:spx.csv: invalid date '2026-02-30' on line 3: no such day", False),
    "ALVH_DATA_DIR is a file": (
        lambda t: ["data", "status"], _file_as_data_dir,
        "alvh: ALVH_DATA_DIR=", False),
    "ALVH_DATA_DIR cannot be created": (
        lambda t: ["run-once", "--source", "snapshot", "--dry-run"],
        lambda t: {"ALVH_DATA_DIR": "/proc/alvh-data"},
        "alvh: ALVH_DATA_DIR=/proc/alvh-data: cannot create it (", False),
    "ALVH_DATA_DIR without permission": (
        lambda t: ["data", "status"], _no_permission,
        "alvh: ALVH_DATA_DIR=", False),
    "ALVH_DATABASE_URL postgresql without a driver": (
        lambda t: ["data", "status"],
        lambda t: {"ALVH_DATABASE_URL": "postgresql://alvh:s3cret@db.example/alvh"},
        "alvh: ALVH_DATABASE_URL=postgresql://alvh:***@db.example/alvh: the database driver "
        "is not installed (Python module 'psycopg'; install it with `pip install "
        "'alvh[postgres]'`)", False),
    "ALVH_DATABASE_URL host unknown": (
        lambda t: ["data", "status"],
        lambda t: {"ALVH_DATABASE_URL": "postgresql://alvh:s3cret@db.invalid/alvh"},
        "alvh: ALVH_DATABASE_URL=postgresql://alvh:***@db.invalid/alvh: cannot open the "
        "database (failed to resolve host 'db.invalid'", False),
    "ALVH_DATABASE_URL not a URL": (
        lambda t: ["data", "status"], lambda t: {"ALVH_DATABASE_URL": "alvh.sqlite"},
        "alvh: configuration error: ALVH_DATABASE_URL: not a database URL", False),
    "ALVH_DATABASE_URL unknown database": (
        lambda t: ["subscribers", "list"],
        lambda t: {"ALVH_DATABASE_URL": "mongodb://localhost/alvh"},
        "alvh: ALVH_DATABASE_URL=mongodb://localhost/alvh: unknown kind of database 'mongodb'",
        False),
    "ALVH_DATABASE_URL cannot be opened": (
        lambda t: ["data", "status"],
        lambda t: {"ALVH_DATABASE_URL": "sqlite:////proc/alvh/alvh.sqlite"},
        "alvh: ALVH_DATABASE_URL=sqlite:////proc/alvh/alvh.sqlite: cannot open the database",
        False),
    "ALVH_BREADTH_FINAL_TIME not a time of day": (
        lambda t: ["run-once", "--source", "snapshot", "--dry-run"],
        lambda t: {"ALVH_BREADTH_FINAL_TIME": "25:00"},
        "alvh: configuration error: ALVH_BREADTH_FINAL_TIME: not a time of day as HH:MM, "
        "00:00 to 23:59 (New York time, e.g. 20:00) (got '25:00')", False),
    "HTTP port in use": (
        lambda t: ["run", "--source", "snapshot"], None,  # the port: see the test
        "is already in use (another alvh run, or another program: choose a free "
        "ALVH_HTTP_PORT)", True),
}


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_without_traceback(name, tmp_path, no_alvh_env, capsys,
                                                  copy_snapshot, busy_port):
    argv_of, env_of, expected, snapshot = CASES[name]
    data = tmp_path / "data"
    data.mkdir()
    if snapshot:
        copy_snapshot(data)
    no_alvh_env.chdir(tmp_path)
    no_alvh_env.setenv("ALVH_DATA_DIR", str(data))
    no_alvh_env.setenv("ALVH_HTTP_PORT", str(busy_port))
    for key, value in (env_of(tmp_path) if env_of else {}).items():
        no_alvh_env.setenv(key, value)
    if "without a driver" in name:
        # An install without the `postgres` extra: psycopg cannot be imported.
        for module in [m for m in sys.modules if m.split(".")[0] == "psycopg"]:
            no_alvh_env.delitem(sys.modules, module)
        no_alvh_env.setitem(sys.modules, "psycopg", None)
    code = main(argv_of(tmp_path))
    out, err = capsys.readouterr()
    assert code != 0
    assert "Traceback" not in err and "Traceback" not in out
    lines = [x for x in err.splitlines() if x.strip() and not LOG_LINE.match(x)]
    assert len(lines) == 1, err
    assert lines[0].startswith("alvh: ") and expected in lines[0], lines[0]
    assert "s3cret" not in err
    if name == "ALVH_DATA_DIR without permission":
        assert lines[0].endswith(("cannot create it (Operation not permitted)",
                                  "cannot create it (Permission denied)"))
    if name == "ALVH_DATA_DIR is a file":
        assert lines[0].endswith("afile: is a file, not a directory")


def test_a_lower_case_log_level_is_accepted(no_alvh_env, tmp_path, capsys):
    no_alvh_env.chdir(tmp_path)
    no_alvh_env.setenv("ALVH_LOG_LEVEL", "debug")
    assert main(["rules", "check"]) == 0
    assert "OK" in capsys.readouterr().out
