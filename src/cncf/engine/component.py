"""Component: the state owner — one generation of a loaded artifact, as one or more replicas.

A Component is one loaded artifact (one *generation* of it: an upgrade makes
a new Component beside the old, see :mod:`cncf.engine.generations`) served
by ``replicas`` workers (:class:`~cncf.engine.replicas.Replica`), each with
its own live instance, admission slot and supervisor.  The component groups
the operations, decides which gate a call goes through, and sums its
replicas up for ``inspect``:

* a **stateless** component (``stateless = true``) has one gate for all its
  replicas: a call goes to the replica with the fewest calls in flight and
  waits only when every replica is full;
* a **keyed** component (``route_by = "ARG"``) has one gate per replica: the
  value of that argument picks the replica (a stable hash), so the same key
  always reaches the same replica, as a sharded actor;
* a component with one replica (the default, stateful) is the special case
  of both.

A component is stateful unless it says otherwise, so more than one replica
needs ``stateless`` or ``route_by`` (the manifest refuses it otherwise).  The
Component never schedules calls — the ActionEngine does, through its gates.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import math
import time
import zlib
from typing import Any

from cncf.boundaries.base import Boundary, Instance, Loaded
from cncf.call import ActionCall
from cncf.engine.gate import Gate
from cncf.engine.operations import OperationEntry, build_operations
from cncf.engine.replicas import Replica, Reroute, State
from cncf.manifest import ComponentSpec
from cncf.observation import Code, Failed, Observation, Stage


def replica_spec(spec: ComponentSpec) -> ComponentSpec:
    """The spec each replica loads: with several replicas every one is its own
    worker, so a jar replica gets a JVM host of its own."""
    if spec.replicas > 1 and spec.form == "jar" and spec.isolation != "process":
        return dataclasses.replace(spec, isolation="process")
    return spec


class Component:
    """One generation of a loaded artifact, served by its replicas (see the module docstring)."""

    def __init__(
        self,
        spec: ComponentSpec,
        boundary: Boundary[Any, Any] | None,
        *,
        generation: int = 1,
        background: set[asyncio.Task[None]] | None = None,
    ) -> None:
        self.spec = spec
        # Work of this component that runs on no caller's path (restarts of lost replicas):
        # the hub's set, so that it keeps its loop turning for them.
        self.background: set[asyncio.Task[None]] = background if background is not None else set()
        self.name = spec.name
        self.boundary = boundary
        self.generation = generation
        self.services: dict[str, dict[str, OperationEntry]] = {}
        self.loaded_at = 0.0
        # How far each cancellation of a call finally went (tier -> count), for inspect.
        self.cancellations: collections.Counter[str] = collections.Counter()
        self._observation: Observation | None = None  # why the component failed to load
        self._state = State.LOADING
        self.route_by = spec.route_by
        rspec = replica_spec(spec)
        self.replicas: list[Replica] = (
            [Replica(self, i, rspec, boundary) for i in range(spec.replicas)] if boundary is not None else []
        )
        # One replica restarts in its caller's path; several restart in the background.
        self.eager_restarts = len(self.replicas) > 1 or spec.autoscaled
        if self.route_by is not None and len(self.replicas) > 1:
            self.gates = [self._place(Gate([r]), [r]) for r in self.replicas]
        else:
            self.gates = [self._place(Gate(list(self.replicas) or None), self.replicas)]
        self.gate = self.gates[0]
        self._keys: dict[int, int | None] = {}  # id(entry) -> positional index of route_by
        self.autoscaler = Autoscaler(self) if spec.autoscaled and self.replicas else None
        # The one replica of an ordinary component (the engine's fast path), else None.
        self.single: Replica | None = self.replicas[0] if len(self.replicas) == 1 and self.autoscaler is None else None

    @staticmethod
    def _place(gate: Gate, replicas: list[Replica]) -> Gate:
        for r, slot in zip(replicas, gate.slots, strict=False):
            r.gate, r.slot = gate, slot
        return gate

    # ------------------------------------------------------------- state

    @property
    def state(self) -> State:
        st = self._state
        if st is not State.READY:
            return st
        replicas = self.replicas
        if len(replicas) == 1:
            return replicas[0].state
        states = [r.state for r in replicas]
        if State.READY in states:
            return State.READY
        if State.BUSY in states:
            return State.BUSY
        if State.RESTARTING in states or any(r.may_serve() for r in replicas):
            return State.RESTARTING
        return State.CRASHED

    @property
    def observation(self) -> Observation | None:
        """Why the component failed to load, or the last crash of a replica not (yet) back."""
        if self._observation is not None or self._state is not State.READY:
            return self._observation
        for r in self.replicas:
            if r.observation is not None and r.state is not State.READY:
                return r.observation
        return None

    @property
    def restarts(self) -> int:
        return sum(r.restarts for r in self.replicas)

    @property
    def instance(self) -> Instance | None:
        """The first replica's live instance (one-replica views)."""
        return self.replicas[0].instance if self.replicas else None

    @property
    def loaded(self) -> Loaded | None:
        return self.replicas[0].loaded if self.replicas else None

    def operation_names(self) -> dict[str, list[str]]:
        return {s: list(ops) for s, ops in self.services.items()}

    def operations_of(self, loaded: Loaded) -> dict[str, dict[str, OperationEntry]]:
        """Group what a replica's artifact offers (raises ``invalid_manifest``)."""
        return build_operations(self.spec, list(loaded.operations))

    def adopt(self, services: dict[str, dict[str, OperationEntry]]) -> None:
        """A replica is ready: the first one sets the services."""
        if not self.services:
            self.services = services

    def in_flight(self) -> int:
        return sum(g.running for g in self.gates)

    # --------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load and instantiate every replica; never raises (a failure of any leaves
        the component ``failed`` and its other replicas unloaded)."""
        self._state = State.LOADING
        if not self.replicas:
            self._fail(Observation.of(Code.UNSUPPORTED_FORM, f"no boundary for form {self.spec.form!r}"))
            return
        results = await asyncio.gather(*(r.start() for r in self.replicas))
        failure = next((o for o in results if o is not None), None)
        if failure is not None:
            for r in self.replicas:
                await r.unload()
            self._fail(failure)
            return
        self.loaded_at = time.time()
        self._state = State.READY

    def _fail(self, obs: Observation) -> None:
        self._observation = obs.with_context(target=self.name)
        self._state = State.FAILED
        for g in self.gates:
            g.break_(self._observation)

    def route(self, call: ActionCall, entry: OperationEntry) -> Gate:
        """The gate a call goes through (keyed: its key's replica).  Raises
        ``Failed`` (``invalid_arguments``) for a keyed call without its key."""
        gates = self.gates
        if len(gates) == 1:
            return gates[0]
        return gates[self._shard(call, entry)]

    def _shard(self, call: ActionCall, entry: OperationEntry) -> int:
        key = self.route_by
        assert key is not None
        if key in call.kwargs:
            value = call.kwargs[key]
        else:
            index = self._keys.get(id(entry), -1)
            if index == -1:
                index = self._keys[id(entry)] = _position(entry, key)
            if index is None or index >= len(call.args):
                raise Failed(
                    Observation.of(
                        Code.INVALID_ARGUMENTS,
                        f"{call.target} needs its routing key {key!r} (route_by): the same value always "
                        f"reaches the same replica; pass {key}=… (named"
                        + (", or at its position)" if index is not None else ")"),
                        stage=Stage.DISPATCH,
                        target=str(call.target),
                        call_id=call.id,
                        route_by=key,
                    )
                )
            value = call.args[index]
        try:
            text = json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError):
            text = repr(value)
        return zlib.crc32(text.encode("utf-8", "surrogatepass")) % len(self.gates)

    async def prepare(self, gate: Gate) -> Instance | None:
        """Before admission: a one-replica gate's live instance (restarting it when
        policy allows; raises ``Failed``); for a shared gate, None once some
        replica may serve (the replica is known at admission)."""
        if self.autoscaler is not None:
            self.autoscaler.observe()
        one = gate.single
        if one is not None:
            replica: Replica = one.owner
            return await replica.ready_instance()
        if self._state is not State.READY and self._state is not State.DRAINING:
            raise Failed(self.observation or self._unavailable())
        return None

    def _unavailable(self) -> Observation:
        return Observation.of(
            Code.COMPONENT_UNAVAILABLE, f"component {self.name!r} is {self.state.value}", target=self.name
        )

    @property
    def retries_elsewhere(self) -> bool:
        """A call lost with its replica may run again on another one (stateless, several replicas)."""
        return len(self.gates[0].slots) > 1

    def serving(self) -> bool:
        """Will a call need no lifecycle work (the synchronous facade's fast path)?
        One replica: it is alive.  Several: one is ready (a lost one is routed around)."""
        replicas = self.replicas
        if len(replicas) == 1:
            r = replicas[0]
            return r.instance is not None and r.boundary.health(r.instance).alive
        return any(r._state is State.READY for r in replicas)

    def alive(self) -> bool:
        return all(r.alive() for r in self.replicas)

    async def unload(self) -> None:
        if self._state is State.UNLOADED:
            return
        self._state = State.UNLOADED
        if self.autoscaler is not None:
            self.autoscaler.stop()
        for g in self.gates:
            g.break_(
                Observation.of(Code.INSTANCE_LOST_WAITING, f"component {self.name!r} was unloaded", target=self.name)
            )
        await asyncio.gather(*(r.unload() for r in self.replicas), return_exceptions=True)

    def drain(self) -> None:
        """An older generation: still finishing its calls, no longer routed to."""
        if self._state is State.READY:
            self._state = State.DRAINING

    # -------------------------------------------------------------- views

    def describe(self) -> dict[str, Any]:
        """What ``cncf inspect`` shows."""
        replicas = [r.describe() for r in self.replicas]
        first = next((r for r in replicas if r["health"] and r["health"]["alive"]), replicas[0] if replicas else None)
        stats = [g.statistics() for g in self.gates]
        obs = self.observation
        return {
            "name": self.name,
            "form": self.spec.form,
            "state": self.state.value,
            "generation": self.generation,
            "artifact": str(self.spec.artifact),
            "manifest": self.spec.manifest_path,
            "entry": getattr(self.loaded, "entry", None) or self.spec.entry,
            "restart": {
                "policy": self.spec.restart,
                "max_restarts": self.spec.max_restarts,
                "restart_period": self.spec.restart_period,
                "restarts": self.restarts,
            },
            "health": first["health"] if first else None,
            "placement": first["placement"] if first else {"engine": "local", "node_id": None, "address": None},
            "calls": {
                "running": sum(s.running for s in stats),
                "exclusive": any(s.exclusive for s in stats),
                "waiting": sum(s.waiting for s in stats),
                "admitted_total": sum(s.admitted_total for s in stats),
            },
            "replicas": replicas,
            "scaling": {
                "replicas": len(self.replicas),
                "stateless": self.spec.stateless,
                "route_by": self.route_by,
                **(self.autoscaler.describe() if self.autoscaler is not None else {}),
            },
            # The tier each cancelled call finally took (cooperative / killed / abandoned / late).
            "cancellations": dict(self.cancellations),
            "observation": obs.to_dict() if obs else None,
            "services": {
                sname: {
                    op.name: {
                        "params": [p.to_dict() for p in op.info.params] if op.info.params is not None else None,
                        **(
                            {"overloads": [[p.to_dict() for p in o] for o in op.info.overloads]}
                            if op.info.overloads
                            else {}
                        ),
                        "doc": op.info.doc,
                        "policy": op.policy.to_dict(),
                    }
                    for op in ops.values()
                }
                for sname, ops in self.services.items()
            },
        }


class Autoscaler:
    """Replicas between ``min_replicas`` and ``max_replicas`` of a stateless component.

    The wanted count is ``ceil(calls in flight and waiting / target_in_flight)``,
    clamped; it is looked at when a call arrives (an idle component costs
    nothing) and acted on when it has differed from the current count, in the
    same direction, for ``scale_up_delay`` (more) or ``scale_down_delay`` (fewer)
    seconds.  One step at a time runs in the background: a new replica joins the
    line when it is ready; a retired one leaves the line at once, finishes its
    calls (within ``drain_timeout``) and unloads."""

    def __init__(self, comp: Component) -> None:
        spec = comp.spec
        assert spec.max_replicas is not None
        self.comp = comp
        self.low = spec.min_replicas or 1
        self.high = spec.max_replicas
        self.target = spec.target_in_flight
        self._since: float | None = None  # when the wanted count started to differ
        self._up = False
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.scaled = 0  # steps taken

    def _recheck(self, after: float) -> None:
        """Look again in ``after`` seconds (a timer: it keeps no loop turning)."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(max(after, 0.0) + 0.01, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self.observe(arriving=False)

    def wanted(self, arriving: bool = True) -> int:
        gate = self.comp.gates[0]
        demand = gate.running + gate.statistics().waiting + arriving  # the arriving call counts
        return max(self.low, min(self.high, math.ceil(demand / self.target)))

    def observe(self, arriving: bool = True) -> None:
        if self._task is not None or self.comp.state is State.UNLOADED:
            return
        n = len(self.comp.replicas)
        if n > self.low:  # above the floor: look again later even if no call comes
            self._recheck(self.comp.spec.scale_down_delay)
        want = self.wanted(arriving)
        now = time.monotonic()
        if want == n:
            self._since = None
            return
        up = want > n
        delay = self.comp.spec.scale_up_delay if up else self.comp.spec.scale_down_delay
        if self._since is None or up != self._up:
            self._since, self._up = now, up
            if not up:  # fewer: look again after the delay even if no call comes (an idle component)
                self._recheck(delay)
            return
        if now - self._since < delay:
            if not up:
                self._recheck(self._since + delay - now)
            return
        self._since = None
        self._task = task = asyncio.get_running_loop().create_task(self._step(up))
        self.comp.background.add(task)
        task.add_done_callback(self.comp.background.discard)

    async def _step(self, up: bool) -> None:
        comp = self.comp
        gate = comp.gates[0]
        try:
            if up:
                index = max((r.index for r in comp.replicas), default=-1) + 1
                assert comp.boundary is not None
                replica = Replica(comp, index, comp.replicas[0].spec, comp.boundary)
                replica.gate = gate
                replica.slot = gate.add(replica, open=False)  # it joins the line when it is ready
                comp.replicas.append(replica)
                if await replica.start() is not None:  # could not start: leave it out
                    gate.remove(replica.slot)
                    comp.replicas.remove(replica)
                    return
                self.scaled += 1
            else:
                if len(comp.replicas) <= self.low:
                    return
                victim = min(reversed(comp.replicas), key=lambda r: r.slot.running)
                gate.remove(victim.slot)
                comp.replicas.remove(victim)
                self.scaled += 1
                loop = asyncio.get_running_loop()
                end = loop.time() + comp.spec.drain_timeout
                while victim.slot.running and loop.time() < end:
                    await asyncio.sleep(0.02)
                await victim.unload()
        except Exception:  # a defect must not leave an unretrieved task error
            pass
        finally:
            self._task = None
        if not up:
            self.observe(arriving=False)  # one step at a time: further down after the delay

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def describe(self) -> dict[str, Any]:
        spec = self.comp.spec
        return {
            "min_replicas": self.low,
            "max_replicas": self.high,
            "target_in_flight": self.target,
            "scale_up_delay": spec.scale_up_delay,
            "scale_down_delay": spec.scale_down_delay,
            "steps": self.scaled,
        }


def _position(entry: OperationEntry, key: str) -> int | None:
    """The positional index of parameter ``key`` where the parameter names are known."""
    params = entry.info.params
    if params is None:
        return None
    for i, p in enumerate(params):
        if p.kind in ("varargs", "varkw", "named"):
            return None
        if p.name == key:
            return i
    return None


__all__ = ["Component", "Reroute", "State"]
