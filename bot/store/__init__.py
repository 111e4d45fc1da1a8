"""Persistence: SQLAlchemy Core over SQLite by default, any SQLAlchemy URL accepted.

Every table and migration lives here (market data, runs, the outbox and its
subscribers), so no other wing writes SQL.
"""

from bot.store.db import Store, open_store
from bot.store.runs import Runs, StoredRun

__all__ = ["Runs", "Store", "StoredRun", "open_store"]
