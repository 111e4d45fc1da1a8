"""Market-data and calendar sources.

Each source module has a pure ``parse_*`` function (bytes in, typed rows out,
:class:`~bot.kernel.errors.SourceDataError` on anything unusable) and a source
class (:mod:`bot.market.sources.base`): built with its base URL (a setting),
it declares its reach (any history, or only the latest session) and fetches
through the one :class:`~bot.market.sources.base.SourceContext` (client,
calendar, retry policy, clock). :mod:`bot.market.sources.chain` puts them in
fallback chains. Parsers are tested on recorded real bodies; every source
keeps the contract in ``tests/test_sources_contract.py`` against a real
server on 127.0.0.1.

Adding a source: subclass ``BarSource``, ``BreadthSource`` or ``EventSource``,
implement ``answer`` (download and parse), add it to ``default_chains`` and an
``Endpoints`` field (and its ``ALVH_<NAME>_URL`` setting), and give the
contract test one ``Case`` with a recorded body.
"""
