"""Market-data and calendar sources.

Each source module has a pure ``parse_*`` function (bytes in, typed rows out,
:class:`~bot.kernel.errors.SourceDataError` on anything unusable) and an async
``fetch_*`` that uses :func:`bot.market.sources.http.get` for transport. Parsers are
tested on recorded real bodies; fetchers against servers on 127.0.0.1.
"""
