"""Prometheus metrics of a serving hub, fed by the engine's call events.

Counters and the latency histogram are updated by an ``AsyncHub.subscribe``
listener, so calls made by job workers count as much as HTTP calls (a
queue-policy submission counts once as ``outcome="queued"``, and its attempt
again with its own outcome when it finishes); the
gauges (component up, restarts, jobs per state) are read from the hub when
``/metrics`` is scraped.  Labels name components, operations, outcomes and
states only — never call ids or job ids, whose cardinality is unbounded.
A call the engine never ran (unknown component, bad selector, a failed
component) is counted by the reception with empty ``component`` and
``operation`` labels, for the same reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from cncf.engine.events import CallFinished
from cncf.outcome import Outcome

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def outcome_label(outcome: Outcome) -> str:
    """``ok``, ``queued`` (a job was accepted), or the Observation's code."""
    if outcome.observation is not None:
        return outcome.observation.code.value
    return "queued" if outcome.queued else "ok"


class _Snapshot(Collector):
    """Gauges read at scrape time from the last :meth:`HubMetrics.refresh`."""

    def __init__(self) -> None:
        self.components: list[tuple[str, bool, int]] = []
        self.jobs: Mapping[str, int] = {}

    def collect(self) -> Iterable[Any]:
        up = GaugeMetricFamily("cncf_component_up", "1 when the component is ready or busy", labels=["component"])
        restarts = CounterMetricFamily("cncf_restarts", "restarts of the component's instance since it was loaded",
                                       labels=["component"])
        for name, alive, count in self.components:
            up.add_metric([name], 1.0 if alive else 0.0)
            restarts.add_metric([name], float(count))
        jobs = GaugeMetricFamily("cncf_jobs", "jobs in the durable store, per state", labels=["state"])
        for state, n in self.jobs.items():
            jobs.add_metric([state], float(n))
        return [up, restarts, jobs]


class HubMetrics:
    """The registry of one serving hub (not the process-global one)."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series double the output and nobody scrapes them here
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter("cncf_calls", "finished calls, by component, operation and outcome",
                             ["component", "operation", "outcome"], registry=self.registry)
        self.duration = Histogram("rpc_server_call_duration_seconds",
                                  "duration of a call from admission to its Outcome",
                                  ["component", "operation"], buckets=_BUCKETS, registry=self.registry)
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}  # labels() costs a lock and a lookup
        self._snapshot = _Snapshot()
        self.registry.register(self._snapshot)

    def on_call(self, event: CallFinished) -> None:
        """The engine listener (see ``cncf.engine.events``)."""
        target = event.call.target
        key = (target.component, target.text, outcome_label(event.outcome))
        children = self._children.get(key)
        if children is None:
            op = f"{target.service}.{target.operation}"
            children = self._children[key] = (self.calls.labels(target.component, op, key[2]),
                                               self.duration.labels(target.component, op))
        children[0].inc()
        children[1].observe(max(0.0, event.ended - event.started))

    def on_queued(self, component: str, target: str) -> None:
        """A queue-policy call accepted as a job (its attempts count when they finish)."""
        self.calls.labels(component, target.split(".", 1)[-1], "queued").inc()

    def on_refused(self, outcome: Outcome) -> None:
        """A call the engine never ran (dispatch failed, or its component failed to load)."""
        self.calls.labels("", "", outcome_label(outcome)).inc()

    def refresh(self, components: list[tuple[str, bool, int]], jobs: Mapping[str, int]) -> None:
        self._snapshot.components = components
        self._snapshot.jobs = jobs

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["CONTENT_TYPE", "HubMetrics", "outcome_label"]
