"""Replica: one worker of a component, and its supervisor.

A component runs as one or more replicas (``replicas = N``); each replica is
its own worker (a process, a JVM host of its own, a Ray-placed worker) with
its own loaded artifact, live instance and admission slot in the component's
gate, so the policy applies per replica.  A replica owns its lifecycle
(loading → ready ⇄ busy → crashed → restarting → … → unloaded, or failed)
and applies the declared restart policy like an OTP supervisor: at most
``max_restarts`` restarts within ``restart_period`` seconds, with an
exponential back-off starting at ``restart_backoff``.

*Where* a restart runs is the one difference the number of replicas makes:

* a component with **one** replica restarts lazily, in the path of the next
  call that needs it (nobody else could serve that call; a crash while idle
  costs nothing until the component is used again);
* a component with **several** replicas restarts a lost replica at once in
  the background, never in a caller's path: its slot is closed meanwhile, so
  the calls go to the other replicas, and reopens when it is back.

All restart logic lives in :meth:`Replica._restart` (and the decision to
start one in :meth:`Replica.mark_crashed`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import time
from typing import TYPE_CHECKING, Any

from cncf.boundaries.base import Boundary, Instance, Loaded
from cncf.engine.gate import Gate, Slot
from cncf.failures import internal_error, observation_cause
from cncf.manifest import ComponentSpec
from cncf.observation import Code, Failed, Observation, Stage
from cncf.placement import SPREAD, Spread
from cncf.policy import Restart

if TYPE_CHECKING:
    from cncf.engine.component import Component

_CRASH_CODES = frozenset({Code.WORKER_CRASHED, Code.OUT_OF_MEMORY, Code.PROTOCOL_ERROR})


class State(enum.StrEnum):
    LOADING = "loading"
    READY = "ready"
    BUSY = "busy"
    FAILED = "failed"
    CRASHED = "crashed"
    RESTARTING = "restarting"
    UNLOADED = "unloaded"
    DRAINING = "draining"  # an old generation finishing its calls (components only)


class Reroute(Failed):
    """The replica a call was admitted to turned out lost (it died while idle) and
    other replicas may serve: the engine returns the slot and routes again."""


class Replica:
    """One worker of a component (see the module docstring)."""

    def __init__(self, component: Component, index: int, spec: ComponentSpec, boundary: Boundary[Any, Any]) -> None:
        self.component = component
        self.index = index
        self.spec = spec
        self.boundary = boundary
        self.gate: Gate = Gate()  # replaced by the component's gate when it places the replica
        self.slot: Slot = self.gate.slots[0]
        self.loaded: Loaded | None = None
        self.instance: Instance | None = None
        self.observation: Observation | None = None
        self.restarts = 0
        self.incarnation = 0  # bumps with every fresh instance (a stale crash report is ignored)
        self.loaded_at = 0.0
        self._state = State.LOADING
        self._restart_times: collections.deque[float] = collections.deque()
        self._restarting: asyncio.Future[None] | None = None
        self._restart_failed = False  # the last restart failed retryably (state crashed)
        self._task: asyncio.Task[None] | None = None  # a background restart

    # ------------------------------------------------------------- state

    @property
    def state(self) -> State:
        if self._state is State.READY and self.slot.running:
            return State.BUSY
        return self._state

    @property
    def label(self) -> str:
        return f"{self.component.name}#{self.index}"

    def _shared(self) -> bool:
        """Several replicas behind one gate: a lost one is routed around."""
        return len(self.gate.slots) > 1

    # --------------------------------------------------------- lifecycle

    async def start(self) -> Observation | None:
        """Load and instantiate; None when ready, else the Observation (state failed)."""
        self._state = State.LOADING
        try:
            await self._load_and_instantiate()
        except Failed as exc:
            self._fail(exc.observation)
        except Exception as exc:  # a defect in a boundary: still data
            self._fail(internal_error(exc, f"loading {self.label!r} failed", stage=Stage.LOAD))
        return self.observation if self._state is State.FAILED else None

    def _fail(self, obs: Observation) -> None:
        self.observation = obs.with_context(target=self.component.name)
        self._state = State.FAILED
        self._lost(self.observation)

    async def _load_and_instantiate(self) -> None:
        # Several replicas placed on Ray spread over the nodes (cncf.placement.Spread).
        spread = self.spec.placement == "ray" and (len(self.component.replicas) > 1 or self.spec.autoscaled)
        token = SPREAD.set(Spread(self.component, self) if spread else None)
        try:
            loaded = await self.boundary.load(self.spec)
        finally:
            SPREAD.reset(token)
        try:
            services = self.component.operations_of(loaded)
            instance = await self.boundary.instantiate(loaded)
        except BaseException:
            await self._quiet_unload(loaded, None)
            raise
        if self._state is State.UNLOADED:  # unloaded while it was starting
            await self._quiet_unload(loaded, instance)
            return
        self.loaded, self.instance = loaded, instance
        self.component.adopt(services)
        self.incarnation += 1
        self.observation = None
        self.loaded_at = time.time()
        self._state = State.READY
        self.gate.reset()
        self.gate.open(self.slot)

    async def ready_instance(self) -> Instance:
        """The live instance, restarting a crashed one when policy allows.

        Raises ``Failed`` with the load Observation (failed), or
        ``component_unavailable`` (crashed beyond its restart policy, unloaded),
        or :class:`Reroute` when other replicas may serve the call.
        """
        st = self._state
        if st is State.READY:
            instance = self.instance
            assert instance is not None
            if self.boundary.health(instance).alive:
                return instance
            self.mark_crashed(
                Observation.of(
                    Code.WORKER_CRASHED, f"the instance of {self.label!r} died while idle", target=self.component.name
                )
            )
            st = self._state
        if self._shared() and st is not State.READY:
            raise Reroute(self.observation or self._unavailable(st.value))
        if st is State.RESTARTING and self._restarting is not None:
            await asyncio.shield(self._restarting)
            self._raise_if_restart_failed()
            return await self.ready_instance()
        if st is State.CRASHED:
            allowed, why = self._restart_allowed()
            if allowed:
                await self._restart()
                self._raise_if_restart_failed()
                return await self.ready_instance()
            raise Failed(
                Observation.of(
                    Code.COMPONENT_UNAVAILABLE,
                    f"component {self.component.name!r} crashed and is not restarted: {why}",
                    target=self.component.name,
                    cause=observation_cause(self.observation),
                    last_code=self.observation.code.value if self.observation else None,
                )
            )
        if st is State.FAILED:
            assert self.observation is not None
            raise Failed(self.observation)
        raise Failed(self._unavailable(st.value))

    def _unavailable(self, what: str) -> Observation:
        return Observation.of(
            Code.COMPONENT_UNAVAILABLE, f"component {self.component.name!r} is {what}", target=self.component.name
        )

    def mark_crashed(self, obs: Observation, incarnation: int | None = None) -> None:
        """The instance died: restart it (lazily with one replica, at once in the
        background with several).

        When the restart policy allows a restart, the calls waiting at the gate
        stay in line and are served by the fresh instance or another replica
        (each within its own wait limits); otherwise every waiter that no other
        replica can serve is woken at once with ``instance_lost_waiting``."""
        if incarnation is not None and incarnation != self.incarnation:
            return  # a report about an instance we already replaced
        if self._state is not State.READY:
            return
        self._state = State.CRASHED
        self.observation = obs
        shared = self._shared()
        if shared:
            self.gate.close(self.slot)
        if self._restart_allowed()[0]:
            if self.component.eager_restarts and self._task is None:
                self._task = task = asyncio.get_running_loop().create_task(self._restart_in_background())
                self.component.background.add(task)
                task.add_done_callback(self.component.background.discard)
            return
        self._lost(obs)

    def _lost(self, obs: Observation) -> None:
        """This replica will not serve again: break the line if no replica can."""
        if self._shared():
            self.gate.close(self.slot)
            if any(r.may_serve() for r in self.component.replicas if r.gate is self.gate):
                return
        self.gate.break_(
            Observation.of(
                Code.INSTANCE_LOST_WAITING,
                f"the instance of {self.component.name!r} was lost while this call waited: {obs.message}",
                target=self.component.name,
                cause=observation_cause(obs),
                lost_code=obs.code.value,
            )
        )

    def may_serve(self) -> bool:
        """Ready, or on its way back."""
        st = self._state
        if st in (State.READY, State.LOADING, State.RESTARTING):
            return True
        return st is State.CRASHED and self._restart_allowed()[0]

    def is_crash(self, obs: Observation) -> bool:
        if obs.code in _CRASH_CODES:
            return True
        return not self.alive()

    def alive(self) -> bool:
        """Whether the live instance (if any) reports itself alive."""
        return self.instance is None or self.boundary.health(self.instance).alive

    def _restart_allowed(self) -> tuple[bool, str]:
        if self.spec.restart is not Restart.ON_FAILURE:
            return False, "restart = 'never'"
        now = time.monotonic()
        while self._restart_times and now - self._restart_times[0] > self.spec.restart_period:
            self._restart_times.popleft()
        if len(self._restart_times) >= self.spec.max_restarts:
            return False, (
                f"{self.spec.max_restarts} restarts within {self.spec.restart_period:g}s "
                "(max_restarts / restart_period)"
            )
        return True, ""

    def _raise_if_restart_failed(self) -> None:
        """The restart this call waited for failed retryably: the call gets that
        failure (a later call restarts again), it does not loop on restarts."""
        if self._state is State.CRASHED and self._restart_failed and self.observation is not None:
            raise Failed(self.observation)

    async def _restart_in_background(self) -> None:
        """Restart until the replica is back, failed for good, or unloaded."""
        try:
            while self._state is State.CRASHED and self._restart_allowed()[0]:
                await self._restart()
            if self._state is State.CRASHED:  # the intensity limit was reached
                assert self.observation is not None
                self._lost(self.observation)
        except Exception:  # a defect must not leave an unretrieved task error
            pass
        finally:
            self._task = None

    async def _restart(self) -> None:
        """The one place an instance is replaced after a crash."""
        loop = asyncio.get_running_loop()
        self._restarting = fut = loop.create_future()
        self._restart_failed = False
        self._state = State.RESTARTING
        n = len(self._restart_times)
        self._restart_times.append(time.monotonic())
        self.restarts += 1
        try:
            await self._quiet_unload(self.loaded, self.instance)
            self.loaded = self.instance = None
            if n and self.spec.restart_backoff:
                await asyncio.sleep(min(self.spec.restart_backoff * 2 ** (n - 1), 5.0))
            if self._state is not State.RESTARTING:
                return  # unloaded meanwhile
            try:
                await self._load_and_instantiate()
            except Failed as exc:
                obs = exc.observation
                if obs.retryable and self._restart_allowed()[0]:
                    # A cause that may go away (a worker that could not start, a node that
                    # is gone): still restartable, with back-off, within the intensity limit.
                    self.observation = obs.with_context(target=self.component.name)
                    self._state = State.CRASHED
                    self._restart_failed = True
                else:
                    self._fail(obs)
            except Exception as exc:
                self._fail(internal_error(exc, f"restarting {self.label!r} failed", stage=Stage.LOAD))
        finally:
            fut.set_result(None)
            self._restarting = None

    async def _quiet_unload(self, loaded: Loaded | None, instance: Instance | None) -> None:
        if loaded is None:
            return
        try:
            await self.boundary.unload(loaded, instance)
        except Exception:  # unloading a dead instance may fail; nothing is left to save
            pass

    async def unload(self) -> None:
        if self._state is State.UNLOADED:
            return
        self._state = State.UNLOADED
        self.gate.close(self.slot)
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        loaded, instance = self.loaded, self.instance
        self.loaded = self.instance = None
        await self._quiet_unload(loaded, instance)

    # -------------------------------------------------------------- views

    def describe(self) -> dict[str, Any]:
        health = None
        if self.instance is not None:
            h = self.boundary.health(self.instance)
            health = {"alive": h.alive, "pid": h.pid, "rss_kb": h.rss_kb, "detail": h.detail}
        placement = getattr(self.loaded, "placement", None) or {"engine": "local", "node_id": None, "address": None}
        stats = self.gate.statistics(self.slot)
        return {
            "index": self.index,
            "state": self.state.value,
            "pid": health["pid"] if health else None,
            "node": placement.get("node_id"),
            "health": health,
            "placement": placement,
            "calls": {"running": stats.running, "admitted_total": stats.admitted_total},
            "restarts": self.restarts,
            "incarnation": self.incarnation,
            "observation": self.observation.to_dict() if self.observation else None,
        }


__all__ = ["Replica", "Reroute", "State"]
