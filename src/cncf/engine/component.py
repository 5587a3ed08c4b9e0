"""Component: the state owner, its lifecycle, and its supervisor.

A Component is one loaded artifact with one live instance.  It owns the
lifecycle (loading → ready ⇄ busy → crashed → restarting → … → unloaded, or
failed) and applies the declared restart policy like an OTP supervisor: at
most ``max_restarts`` restarts within ``restart_period`` seconds, with an
exponential back-off starting at ``restart_backoff``.  Restarts are lazy: a
crashed instance is restarted by the next call that needs it, so a crash
while idle costs nothing until the component is used again.

The Component never schedules calls — the ActionEngine does, through the
component's :class:`~cncf.engine.gate.Gate`.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import time
from typing import Any

from cncf.boundaries.base import Boundary, Instance, Loaded
from cncf.engine.gate import Gate
from cncf.engine.operations import OperationEntry, build_operations
from cncf.failures import internal_error, observation_cause
from cncf.manifest import ComponentSpec
from cncf.observation import Code, Failed, Observation, Stage
from cncf.policy import Restart

_CRASH_CODES = frozenset({Code.WORKER_CRASHED, Code.OUT_OF_MEMORY, Code.PROTOCOL_ERROR})


class State(enum.StrEnum):
    LOADING = "loading"
    READY = "ready"
    BUSY = "busy"
    FAILED = "failed"
    CRASHED = "crashed"
    RESTARTING = "restarting"
    UNLOADED = "unloaded"


class Component:
    """One loaded artifact with one live instance (see module docstring)."""

    def __init__(self, spec: ComponentSpec, boundary: Boundary[Any, Any] | None) -> None:
        self.spec = spec
        self.name = spec.name
        self.boundary = boundary
        self.gate = Gate()
        self.services: dict[str, dict[str, OperationEntry]] = {}
        self.observation: Observation | None = None  # why it is failed / crashed
        self.loaded: Loaded | None = None
        self.instance: Instance | None = None
        self.restarts = 0
        self.generation = 0
        self._state = State.LOADING
        self._restart_times: collections.deque[float] = collections.deque()
        self._restarting: asyncio.Future[None] | None = None
        self._restart_failed = False  # the last restart failed retryably (state crashed)
        self.loaded_at = 0.0
        # How far each cancellation of a call finally went (tier -> count), for inspect.
        self.cancellations: collections.Counter[str] = collections.Counter()

    # ------------------------------------------------------------- state

    @property
    def state(self) -> State:
        if self._state is State.READY and self.gate.running:
            return State.BUSY
        return self._state

    def operation_names(self) -> dict[str, list[str]]:
        return {s: list(ops) for s, ops in self.services.items()}

    # --------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load and instantiate; never raises (a failure leaves state ``failed``)."""
        self._state = State.LOADING
        try:
            await self._load_and_instantiate()
        except Failed as exc:
            self._fail(exc.observation)
        except Exception as exc:  # a defect in a boundary: still data
            self._fail(internal_error(exc, f"loading {self.name!r} failed", stage=Stage.LOAD))

    def _fail(self, obs: Observation) -> None:
        self.observation = obs.with_context(target=self.name)
        self._state = State.FAILED
        self.gate.break_(self.observation)

    async def _load_and_instantiate(self) -> None:
        if self.boundary is None:
            raise Failed(Observation.of(Code.UNSUPPORTED_FORM, f"no boundary for form {self.spec.form!r}"))
        loaded = await self.boundary.load(self.spec)
        try:
            services = build_operations(self.spec, list(loaded.operations))
            instance = await self.boundary.instantiate(loaded)
        except BaseException:
            await self._quiet_unload(loaded, None)
            raise
        self.loaded, self.instance, self.services = loaded, instance, services
        self.generation += 1
        self.observation = None
        self.loaded_at = time.time()
        self.gate.reset()
        self._state = State.READY

    async def ready_instance(self) -> Instance:
        """The live instance, restarting a crashed one when policy allows.

        Raises ``Failed`` with the load Observation (failed), or
        ``component_unavailable`` (crashed beyond its restart policy, unloaded).
        """
        st = self._state
        if st is State.READY:
            assert self.boundary is not None and self.instance is not None
            if self.boundary.health(self.instance).alive:
                return self.instance
            self.mark_crashed(
                Observation.of(Code.WORKER_CRASHED, f"the instance of {self.name!r} died while idle", target=self.name)
            )
            st = self._state
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
                    f"component {self.name!r} crashed and is not restarted: {why}",
                    target=self.name,
                    cause=observation_cause(self.observation),
                    last_code=self.observation.code.value if self.observation else None,
                )
            )
        if st is State.FAILED:
            assert self.observation is not None
            raise Failed(self.observation)
        if st is State.UNLOADED:
            raise Failed(
                Observation.of(Code.COMPONENT_UNAVAILABLE, f"component {self.name!r} is unloaded", target=self.name)
            )
        raise Failed(
            Observation.of(Code.COMPONENT_UNAVAILABLE, f"component {self.name!r} is {st.value}", target=self.name)
        )

    def mark_crashed(self, obs: Observation, generation: int | None = None) -> None:
        """The instance died: restart on next use.

        When the restart policy allows a restart, the calls waiting at the gate
        stay in line and are served by the fresh instance (each within its own
        wait limits); otherwise every waiter is woken at once with
        ``instance_lost_waiting`` naming the crash."""
        if generation is not None and generation != self.generation:
            return  # a report about an instance we already replaced
        if self._state not in (State.READY,):
            return
        self._state = State.CRASHED
        self.observation = obs
        if self._restart_allowed()[0]:
            return
        self.gate.break_(
            Observation.of(
                Code.INSTANCE_LOST_WAITING,
                f"the instance of {self.name!r} was lost while this call waited: {obs.message}",
                target=self.name,
                cause=observation_cause(obs),
                lost_code=obs.code.value,
            )
        )

    def is_crash(self, obs: Observation) -> bool:
        if obs.code in _CRASH_CODES:
            return True
        return not self.alive()

    def alive(self) -> bool:
        """Whether the live instance (if any) reports itself alive."""
        return self.instance is None or self.boundary is None or self.boundary.health(self.instance).alive

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

    async def _restart(self) -> None:
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
            try:
                await self._load_and_instantiate()
            except Failed as exc:
                obs = exc.observation
                if obs.retryable and self._restart_allowed()[0]:
                    # A cause that may go away (a worker that could not start, a node that
                    # is gone): still restartable, with back-off, within the intensity limit.
                    self.observation = obs.with_context(target=self.name)
                    self._state = State.CRASHED
                    self._restart_failed = True
                else:
                    self._fail(obs)
            except Exception as exc:
                self._fail(internal_error(exc, f"restarting {self.name!r} failed", stage=Stage.LOAD))
        finally:
            fut.set_result(None)
            self._restarting = None

    async def _quiet_unload(self, loaded: Loaded | None, instance: Instance | None) -> None:
        if loaded is None or self.boundary is None:
            return
        try:
            await self.boundary.unload(loaded, instance)
        except Exception:  # unloading a dead instance may fail; nothing is left to save
            pass

    async def unload(self) -> None:
        if self._state is State.UNLOADED:
            return
        self._state = State.UNLOADED
        self.gate.break_(
            Observation.of(Code.INSTANCE_LOST_WAITING, f"component {self.name!r} was unloaded", target=self.name)
        )
        await self._quiet_unload(self.loaded, self.instance)
        self.loaded = self.instance = None

    async def reload(self) -> None:
        await self.unload()
        self._restart_times.clear()
        await self.start()

    # -------------------------------------------------------------- views

    def describe(self) -> dict[str, Any]:
        """What ``cncf inspect`` shows."""
        health = None
        if self.instance is not None and self.boundary is not None:
            h = self.boundary.health(self.instance)
            health = {"alive": h.alive, "pid": h.pid, "rss_kb": h.rss_kb, "detail": h.detail}
        return {
            "name": self.name,
            "form": self.spec.form,
            "state": self.state.value,
            "artifact": str(self.spec.artifact),
            "manifest": self.spec.manifest_path,
            "entry": getattr(self.loaded, "entry", None) or self.spec.entry,
            "restart": {
                "policy": self.spec.restart,
                "max_restarts": self.spec.max_restarts,
                "restart_period": self.spec.restart_period,
                "restarts": self.restarts,
            },
            "health": health,
            "placement": getattr(self.loaded, "placement", None)
            or {"engine": "local", "node_id": None, "address": None},
            "calls": dataclasses.asdict(self.gate.statistics()),
            # The tier each cancelled call finally took (cooperative / killed / abandoned / late).
            "cancellations": dict(self.cancellations),
            "observation": self.observation.to_dict() if self.observation else None,
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


__all__ = ["Component", "State"]
