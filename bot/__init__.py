"""ALVH signal bot: end-of-day SPX iron-condor and layered VIX-hedge alerts."""

__version__ = "0.1.0"
