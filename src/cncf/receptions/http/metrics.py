"""Prometheus metrics of a serving hub (every metric: ``docs/metrics.md``).

Three sources:

* the engine's call events (an ``AsyncHub.subscribe`` listener), so calls made
  by job workers count as much as HTTP calls: ``cncf_calls_total`` counts
  *final* outcomes only, ``rpc_server_call_duration_seconds`` measures
  admission to Outcome on the nanosecond clock the events carry;
* the reception: submissions of queue-policy calls (``cncf_jobs_submitted_total``:
  a submission is no finished call), calls the engine never ran (refused at
  dispatch, or their component failed to load: still counted under their
  component when the selector names a known one), and every HTTP request
  (``http_server_request_duration_seconds``, by route template and status,
  fed by :mod:`.observe`);
* the hub, read when ``/metrics`` is scraped: components up, restarts, calls in
  flight and waiting at each component's gate, and each component's job queue
  (depth, oldest job's age) from the job system's in-memory queues — no store
  read per scrape but a job-state count cached for :data:`JOB_COUNT_TTL`.

Labels name components, operations, outcomes, routes and states only — never
call ids, job ids or raw paths, whose cardinality is unbounded.

The values are plain integers and lists updated on the hub's loop (listeners,
middleware and scrape all run there), exposed through a collector of
``prometheus_client``: its own metric objects take a lock per increment, a few
microseconds a call that the HTTP benchmark shows.  The process, platform and
garbage-collector collectors are ``prometheus_client``'s own.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from cncf.engine.events import CallFinished
from cncf.outcome import Outcome
from cncf.selector import Selector, normalize

if TYPE_CHECKING:
    from cncf.hub import AsyncHub

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _buckets() -> tuple[float, ...]:
    """25 µs to 60 s, ten bounds a decade (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8):
    neighbours at most 1.33× apart, so a quantile Prometheus interpolates inside
    one bucket is off by a few percent, not by the 2.5× of the 1-2.5-5 series."""
    mantissas = ("1", "1.25", "1.5", "2", "2.5", "3", "4", "5", "6", "8")
    bounds = [float(f"{m}e{e}") for e in range(-5, 2) for m in mantissas]
    return (*(b for b in bounds if 25e-6 <= b <= 60), 60.0)


BUCKETS = _buckets()
_BOUNDS = (*(repr(float(b)) for b in BUCKETS), "+Inf")  # as prometheus_client writes `le`
#: How long the job-state count (a GROUP BY on the store's index) is reused.
JOB_COUNT_TTL = 5.0
_JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")


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

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def buckets(self) -> list[tuple[str, float]]:
        running = 0
        out = []
        for bound, n in zip(_BOUNDS, self.counts, strict=True):
            running += n
            out.append((bound, float(running)))
        return out


class HubMetrics(Collector):
    """The registry of one serving hub (not the process-global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.calls: dict[tuple[str, str, str], int] = {}
        self.durations: dict[tuple[str, str], _Histogram] = {}
        self.stopped: dict[tuple[str, str, str], int] = {}  # (component, operation, tier) -> cancellations
        self.submitted: dict[tuple[str, str], int] = {}
        self.http: dict[tuple[str, str, int], _Histogram] = {}  # (method, route, status)
        self._ops: dict[str, tuple[str, str]] = {}  # target text -> (component, service.operation)
        # read from the hub at each scrape: (name, up, restarts, in flight, waiting)
        self.components: list[tuple[str, bool, int, int, int]] = []
        self.queues: dict[str, tuple[int, float]] = {}  # component -> (queued jobs, oldest's age)
        self.jobs: dict[str, int] = {}
        self.replicas: list[tuple[str, str, bool, int, int]] = []
        self._job_counts: tuple[float, dict[str, int]] | None = None  # (when, counts)
        self.registry.register(self)
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)

    # ------------------------------------------------------------ events

    def on_call(self, event: CallFinished) -> None:
        """One finished call (see :meth:`on_calls`)."""
        self.on_calls((event,))

    def on_calls(self, events: Sequence[CallFinished]) -> None:
        """Finished calls (the reception's deferred engine listener: in batches)."""
        ops, calls, durations = self._ops, self.calls, self.durations
        for event in events:
            target = event.call.target
            labels = ops.get(target.text)
            if labels is None:
                labels = ops[target.text] = (target.component, f"{target.service}.{target.operation}")
            key = (labels[0], labels[1], outcome_label(event.outcome))
            calls[key] = calls.get(key, 0) + 1
            hist = durations.get(labels)
            if hist is None:
                hist = durations[labels] = _Histogram()
            hist.observe(max(0, event.ended_ns - event.admitted_ns) / 1e9)
            if event.tier is not None:
                tkey = (labels[0], labels[1], event.tier)
                self.stopped[tkey] = self.stopped.get(tkey, 0) + 1

    def on_queued(self, component: str, target: str) -> None:
        """A queue-policy call accepted as a job (its attempts count as calls when they finish)."""
        key = (component, target.split(".", 1)[-1])
        self.submitted[key] = self.submitted.get(key, 0) + 1

    def on_refused(self, outcome: Outcome, labels: tuple[str, str] = ("", "")) -> None:
        """A call the engine never ran (dispatch failed, or its component failed to
        load); ``labels``: see :func:`refused_labels`."""
        key = (labels[0], labels[1], outcome_label(outcome))
        self.calls[key] = self.calls.get(key, 0) + 1

    def http_histogram(self, method: str, route: str, status: int) -> _Histogram:
        """The histogram of these requests (the caller may keep it: it lives as long as this registry)."""
        key = (method, route, status)
        hist = self.http.get(key)
        if hist is None:
            hist = self.http[key] = _Histogram()
        return hist

    # ------------------------------------------------------------ scrape

    def refresh(self, hub: AsyncHub) -> None:
        """Read the gauges from the hub (at each scrape, on its loop)."""
        comps = []
        replicas: list[tuple[str, str, bool, int, int]] = []
        for h in hub.components():
            gates = [g.statistics() for g in h._component.gates]
            running, waiting = sum(g.running for g in gates), sum(g.waiting for g in gates)
            comps.append((h.name, h.state in ("ready", "busy"), h.restarts, running, waiting))
            for r in h.describe().get("replicas", ()):
                replicas.append(
                    (h.name, str(r["index"]), r["state"] in ("ready", "busy"), r["restarts"], r["calls"]["running"])
                )
        self.components = comps
        self.replicas = replicas  # (component, replica index, up, restarts, calls in flight)
        jobs = hub._jobs
        queues: dict[str, tuple[int, float]] = {}
        if jobs is not None:
            names = {normalize(h.name): h.name for h in hub.components()}
            now = time.time()
            for key, (n, since) in jobs.queue_depths().items():
                queues[names.get(key, key)] = (n, max(0.0, now - since))
        for name, *_ in comps:
            queues.setdefault(name, (0, 0.0))
        self.queues = queues
        self.jobs = self._count_jobs(hub)

    def _count_jobs(self, hub: AsyncHub) -> dict[str, int]:
        now = time.monotonic()
        cached = self._job_counts
        if cached is not None and now - cached[0] < JOB_COUNT_TTL:
            return cached[1]
        counts = dict.fromkeys(_JOB_STATES, 0)
        jobs = hub._jobs
        if jobs is not None and jobs.store is not None:
            try:
                counts.update(jobs.store.counts())
            except Exception:  # noqa: BLE001 - an unreadable store: the last counts stand
                return cached[1] if cached is not None else counts
        self._job_counts = (now, counts)
        return counts

    def collect(self) -> Iterable[Any]:
        calls = CounterMetricFamily(
            "cncf_calls",
            "finished calls, by component, operation and final outcome (ok or the Observation's code)",
            labels=["component", "operation", "outcome"],
        )
        for labels, n in self.calls.items():
            calls.add_metric(list(labels), float(n))
        submitted = CounterMetricFamily(
            "cncf_jobs_submitted",
            "queue-policy calls accepted as jobs (their attempts count in cncf_calls_total)",
            labels=["component", "operation"],
        )
        for labels2, n in self.submitted.items():
            submitted.add_metric(list(labels2), float(n))
        duration = HistogramMetricFamily(
            "rpc_server_call_duration_seconds",
            "duration of a call from admission to its Outcome",
            labels=["component", "operation"],
        )
        for (component, operation), hist in self.durations.items():
            duration.add_metric([component, operation], hist.buckets(), hist.total)
        http = HistogramMetricFamily(
            "http_server_request_duration_seconds",
            "HTTP requests, by method, route template and status: from the request's arrival to its last byte",
            labels=["method", "route", "status"],
        )
        for (method, route, status), hist in self.http.items():
            http.add_metric([method, route, str(status)], hist.buckets(), hist.total)
        up = GaugeMetricFamily("cncf_component_up", "1 when the component is ready or busy", labels=["component"])
        restarts = CounterMetricFamily(
            "cncf_restarts", "restarts of the component's instance since it was loaded", labels=["component"]
        )
        in_flight = GaugeMetricFamily(
            "cncf_calls_in_flight",
            "calls running in the component now (holding a slot of its gate, escalations included)",
            labels=["component"],
        )
        waiting = GaugeMetricFamily(
            "cncf_calls_waiting", "calls waiting at the component's gate for a slot", labels=["component"]
        )
        for name, alive, count, running, parked in self.components:
            up.add_metric([name], 1.0 if alive else 0.0)
            restarts.add_metric([name], float(count))
            in_flight.add_metric([name], float(running))
            waiting.add_metric([name], float(parked))
        depth = GaugeMetricFamily(
            "cncf_queue_depth",
            "jobs queued for the component (ready, or waiting out a retry back-off)",
            labels=["component"],
        )
        oldest = GaugeMetricFamily(
            "cncf_queue_oldest_age_seconds",
            "how long the component's oldest queued job has been queued (0: none)",
            labels=["component"],
        )
        for name, (n, age) in self.queues.items():
            depth.add_metric([name], float(n))
            oldest.add_metric([name], age)
        jobs = GaugeMetricFamily(
            "cncf_jobs",
            f"jobs in the durable store, per state (counted at most every {JOB_COUNT_TTL:g} s)",
            labels=["state"],
        )
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
        return [
            calls,
            submitted,
            duration,
            http,
            up,
            restarts,
            in_flight,
            waiting,
            depth,
            oldest,
            jobs,
            stopped,
            *self._replicas(),
        ]

    def _replicas(self) -> list[Any]:
        """Each replica of each component (label ``replica``: its index)."""
        labels = ["component", "replica"]
        up = GaugeMetricFamily("cncf_replica_up", "1 when the replica is ready or busy", labels=labels)
        restarts = CounterMetricFamily("cncf_replica_restarts", "restarts of the replica's worker", labels=labels)
        flight = GaugeMetricFamily("cncf_replica_in_flight", "calls running on the replica", labels=labels)
        for name, index, alive, count, running in self.replicas:
            up.add_metric([name, index], 1.0 if alive else 0.0)
            restarts.add_metric([name, index], float(count))
            flight.add_metric([name, index], float(running))
        return [up, restarts, flight]

    def render(self) -> bytes:
        return generate_latest(self.registry)


def refused_labels(hub: AsyncHub, selector: str) -> tuple[str, str]:
    """The (component, operation) labels of a call the engine never ran: its
    component's name when the selector names a loaded one (even a failed one),
    and the operation when it resolves; empty otherwise (a selector is the
    caller's text: it never becomes a label by itself)."""
    try:
        d = hub.engine.dispatch(selector)
    except Exception:  # noqa: BLE001 - not resolvable: the component, if known, is still a label
        sel = Selector.parse(selector) if isinstance(selector, str) else None
        handle = hub.component(sel.component) if sel is not None else None
        return (handle.name, "") if handle is not None else ("", "")
    target = d.call.target
    return target.component, f"{target.service}.{target.operation}"


__all__ = ["BUCKETS", "CONTENT_TYPE", "HubMetrics", "outcome_label", "refused_labels"]
