"""The Telegram command UI people talk to (the alerts themselves go through the
Telegram *channel* in ``bot.delivery.channels.telegram``).

``access`` who may use it; ``handlers`` the commands; ``replies`` what goes
back to a chat; ``lifecycle`` the python-telegram-bot application on the
channel's bot. The views come from an injected ``BotQueries`` object
(``bot.app.queries.EngineQueries`` in the running bot, a stub in tests).
"""

from bot.app.telegram.access import Access
from bot.app.telegram.handlers import ADMIN_COMMANDS, PUBLIC_COMMANDS, BotCommands, BotQueries
from bot.app.telegram.lifecycle import build_application, polling, start_bot, stop_bot

__all__ = [
    "ADMIN_COMMANDS",
    "PUBLIC_COMMANDS",
    "Access",
    "BotCommands",
    "BotQueries",
    "build_application",
    "polling",
    "start_bot",
    "stop_bot",
]
