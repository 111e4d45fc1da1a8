"""Every delivery channel the bot knows, found by looking, not by a list.

A channel module in this package that defines a :class:`BaseChannel`
subclass with ``plugin = True`` is a channel: nothing else needs an edit for
a new one. Discovery imports each module once, lazily, so commands that
deliver nothing (``alvh --help``, ``rules check``) never import
python-telegram-bot or apprise.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from bot.delivery.channels.base import BaseChannel, InvalidAddress

_NOT_CHANNELS = frozenset({"base", "registry", "ratelimit", "telegram_html"})
"""Modules of this package that hold helpers, not channels."""


@cache
def channel_classes() -> tuple[type[BaseChannel], ...]:
    """The channel classes, sorted by name (each module of this package imported once)."""
    package = importlib.import_module(__package__ or "bot.delivery.channels")
    found: dict[str, type[BaseChannel]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name in _NOT_CHANNELS:
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, BaseChannel)
                    and value.__module__ == module.__name__ and value.plugin):
                if value.name in found:
                    raise RuntimeError(f"two channels are called {value.name!r}")
                found[value.name] = value
    return tuple(found[name] for name in sorted(found))


def names() -> tuple[str, ...]:
    """The names of the subscribable channels."""
    return tuple(c.name for c in channel_classes())


def channel_class(name: str) -> type[BaseChannel]:
    """The class of channel ``name``, or :class:`InvalidAddress` naming the known ones."""
    for cls in channel_classes():
        if cls.name == name:
            return cls
    raise InvalidAddress(f"unknown channel “{name}”; channels: {', '.join(names())}")


def normalize_address(channel: str, address: str) -> str:
    """``address`` in channel ``channel``'s canonical form (:class:`InvalidAddress` if not one)."""
    return channel_class(channel).normalize_address(address)


def shown_address(channel: str, address: str) -> str:
    """The address with any secret in it masked (for logs, lists and ``ops`` messages)."""
    try:
        return channel_class(channel).shown_address(address)
    except InvalidAddress:
        return address


def channel_for(address: str) -> str:
    """The one channel an address belongs to (``trader@example.com`` → email).

    An address that several channels claim, or none, is refused with the
    channels' address forms, so ``alvh subscribers add`` never guesses.
    """
    claims = [c for c in channel_classes() if c.owns_address(address.strip())]
    if len(claims) == 1:
        return claims[0].name
    forms = "; ".join(f"{c.name}: {c.address_hint}" for c in channel_classes())
    if not claims:
        raise InvalidAddress(f"no channel takes “{_short(address)}” ({forms})")
    raise InvalidAddress(f"“{_short(address)}” could be {', '.join(c.name for c in claims)}: "
                         "say which with --channel")


def _short(text: str) -> str:
    """The address as typed, up to its first ``/`` or ``:`` when it has one: what follows
    in a URL-like address is where tokens and passwords live."""
    text = text.strip()
    cut = min((i for i in (text.find("/"), text.find(":")) if i >= 0), default=-1)
    if cut >= 0:
        return text[:cut] + "…"
    return text if len(text) <= 60 else text[:59] + "…"
