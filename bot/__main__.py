"""``python -m bot`` is the same entry point as the ``alvh`` console script."""

from bot.app.cli import main

raise SystemExit(main())
