"""``alvh indicators``: the indicator frame, one row per session."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, TextIO

from bot.app.commands import date_arg
from bot.kernel.errors import ConfigError

if TYPE_CHECKING:
    from bot.app.root import MarketSource, Root


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    ind = sub.add_parser("indicators", help="print the indicator frame, one row per session")
    ind.add_argument("--from", dest="start", type=date_arg, required=True, metavar="D1")
    ind.add_argument("--to", dest="end", type=date_arg, required=True, metavar="D2")
    ind.add_argument("--csv", action="store_true", help="CSV instead of a table")
    ind.add_argument("--source", choices=["store", "snapshot"], default="store",
                     help="the data directory's store (default) or the shipped snapshot")


def run(args: argparse.Namespace, root: Root, out: TextIO, err: TextIO | None = None) -> int:
    import pandas as pd

    from bot.pipeline.evaluation import history_start, indicator_frame

    err = err if err is not None else sys.stderr
    calendar = root.calendar
    for flag, day in (("--from", args.start), ("--to", args.end)):
        if not calendar.first <= day <= calendar.last:
            raise ConfigError(f"{flag} {day} is outside the NYSE session calendar "
                              f"({calendar.first}..{calendar.last})")
    if args.end < args.start:
        raise ConfigError(f"--to {args.end} is before --from {args.start}")
    sessions = calendar.sessions_between(args.start, args.end)
    if not sessions:
        raise ConfigError(f"no NYSE session between {args.start} and {args.end}")
    rules = root.load_rules()
    source: MarketSource = "snapshot" if args.source == "snapshot" else "live"
    with root.market_store(source) as store:
        have = store.sessions_present("SPX")
        where = "the shipped snapshot" if source == "snapshot" else "the store"
        if not have:
            raise ConfigError(f"{where} has no SPX history: load it with `alvh data import` "
                              "or use --source snapshot")
        if args.start > have[-1] or args.end < have[0]:
            raise ConfigError(f"no data between {args.start} and {args.end}: {where} has SPX "
                              f"{have[0]}..{have[-1]}")
        frame = indicator_frame(
            store, calendar, rules, history_start(calendar, args.start, rules), args.end
        )
    frame = frame.loc[pd.Timestamp(args.start) : pd.Timestamp(args.end)]
    # A session without an SPX close has no indicators: left out and said, never a row of
    # "not evaluable" for a day the store simply does not have.
    empty = frame["close"].isna().to_numpy()
    if empty.any():
        gone = [ts.date().isoformat() for ts in frame.index[empty]]
        listed = ", ".join(gone[:10]) + (f" and {len(gone) - 10} more" if len(gone) > 10 else "")
        err.write(f"alvh: no SPX data for {len(gone)} session(s), left out: {listed}\n")
        frame = frame.loc[~empty]
    if frame.empty:
        raise ConfigError(f"no SPX data between {args.start} and {args.end}")
    shown = readable(frame, "{:.10g}" if args.csv else "{:.4f}")
    if args.csv:
        shown.to_csv(out)
    else:
        with pd.option_context("display.max_columns", None, "display.width", 250,
                               "display.max_rows", None, "display.max_colwidth", None):
            out.write(shown.to_string() + "\n")
    return 0


def readable(frame: Any, number: str) -> Any:
    """The frame as text: figures formatted, every value that could not be computed shown as
    "not evaluable" (never blank, 0 or false) and the last column saying why, per name."""
    import pandas as pd

    from bot.engine.indicators import NOT_EVALUABLE
    from bot.engine.indicators.evaluable import NOT_EVALUABLE_TEXT, summarize

    values = frame.drop(columns=NOT_EVALUABLE)
    out = pd.DataFrame(index=pd.Index([ts.date().isoformat() for ts in frame.index],
                                      name="session"))
    for name in values.columns:
        col = values[name]
        cells = [NOT_EVALUABLE_TEXT if pd.isna(v)
                 else ("true" if v else "false") if isinstance(v, bool)
                 else number.format(v) if isinstance(v, float) else str(v)
                 for v in col.tolist()]
        out[name] = cells
    out[NOT_EVALUABLE] = [summarize(why) for why in frame[NOT_EVALUABLE]]
    return out
