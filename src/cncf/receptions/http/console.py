"""The console's data: what the dashboard's charts and component pages show.

Fed by the engine's events (``AsyncHub.subscribe``: one per finished call,
from every reception, job attempts included) and by the hub's own component
views; nothing leaves the process.  Three memories, all bounded:

- :class:`cncf.series.Series`: per component and second, calls, failures
  and durations over the last ten minutes (the charts);
- per component, its last :data:`FAILURES` failed calls with the whole
  Observation (cause chain and stacks) and what the call printed;
- per component, its last :data:`STATES` state changes and restarts, as seen
  at each call failure and each time the console is read (the dashboard
  reads it every second), so a change shorter than that may be missed.

Routes (``app.py``): ``GET /hub/v1/console`` (every component's figures
over the last minute and its chart points) and ``GET
/hub/v1/console/{name}`` (one component's page).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from cncf.engine.events import CallFinished
from cncf.hub import AsyncHub
from cncf.series import Series

FAILURES = 25  # failed calls kept per component
STATES = 50  # state changes kept per component
_OUTPUT = 16_384  # characters of a failed call's stdout / stderr kept


def _clip(text: str) -> str:
    return text if len(text) <= _OUTPUT else text[:_OUTPUT] + f"\n… ({len(text) - _OUTPUT} more characters)"


def _nothing() -> None:
    pass


class ConsoleData:
    """The in-memory series, recent failures and state history of one serving hub."""

    def __init__(self, hub: AsyncHub, *, series: Series | None = None, subscribe: bool = True) -> None:
        """``subscribe=False``: the owner feeds :meth:`on_call` from its own engine
        listener (one listener a call instead of two)."""
        self.hub = hub
        self.series = series or Series()
        self.failures: dict[str, deque[dict[str, Any]]] = {}
        self.states: dict[str, deque[dict[str, Any]]] = {}
        self._last: dict[str, tuple[str, int]] = {}
        self.observe()
        self._unsubscribe = hub.subscribe(self.on_call) if subscribe else _nothing

    def close(self) -> None:
        self._unsubscribe()

    # ---------------------------------------------------------- the feed

    def on_call(self, event: CallFinished) -> None:
        """The engine listener: one bucket entry a call; a failure kept whole."""
        self.on_calls((event,))

    def on_calls(self, events: Sequence[CallFinished]) -> None:
        """Finished calls, in a batch (the reception's deferred engine listener)."""
        self.series.record_many(
            (e.call.target.component, (e.ended_ns - e.admitted_ns) / 1e9, e.outcome.observation is not None)
            for e in events
        )
        for event in events:
            if event.outcome.observation is not None:
                self._failed(event)

    def _failed(self, event: CallFinished) -> None:
        component = event.call.target.component
        obs = event.outcome.observation
        assert obs is not None
        ring = self.failures.get(component)
        if ring is None:
            ring = self.failures[component] = deque(maxlen=FAILURES)
        ctx = event.call.context
        ring.append(
            {
                "t": time.time(),
                "call_id": event.call.id,
                "target": event.call.target.text,
                "caller": ctx.caller,
                "correlation_id": ctx.correlation_id,
                "duration": max(0.0, event.duration),
                "tier": event.tier,
                "observation": obs.to_dict(),
                "stdout": _clip(event.outcome.stdout or ""),
                "stderr": _clip(event.outcome.stderr or ""),
            }
        )
        handle = self.hub.component(component)
        if handle is not None:
            self._note(component, handle.state, handle.restarts, obs.code.value)

    def observe(self) -> None:
        """Note every component's state and restarts as they are now."""
        for h in self.hub.components():
            obs = h.observation
            self._note(h.name, h.state, h.restarts, obs.code.value if obs is not None else None)

    def _note(self, name: str, state: str, restarts: int, code: str | None) -> None:
        last = self._last.get(name)
        if last == (state, restarts):
            return
        self._last[name] = (state, restarts)
        log = self.states.get(name)
        if log is None:
            log = self.states[name] = deque(maxlen=STATES)
        entry: dict[str, Any] = {"t": time.time(), "state": state, "restarts": restarts}
        if last is not None and restarts > last[1]:
            entry["restarted"] = restarts - last[1]
        if code is not None and state not in ("ready", "busy"):
            entry["code"] = code
        log.append(entry)

    # ---------------------------------------------------------- the views

    def overview(self, *, span: int = 300, step: int = 5) -> dict[str, Any]:
        """Every loaded component's figures over the last minute, its last
        failure, and its chart points."""
        self.observe()
        now = time.time()
        comps = {}
        for h in self.hub.components():
            ring = self.failures.get(h.name)
            last = ring[-1] if ring else None
            comps[h.name] = {
                "minute": self.series.totals(h.name, span=60, now=now),
                "last_failure": None
                if last is None
                else {k: last[k] for k in ("t", "call_id", "target", "caller")} | {"observation": _brief(last)},
                "points": self.series.points(h.name, span=span, step=step, now=now),
            }
        return {"now": now, "span": span, "step": step, "components": comps}

    def page(self, name: str, *, span: int = 300, step: int = 5) -> dict[str, Any]:
        """One component's page: its ``inspect``, state history, recent failures
        (newest first) and chart points."""
        self.observe()
        now = time.time()
        return {
            "now": now,
            "span": span,
            "step": step,
            "component": self.hub.inspect(name),
            "states": list(self.states.get(name, ()))[::-1],
            "failures": list(self.failures.get(name, ()))[::-1],
            "minute": self.series.totals(name, span=60, now=now),
            "points": self.series.points(name, span=span, step=step, now=now),
        }


def _brief(failure: dict[str, Any]) -> dict[str, Any]:
    obs = failure["observation"]
    return {k: obs.get(k) for k in ("code", "stage", "message")}


def span_and_step(query: Any) -> tuple[int, int] | None:
    """``span`` (60..600 s, default 300) and ``step`` (1..60 s, default 5) from a
    query, or None when either is not a whole number in range."""
    try:
        span = int(query.get("span", "300"))
        step = int(query.get("step", "5"))
    except ValueError:
        return None
    if not (60 <= span <= 600 and 1 <= step <= 60 and span // step <= 600):
        return None
    return span, step


__all__ = ["FAILURES", "STATES", "ConsoleData", "span_and_step"]
