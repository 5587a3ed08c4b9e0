"""The ActionEngine: the single execution gate.

Every call from every reception (API, CLI, job worker) passes through
:meth:`ActionEngine.run` (after :meth:`ActionEngine.dispatch`).  The engine resolves the selector (dispatch),
admits the call through the component's fair gate (wait), runs it through the
Boundary (execute), and applies timeouts and cancellation uniformly.  It never
looks inside the payload and never learns which form it drives.

Cancellation follows Trio's split between *origin* and *delivery*: whoever
asks for a cancellation (the caller, the wait deadline, the run deadline,
unload, shutdown) records a :class:`CancelReason` on the call's record first;
delivery (cancelling a waiter's future, a cooperative CANCEL, killing the
worker after the grace period) comes after; the Observation's code is derived
from the recorded reason, never from whichever exception surfaced.

Exactly one Outcome per call: :meth:`run` catches ``BaseException`` around
everything and, should converting a failure itself fail, still returns a
minimal ``internal_error`` Observation (the Temporal activity worker's rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import enum
from collections.abc import Callable, Mapping
from typing import Any

from cncf.call import ActionCall, Arguments, CancelTier, ExecutionContext, Target, new_call_id
from cncf.engine.component import Component, State
from cncf.engine.events import CallFinished
from cncf.engine.operations import OperationEntry
from cncf.observation import Code, Failed, Observation, Stage, observation_cause
from cncf.outcome import Outcome
from cncf.policy import Mode
from cncf.selector import Selector, normalize, resolve

_SETTLED_STATES = frozenset({State.READY, State.BUSY})


class CancelReason(enum.Enum):
    CALLER = "caller"
    WAIT_DEADLINE = "wait deadline"
    RUN_DEADLINE = "run deadline"
    UNLOAD = "unload"
    SHUTDOWN = "shutdown"


_WAITING_CODE = {
    CancelReason.CALLER: Code.CANCELLED_WAITING,
    CancelReason.WAIT_DEADLINE: Code.WAIT_TIMEOUT,
    CancelReason.RUN_DEADLINE: Code.WAIT_TIMEOUT,
    CancelReason.UNLOAD: Code.INSTANCE_LOST_WAITING,
    CancelReason.SHUTDOWN: Code.HUB_CLOSED,
}
_RUNNING_CODE = {
    CancelReason.CALLER: Code.CANCELLED,
    CancelReason.WAIT_DEADLINE: Code.TIMED_OUT,
    CancelReason.RUN_DEADLINE: Code.TIMED_OUT,
    CancelReason.UNLOAD: Code.CANCELLED,
    CancelReason.SHUTDOWN: Code.HUB_CLOSED,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Dispatched:
    """A resolved call: what runs, on which component, under which entry."""

    call: ActionCall
    component: Component
    entry: OperationEntry


@dataclasses.dataclass(frozen=True, slots=True)
class _Resolution:
    """A dispatch-cache entry; valid while ``component`` is still registered
    under ``key`` with the same ``generation``."""

    key: str
    component: Component
    generation: int
    entry: OperationEntry
    target: Target


class _Record:
    """One admitted call: where it is, and why (if) it was cancelled."""

    __slots__ = (
        "call",
        "component",
        "entry",
        "reason",
        "tier",
        "waiter",
        "running",
        "finished",
        "instance",
        "deadline",
    )

    def __init__(self, call: ActionCall, component: Component, entry: OperationEntry) -> None:
        self.call = call
        self.component = component
        self.entry = entry
        self.reason: CancelReason | None = None
        self.tier: CancelTier | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.running = False
        self.finished: asyncio.Future[None] | None = None
        self.instance: Any = None
        self.deadline: float | None = None


class ActionEngine:
    def __init__(self, components: Mapping[str, Component]) -> None:
        self._components = components  # normalized name -> Component (owned by the hub)
        self._records: dict[str, _Record] = {}
        # Dispatch is a dict hit for repeated selectors; a restart (new generation)
        # invalidates the entry.
        self._resolved: dict[str, _Resolution] = {}
        self.closing = False
        self._escalations: set[asyncio.Task[None]] = set()
        self._listeners: list[Callable[[CallFinished], None]] = []

    # ---------------------------------------------------------------- dispatch

    def dispatch(
        self,
        selector: str,
        args: Any = None,
        *,
        timeout: float | None = None,
        caller: str = "api",
        correlation_id: str | None = None,
        call_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Dispatched:
        """Resolve a selector into an ActionCall.  Raises ``Failed`` (dispatch)."""
        cid = call_id or new_call_id()
        if call_id is not None and cid in self._records:  # cancel(id) must name exactly one call
            raise Failed(
                Observation.of(
                    Code.CALL_ID_IN_USE,
                    f"call_id {cid!r} is already used by a call in flight; give each call "
                    "its own id (or none: the hub makes one)",
                    target=str(selector),
                    call_id=cid,
                )
            )
        if self.closing:
            raise Failed(Observation.of(Code.HUB_CLOSED, "the hub is closing", target=selector, call_id=cid))
        hit = self._resolved.get(selector) if isinstance(selector, str) else None
        if (
            hit is not None
            and self._components.get(hit.key) is hit.component
            and hit.component.generation == hit.generation
        ):
            comp, entry, target = hit.component, hit.entry, hit.target
        else:
            comp, entry, target = self._resolve(selector, cid)
        return self._build(cid, selector, comp, entry, target, args, timeout, caller, correlation_id, idempotency_key)

    def _resolve(self, selector: str, cid: str) -> tuple[Component, OperationEntry, Target]:
        sel = Selector.parse(selector) if isinstance(selector, str) else None
        if sel is None:
            raise Failed(
                Observation.of(
                    Code.UNKNOWN_OPERATION,
                    f"{selector!r} is not a selector; expected 'component.operation' or 'component.service.operation'",
                    target=str(selector),
                    call_id=cid,
                )
            )
        comp = self._components.get(normalize(sel.component))
        if comp is None:
            names = sorted(c.name for c in self._components.values())
            raise Failed(
                Observation.of(
                    Code.UNKNOWN_COMPONENT,
                    f"no component {sel.component!r} is loaded; loaded: {', '.join(names) or 'none'}",
                    target=selector,
                    call_id=cid,
                    candidates=names,
                )
            )
        if not comp.services and comp.observation is not None:
            raise Failed(comp.observation.with_context(call_id=cid))
        res = resolve(comp.operation_names(), sel.service, sel.operation)
        if res.operation is None or res.service is None:
            code = Code.AMBIGUOUS_OPERATION if res.ambiguous else Code.UNKNOWN_OPERATION
            what = "matches several operations" if res.ambiguous else "matches no operation"
            candidates = [f"{comp.name}.{c}" for c in res.candidates]
            close = difflib.get_close_matches(
                normalize(sel.operation), [normalize(c.rsplit(".", 1)[1]) for c in candidates], n=3, cutoff=0.75
            )
            likely = [c for c in candidates if normalize(c.rsplit(".", 1)[1]) in close]
            shown = likely + [c for c in candidates if c not in likely]
            more = f" … ({len(shown) - 12} more)" if len(shown) > 12 else ""
            raise Failed(
                Observation.of(
                    code,
                    f"{selector!r} {what} of {comp.name!r}; "
                    + (f"did you mean {', '.join(likely)}? " if likely and not res.ambiguous else "")
                    + "candidates: "
                    + ", ".join(shown[:12])
                    + more,
                    target=selector,
                    call_id=cid,
                    candidates=candidates,
                    closest=likely,
                )
            )
        entry = comp.services[res.service][res.operation]
        target = Target(comp.name, entry.service, entry.name)
        if len(self._resolved) > 4096:
            self._resolved.clear()
        self._resolved[selector] = _Resolution(normalize(sel.component), comp, comp.generation, entry, target)
        return comp, entry, target

    def _build(
        self,
        cid: str,
        selector: str,
        comp: Component,
        entry: OperationEntry,
        target: Target,
        args: Any,
        timeout: float | None,
        caller: str,
        correlation_id: str | None,
        idempotency_key: str | None,
    ) -> Dispatched:
        if args is None:
            pos: tuple[Any, ...] = ()
            named: dict[str, Any] = {}
        elif isinstance(args, dict):
            pos, named = (), args
        elif isinstance(args, list | tuple):
            pos, named = tuple(args), {}
        elif isinstance(args, Arguments):
            pos, named = tuple(args.args), dict(args.kwargs)
        else:
            raise Failed(
                Observation.of(
                    Code.INVALID_ARGUMENTS,
                    f"arguments must be a dict (named) or a list (positional), got {type(args).__name__}",
                    target=selector,
                    call_id=cid,
                )
            )
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = None
        if timeout is not None:
            if (
                isinstance(timeout, bool)
                or not isinstance(timeout, int | float)
                or not timeout > 0
                or not timeout < 1e300  # infinite, or an int no float can hold (10**400)
            ):
                raise Failed(
                    Observation.of(
                        Code.INVALID_POLICY,
                        f"timeout must be a positive number of seconds, got {timeout!r}",
                        target=selector,
                        call_id=cid,
                    )
                )
            deadline = now + timeout
        call = ActionCall(
            id=cid,
            target=target,
            policy=entry.policy,
            context=ExecutionContext(
                correlation_id or cid, caller, deadline, now, None if idempotency_key is None else str(idempotency_key)
            ),
            args=pos,
            kwargs=named,
        )
        return Dispatched(call, comp, entry)

    def settled(self, selector: str) -> bool:
        """Will a call to ``selector`` need no lifecycle work (load, restart, queue)?

        True when the selector was resolved before, its component is ready and
        alive, and the operation is not queued: the whole call is then engine
        and boundary code only, which the synchronous facade may start eagerly
        (see ``cncf._sync.drive``).  A False answer costs nothing but the fast path.
        """
        hit = self._resolved.get(selector)
        if hit is None:
            return False
        comp = hit.component
        if self._components.get(hit.key) is not comp or comp.generation != hit.generation or self.closing:
            return False
        if hit.entry.policy.mode is Mode.QUEUE or comp.state not in _SETTLED_STATES:
            return False
        return comp.instance is not None and comp.boundary is not None and comp.boundary.health(comp.instance).alive

    # ------------------------------------------------------------------- call

    def subscribe(self, listener: Callable[[CallFinished], None]) -> Callable[[], None]:
        """Call ``listener`` once per finished call (metrics, dashboards); returns
        the function that unsubscribes it.  A listener that raises is dropped."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    async def run(self, dispatched: Dispatched) -> Outcome:
        """Run a dispatched call — whatever its policy mode: routing queue-mode
        calls to the job system is the hub's business, above the engine.  Always
        exactly one Outcome (never raises but for the caller's own task
        cancellation)."""
        call = dispatched.call
        try:
            outcome = await self._run(call, dispatched.component, dispatched.entry)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - the last-resort guarantee
            outcome = _internal(exc, str(call.target), call.id, Stage.EXECUTE)
        if self._listeners:
            self._notify(CallFinished(call, outcome, call.context.submitted, asyncio.get_running_loop().time()))
        return outcome

    def _notify(self, event: CallFinished) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken observer must not break calls
                with contextlib.suppress(ValueError):
                    self._listeners.remove(listener)

    async def _run(self, call: ActionCall, comp: Component, entry: OperationEntry) -> Outcome:
        target = str(call.target)
        policy = entry.policy
        gate = comp.gate
        loop = asyncio.get_running_loop()
        if call.id in self._records:  # a duplicate id that bypassed dispatch (e.g. a queued retry)
            return Outcome.failure(
                Observation.of(
                    Code.CALL_ID_IN_USE,
                    f"call_id {call.id!r} is already used by a call in flight",
                    target=target,
                    call_id=call.id,
                )
            )
        rec = _Record(call, comp, entry)
        self._records[call.id] = rec
        try:
            try:
                instance = await comp.ready_instance()
            except Failed as exc:
                return Outcome.failure(exc.observation.with_context(target=target, call_id=call.id))
            # ---- wait
            exclusive, limit = entry.exclusive, policy.max_concurrency
            if not gate.try_enter(exclusive, limit):
                obs = await self._wait(rec, loop)
                if obs is not None:
                    return Outcome.failure(obs)
                try:  # the instance may have been replaced while we waited
                    instance = await comp.ready_instance()
                except Failed as exc:
                    gate.leave()
                    return Outcome.failure(exc.observation.with_context(target=target, call_id=call.id))
            # ---- execute
            return await self._execute(rec, instance, loop)
        finally:
            del self._records[call.id]

    async def _wait(self, rec: _Record, loop: asyncio.AbstractEventLoop) -> Observation | None:
        call, policy = rec.call, rec.entry.policy
        deadline = call.context.deadline
        limit_name = "deadline"
        if policy.wait_timeout is not None:
            wd = call.context.submitted + policy.wait_timeout
            if deadline is None or wd < deadline:
                deadline, limit_name = wd, "wait_timeout"
        fut = rec.waiter = rec.component.gate.park(rec.entry.exclusive, policy.max_concurrency)
        timer = loop.call_at(deadline, self._expire, rec, CancelReason.WAIT_DEADLINE) if deadline is not None else None
        try:
            await fut
            return None
        except asyncio.CancelledError:
            rec.component.gate.unpark(fut)
            if rec.reason is None:
                raise  # the caller's own task was cancelled
            code = _WAITING_CODE[rec.reason]
            return Observation.of(
                code,
                f"{call.target} did not start: {rec.reason.value}"
                + (
                    f" ({limit_name} after {loop.time() - call.context.submitted:.3f}s)"
                    if rec.reason is CancelReason.WAIT_DEADLINE
                    else ""
                ),
                stage=Stage.WAIT,
                target=str(call.target),
                call_id=call.id,
                reason=rec.reason.value,
                limit=limit_name if code is Code.WAIT_TIMEOUT else None,
            )
        except Failed as exc:  # the gate broke: the instance crashed or was unloaded
            return exc.observation.with_context(target=str(call.target), call_id=call.id)
        finally:
            rec.waiter = None
            if timer is not None:
                timer.cancel()

    async def _execute(self, rec: _Record, instance: Any, loop: asyncio.AbstractEventLoop) -> Outcome:
        call, comp, entry = rec.call, rec.component, rec.entry
        policy = entry.policy
        boundary = comp.boundary
        assert boundary is not None
        generation = comp.generation
        deadline = call.context.deadline
        if policy.run_timeout is not None:
            rd = loop.time() + policy.run_timeout
            if deadline is None or rd < deadline:
                deadline = rd
        rec.deadline = deadline
        rec.running = True
        rec.instance = instance
        timer = loop.call_at(deadline, self._expire, rec, CancelReason.RUN_DEADLINE) if deadline else None
        obs: Observation | None = None
        stdout = stderr = ""
        value: Any = None
        try:
            returned = await boundary.invoke(instance, call, entry.name, concurrent=not entry.exclusive)
            value, stdout, stderr = returned.value, returned.stdout, returned.stderr
        except Failed as exc:
            obs, stdout, stderr = exc.observation, exc.stdout, exc.stderr
        except asyncio.CancelledError:
            # The caller's task was cancelled: deliver it to the component, then let
            # the caller's cancellation propagate.
            if rec.reason is None:
                rec.reason = CancelReason.CALLER
                self._spawn_escalation(rec)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            rec.running = False
            if rec.finished is not None and not rec.finished.done():
                rec.finished.set_result(None)
            # A crash is marked before the slot is returned: every waiter is woken
            # with an Observation naming it, none is admitted to the dead instance.
            if obs is not None and comp.is_crash(obs):
                comp.mark_crashed(obs.with_context(target=str(call.target), call_id=call.id), generation)
            comp.gate.leave()
        if rec.reason is None and deadline is not None and loop.time() > deadline and obs is None:
            # A component that blocked the event loop (inline, synchronous) ran past its
            # deadline without being interruptible: its late result is discarded.
            rec.reason, rec.tier = CancelReason.RUN_DEADLINE, CancelTier.LATE
        if rec.reason is not None:
            code, tier = _RUNNING_CODE[rec.reason], (rec.tier or CancelTier.COOPERATIVE).value
            inner = obs
            obs = Observation.of(
                code,
                f"{call.target} was stopped: {rec.reason.value} ({tier})",
                stage=Stage.EXECUTE,
                target=str(call.target),
                call_id=call.id,
                cause=observation_cause(inner),
                reason=rec.reason.value,
                tier=tier,
                completed=inner is None,
                inner_code=inner.code.value if inner else None,
            )
        if obs is not None:
            return Outcome(
                call.id,
                observation=obs.with_context(target=str(call.target), call_id=call.id),
                stdout=stdout,
                stderr=stderr,
            )
        return Outcome(call.id, value, None, stdout, stderr)

    # ----------------------------------------------------------- cancellation

    def _expire(self, rec: _Record, reason: CancelReason) -> None:
        self.request_cancel(rec, reason)

    def request_cancel(self, rec: _Record, reason: CancelReason) -> bool:
        """Record why, then deliver: wake the waiter, or escalate the running call."""
        if rec.reason is not None:
            return False
        if rec.waiter is not None:
            rec.reason = reason
            rec.waiter.cancel()
            return True
        if rec.running:
            rec.reason = reason
            self._spawn_escalation(rec)
            return True
        return False  # not yet admitted or already finished

    def cancel(self, call_id: str) -> bool:
        """Cancel a waiting or running call by id (the caller's request)."""
        rec = self._records.get(call_id)
        return rec is not None and self.request_cancel(rec, CancelReason.CALLER)

    def _spawn_escalation(self, rec: _Record) -> None:
        task = asyncio.get_running_loop().create_task(self._escalate(rec))
        self._escalations.add(task)
        task.add_done_callback(self._escalations.discard)

    async def _escalate(self, rec: _Record) -> None:
        """Cooperative first; after the grace period, stop it at any price."""
        boundary = rec.component.boundary
        assert boundary is not None
        rec.tier = CancelTier.COOPERATIVE
        loop = asyncio.get_running_loop()
        if rec.running and rec.finished is None:
            rec.finished = loop.create_future()
        try:
            applied = await boundary.cancel(rec.instance, rec.call, force=False)
            if applied is not None:
                rec.tier = applied
            if rec.finished is not None and not rec.finished.done():
                try:
                    await asyncio.wait_for(asyncio.shield(rec.finished), rec.entry.policy.cancel_grace)
                except TimeoutError:
                    rec.tier = CancelTier.KILLED
                    applied = await boundary.cancel(rec.instance, rec.call, force=True)
                    if applied is not None:
                        rec.tier = applied
            elif not rec.running and rec.reason is CancelReason.CALLER and rec.finished is None:
                # The caller's task was cancelled mid-invoke: we can no longer see the
                # invoke end, so the boundary decides whether the call is still running.
                await asyncio.sleep(rec.entry.policy.cancel_grace)
                await boundary.cancel(rec.instance, rec.call, force=True)
        except Exception:  # delivering a cancellation must never take the hub down
            pass

    async def shutdown(self, grace: float = 2.0) -> None:
        """Stop admitting; cancel everything in flight, and wait for it (bounded)."""
        self.closing = True
        for rec in list(self._records.values()):
            self.request_cancel(rec, CancelReason.SHUTDOWN)
        deadline = asyncio.get_running_loop().time() + grace + 1.0
        while self._records and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for task in list(self._escalations):
            task.cancel()

    async def cancel_component(self, comp: Component, grace: float = 2.0) -> None:
        """Cancel the component's calls (reason: unload) and wait, bounded, until
        they have ended, so that unloading never pulls an instance from under a call."""
        mine = [rec for rec in self._records.values() if rec.component is comp]
        for rec in mine:
            self.request_cancel(rec, CancelReason.UNLOAD)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace + max((r.entry.policy.cancel_grace for r in mine), default=0.0)
        while any(r.call.id in self._records for r in mine) and loop.time() < deadline:
            await asyncio.sleep(0.005)

    @property
    def in_flight(self) -> int:
        return len(self._records)


def _internal(exc: BaseException, target: str, call_id: str, stage: Stage) -> Outcome:
    try:
        return Outcome.failure(
            Observation.of(
                Code.INTERNAL_ERROR,
                f"the hub failed while handling {target}: {exc!r}",
                stage=stage,
                target=target,
                call_id=call_id,
                cause=exc,
            )
        )
    except BaseException:  # noqa: BLE001 - even building the Observation failed
        return Outcome(
            call_id,
            observation=Observation(
                Code.INTERNAL_ERROR, stage, "internal error", "system", "invalid", "defect", False, target, call_id
            ),
        )
