"""Prometheus metrics of a serving hub, fed by the engine's call events.

Counters and the latency histogram are updated by an ``AsyncHub.subscribe``
listener, so calls made by job workers count as much as HTTP calls (a
queue-policy submission counts once as ``outcome="queued"``, and its attempt
again with its own outcome when it finishes); the gauges (component up,
restarts, jobs per state) are read from the hub when ``/metrics`` is
scraped.  Labels name components, operations, outcomes and states only —
never call ids or job ids, whose cardinality is unbounded.  A call the
engine never ran (unknown component, bad selector, a failed component) is
counted by the reception with empty ``component`` and ``operation`` labels,
for the same reason.

The values are plain integers and lists updated on the hub's loop (the
listener and the scrape both run there), exposed through a collector of
``prometheus_client``: its own metric objects take a lock per increment, a
few microseconds a call that the HTTP benchmark shows.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from cncf.engine.events import CallFinished
from cncf.outcome import Outcome

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


_BOUNDS = (*(repr(float(b)) for b in BUCKETS), "+Inf")  # as prometheus_client writes `le`


def outcome_label(outcome: Outcome) -> str:
    """``ok``, ``queued`` (a job was accepted), or the Observation's code."""
    if outcome.observation is not None:
        return outcome.observation.code.value
    return "queued" if outcome.queued else "ok"


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0


class HubMetrics(Collector):
    """The registry of one serving hub (not the process-global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.calls: dict[tuple[str, str, str], int] = {}
        self.durations: dict[tuple[str, str], _Histogram] = {}
        self.stopped: dict[tuple[str, str, str], int] = {}  # (component, operation, tier) -> cancellations
        self._ops: dict[str, tuple[str, str]] = {}  # target text -> (component, service.operation)
        self.components: list[tuple[str, bool, int]] = []
        self.jobs: Mapping[str, int] = {}
        self.registry.register(self)

    def on_call(self, event: CallFinished) -> None:
        """The engine listener (see ``cncf.engine.events``)."""
        target = event.call.target
        labels = self._ops.get(target.text)
        if labels is None:
            labels = self._ops[target.text] = (target.component, f"{target.service}.{target.operation}")
        key = (labels[0], labels[1], outcome_label(event.outcome))
        self.calls[key] = self.calls.get(key, 0) + 1
        hist = self.durations.get(labels)
        if hist is None:
            hist = self.durations[labels] = _Histogram()
        seconds = max(0.0, event.ended - event.started)
        hist.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        hist.total += seconds
        if event.tier is not None:
            tkey = (labels[0], labels[1], event.tier)
            self.stopped[tkey] = self.stopped.get(tkey, 0) + 1

    def on_queued(self, component: str, target: str) -> None:
        """A queue-policy call accepted as a job (its attempts count when they finish)."""
        key = (component, target.split(".", 1)[-1], "queued")
        self.calls[key] = self.calls.get(key, 0) + 1

    def on_refused(self, outcome: Outcome) -> None:
        """A call the engine never ran (dispatch failed, or its component failed to load)."""
        key = ("", "", outcome_label(outcome))
        self.calls[key] = self.calls.get(key, 0) + 1

    def refresh(
        self,
        components: list[tuple[str, bool, int]],
        jobs: Mapping[str, int],
        replicas: list[tuple[str, str, bool, int, int]] | None = None,
    ) -> None:
        self.components = components
        self.jobs = jobs
        self.replicas = replicas or []  # (component, replica index, up, restarts, calls in flight)

    def collect(self) -> Iterable[Any]:
        calls = CounterMetricFamily(
            "cncf_calls",
            "finished calls, by component, operation and outcome",
            labels=["component", "operation", "outcome"],
        )
        for labels, n in self.calls.items():
            calls.add_metric(list(labels), float(n))
        duration = HistogramMetricFamily(
            "rpc_server_call_duration_seconds",
            "duration of a call from admission to its Outcome",
            labels=["component", "operation"],
        )
        for (component, operation), hist in self.durations.items():
            running = 0
            buckets = []
            for bound, n in zip(_BOUNDS, hist.counts, strict=True):
                running += n
                buckets.append((bound, float(running)))
            duration.add_metric([component, operation], buckets, hist.total)
        up = GaugeMetricFamily("cncf_component_up", "1 when the component is ready or busy", labels=["component"])
        restarts = CounterMetricFamily(
            "cncf_restarts", "restarts of the component's instance since it was loaded", labels=["component"]
        )
        for name, alive, count in self.components:
            up.add_metric([name], 1.0 if alive else 0.0)
            restarts.add_metric([name], float(count))
        jobs = GaugeMetricFamily("cncf_jobs", "jobs in the durable store, per state", labels=["state"])
        for state, n in self.jobs.items():
            jobs.add_metric([state], float(n))
        stopped = CounterMetricFamily(
            "cncf_cancellations",
            "cancelled or timed-out calls, by the tier the cancellation finally took "
            "(cooperative, abandoned, killed, late)",
            labels=["component", "operation", "tier"],
        )
        for labels, n in self.stopped.items():
            stopped.add_metric(list(labels), float(n))
        return [calls, duration, up, restarts, jobs, stopped, *self._replicas()]

    def _replicas(self) -> list[Any]:
        """Each replica of each component (label ``replica``: its index)."""
        labels = ["component", "replica"]
        up = GaugeMetricFamily("cncf_replica_up", "1 when the replica is ready or busy", labels=labels)
        restarts = CounterMetricFamily("cncf_replica_restarts", "restarts of the replica's worker", labels=labels)
        flight = GaugeMetricFamily("cncf_replica_in_flight", "calls running on the replica", labels=labels)
        for name, index, alive, count, running in getattr(self, "replicas", []):
            up.add_metric([name, index], 1.0 if alive else 0.0)
            restarts.add_metric([name, index], float(count))
            flight.add_metric([name, index], float(running))
        return [up, restarts, flight]

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["BUCKETS", "CONTENT_TYPE", "HubMetrics", "outcome_label"]
