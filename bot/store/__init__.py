"""Persistence: SQLAlchemy Core over SQLite by default, any SQLAlchemy URL accepted."""

from bot.store.db import Store, open_store

__all__ = ["Store", "open_store"]
