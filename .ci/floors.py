"""Print pip constraints pinning every runtime dependency to the floor pyproject.toml allows.

CI installs the project with these constraints in a second virtualenv and runs the
tests again, so a floor (``pandas>=2.2``) is a version the tests passed on, not a
guess. Usage: ``python .ci/floors.py > floors.txt; pip install -c floors.txt -e '.[test]'``;
``python .ci/floors.py --check`` (in that virtualenv) prints each floor beside the
installed version and fails unless they match.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def floors(deps: list[str]) -> list[str]:
    out = []
    for dep in deps:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", dep)
        if m is None:
            raise SystemExit(f"cannot read dependency {dep!r}")
        name, spec = m.group(1), m.group(3)
        low = re.search(r">=\s*([0-9][0-9A-Za-z.\-]*)", spec)
        if low is None:
            raise SystemExit(f"{name}: no lower bound (>=) in {dep!r}: every dependency "
                             "needs a tested floor")
        out.append(f"{name}=={low.group(1)}")
    return out


def check(pins: list[str]) -> int:
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    bad = 0
    for pin in pins:
        name, floor = pin.split("==")
        try:
            got = version(name)
        except PackageNotFoundError:
            got = "missing"
        ok = got != "missing" and Version(got) == Version(floor)
        bad += not ok
        sys.stdout.write(f"{'ok ' if ok else 'BAD'} {name:22} floor {floor:10} installed {got}\n")
    return 1 if bad else 0


if __name__ == "__main__":
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    if sys.argv[1:] == ["--check"]:
        raise SystemExit(check(floors(project["dependencies"])))
    sys.stdout.write("\n".join(floors(project["dependencies"])) + "\n")
