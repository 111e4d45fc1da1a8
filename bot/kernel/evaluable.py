"""How a value that cannot be computed is named and explained (DESIGN §4).

Plain strings, shared by the indicators that produce "not evaluable" values
and by the rules, the record and the alerts that show them; kept in the
kernel so that reading a rules file never imports the indicator stack.
"""

from __future__ import annotations

from typing import Final

NOT_EVALUABLE_TEXT: Final = "not evaluable"
"""How a value that cannot be computed is shown: never as 0, false or a blank."""
WHY_SUFFIX: Final = ".why"


def why_key(name: str) -> str:
    """The key under which a row's values carry why ``name`` is not evaluable.

    A row of the frame becomes one flat mapping of values for the rules and
    the record; ``.`` cannot appear in a rules name, so the key never clashes
    with one.
    """
    return name + WHY_SUFFIX
