"""Prometheus metrics, in a registry of their own.

A private ``CollectorRegistry`` (not the global default) keeps tests and
several services in one process from seeing each other's counts.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter(
            "alvh_runs", "Session evaluations by outcome", ["outcome"], registry=self.registry
        )
        self.source_failures = Counter(
            "alvh_source_failures", "Data series whose whole fallback chain failed",
            ["series"], registry=self.registry,
        )
        self.alerts = Counter(
            "alvh_alerts", "Alerts created, by topic", ["topic"], registry=self.registry
        )
        self.deliveries = Counter(
            "alvh_deliveries", "Delivery attempts by final status", ["channel", "status"],
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "alvh_delivery_latency_seconds", "From alert creation to delivery",
            buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
            registry=self.registry,
        )
        self.last_session = Gauge(
            "alvh_last_evaluated_session_timestamp_seconds",
            "Close time of the last evaluated session (Unix seconds)", registry=self.registry,
        )
        self.pending = Gauge(
            "alvh_pending_deliveries", "Deliveries not yet sent", registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
