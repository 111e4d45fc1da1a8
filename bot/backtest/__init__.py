"""Backtests and rules previews: history replayed through the live engine.

- :mod:`bot.backtest.run`: ``run_backtest`` replays a date range (``alvh backtest``);
- :mod:`bot.backtest.summary` and :mod:`bot.backtest.stats`: grade it (drawdowns
  after triggers, false alarms, proxy hedge P&L, breadth sources);
- :mod:`bot.backtest.text`: the terminal report; :mod:`bot.backtest.report`: the files
  (CSV/JSON, and the HTML page from :mod:`bot.backtest.html`'s Jinja2 template with
  :mod:`bot.backtest.charts`); :mod:`bot.backtest.fmt`: how they print numbers;
- :mod:`bot.backtest.diff`: ``preview_diff`` replays two rule files and lists
  the sessions whose decisions differ (``alvh rules diff``, Telegram ``/preview``).

Nothing is imported here: the CLI builds its parser from
:mod:`bot.app.backtest_args` on every start, and that must not pull in pandas.
"""
