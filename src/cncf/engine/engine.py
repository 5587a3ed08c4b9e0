"""The ActionEngine: the single execution gate.

Every call from every reception (API, CLI, job worker) passes through
:meth:`ActionEngine.run` (after :meth:`ActionEngine.dispatch`).  The engine resolves the selector (dispatch),
admits the call through the component's fair gate (wait), runs it through the
Boundary (execute), and applies timeouts and cancellation uniformly.  It never
looks inside the payload and never learns which form it drives.

Cancellation follows Trio's split between *origin* and *delivery*, through
one :class:`~cncf.engine.scope.CallScope` per call: whoever asks for a
cancellation (the caller's own task, ``cancel(id)``, the wait deadline, the
run deadline, unload, shutdown) calls ``scope.cancel(reason)``, which records
the :class:`~cncf.engine.scope.CancelReason` first; delivery (cancelling a
waiter's future, the boundary's cooperative cancel, its force after
``cancel_grace``) is what the boundary registered on the scope when it sent
the request.  The Observation's code is derived from the recorded reason,
never from whichever exception surfaced.

The caller gets its Outcome when the scope is cancelled (at its deadline, to
the millisecond), with the tier reached by then; the operation goes on for
the instance until it ends or is forced, and only then is the instance's slot
returned (the next call to a ``serialize`` instance waits for the escalation,
or gets a fresh instance) and the call's event emitted with the final tier.

Exactly one Outcome per call: :meth:`run` catches ``BaseException`` around
everything and, should converting a failure itself fail, still returns a
minimal ``internal_error`` Observation (the Temporal activity worker's rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from cncf._frozen import twin
from cncf.call import ActionCall, Arguments, CancelTier, Target, make_call, make_context, new_call_id
from cncf.engine.component import Component, State
from cncf.engine.events import ENGINE_HOOKS, CallFinished
from cncf.engine.gate import Gate, Slot
from cncf.engine.operations import OperationEntry
from cncf.engine.replicas import Replica, Reroute
from cncf.engine.scope import CallScope, CancelReason, Interrupted
from cncf.failures import internal_error, observation_cause
from cncf.observation import Code, Failed, Observation, Stage
from cncf.outcome import Outcome, make_outcome
from cncf.policy import Mode
from cncf.selector import Selector, normalize, resolve

_SETTLED_STATES = frozenset({State.READY, State.BUSY})
#: Events that may wait for deferred listeners before the caller's path tells them itself.
DEFERRED_MAX = 256
#: On a hub confined to one CPU: deferred events are told this many at a time (see ``_batch``).
DEFERRED_BATCH = 32
#: ... and at the latest this long (seconds) after the first of them finished.
DEFERRED_DELAY = 0.01


def _one_cpu() -> bool:
    """Whether this process may run on one CPU only (its affinity: ``taskset``, a cgroup's cpuset)."""
    try:
        return len(os.sched_getaffinity(0)) <= 1
    except (AttributeError, OSError):
        return (os.cpu_count() or 1) <= 1


_T = TypeVar("_T")


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
#: Tiers at which the hub itself stopped the operation (the instance is then replaced).
_FORCED = frozenset({CancelTier.KILLED, CancelTier.ABANDONED})
#: Deaths that end a running call (its host died, its node was lost, it broke the
#: protocol): retryable in themselves, but the operation may have had its effect.
_LOST_RUNNING = frozenset({Code.WORKER_CRASHED, Code.NODE_LOST, Code.PROTOCOL_ERROR})


@dataclasses.dataclass(frozen=True, slots=True)
class Dispatched:
    """A resolved call: what runs, on which component, under which entry."""

    call: ActionCall
    component: Component
    entry: OperationEntry


_MutableDispatched = twin(Dispatched)


def _dispatched(call: ActionCall, component: Component, entry: OperationEntry) -> Dispatched:
    """``Dispatched(...)`` on the hot path (see ``cncf._frozen``)."""
    d = _MutableDispatched()
    d.call, d.component, d.entry = call, component, entry
    d.__class__ = Dispatched
    dispatched: Dispatched = d
    return dispatched


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
    """One admitted call: what runs, and its scope (deadline, reason, tier)."""

    __slots__ = ("call", "component", "entry", "scope", "_gone", "gate", "slot")
    gate: Gate  # the gate it went through, and the slot (replica) it was admitted to
    slot: Slot

    def __init__(self, call: ActionCall, component: Component, entry: OperationEntry, scope: CallScope) -> None:
        self.call = call
        self.component = component
        self.entry = entry
        self.scope = scope
        self._gone: asyncio.Future[None] | None = None  # made only when someone waits for it

    def gone(self) -> asyncio.Future[None]:
        """Resolves when the call's Outcome has been delivered."""
        if self._gone is None:
            self._gone = asyncio.get_running_loop().create_future()
        return self._gone

    def leave(self) -> None:
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)


def _call_each(listeners: list[Callable[[_T], None]], what: _T) -> None:
    """Tell every listener; one that raises is dropped (a broken observer must not break calls)."""
    for listener in list(listeners):
        try:
            listener(what)
        except Exception:
            with contextlib.suppress(ValueError):
                listeners.remove(listener)


class ActionEngine:
    def __init__(self, components: Mapping[str, Component]) -> None:
        self._components = components  # normalized name -> Component (owned by the hub)
        self._records: dict[str, _Record] = {}
        # Dispatch is a dict hit for repeated selectors; a restart (new generation)
        # invalidates the entry.
        self._resolved: dict[str, _Resolution] = {}
        self.closing = False
        # Calls whose caller has its Outcome while the operation still runs (escalating).
        self._settling: set[_Record] = set()
        self._listeners: list[Callable[[CallFinished], None]] = []
        # Listeners told after the caller has its Outcome (see subscribe), and their events.
        self._deferred_listeners: list[Callable[[Sequence[CallFinished]], None]] = []
        self._deferred: deque[CallFinished] = deque()
        self._drain_due = False  # a drain is scheduled on the loop
        self._drain_timer: asyncio.TimerHandle | None = None
        # How many due events make a batch worth telling.  With several CPUs, one:
        # a deferred event is told while the caller's path waits for a worker on
        # another CPU, where it costs no caller anything.  On one CPU nothing runs
        # while the hub works, so no wait hides it: every microsecond counts, and
        # a batch told at once runs warm in the cache (a recorded span ~3 µs in a
        # batch against ~7 µs alone, between two process switches).
        self._batch = DEFERRED_BATCH if _one_cpu() else 1
        self._drain_one_ref = self._drain_one  # bound once: every scope carries it
        # ``begin(call) -> call`` when telemetry is on (cncf.telemetry): the call's span
        # is opened and its trace context handed to the component
        self.tracing: Any = None
        for hook in ENGINE_HOOKS:
            hook(self)

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

    def entry(self, selector: str) -> OperationEntry:
        """The operation ``selector`` names (its policy, parameters), without making a call.  Raises ``Failed``."""
        hit = self._resolved.get(selector)
        if (
            hit is not None
            and self._components.get(hit.key) is hit.component
            and hit.component.generation == hit.generation
        ):
            return hit.entry
        return self._resolve(selector, "")[1]

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
        elif isinstance(args, (list, tuple)):
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
        if entry.check is not None:  # before it runs or is queued (cncf.schema: the OpenAPI body's rules)
            why = entry.check(pos, named)
            if why is not None:
                raise Failed(
                    Observation.of(
                        Code.INVALID_ARGUMENTS,
                        f"{target} {why}",
                        stage=Stage.DISPATCH,
                        target=str(target),
                        call_id=cid,
                        reasons=[why],
                        **(
                            {"signatures": list(entry.info.signatures)}
                            if entry.info.signatures
                            else {"params": [p.to_dict() for p in entry.info.params or ()]}
                        ),
                    )
                )
        now = asyncio.get_running_loop().time()
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
        context = make_context(
            correlation_id or cid, caller, deadline, now, None if idempotency_key is None else str(idempotency_key)
        )
        return _dispatched(make_call(cid, target, entry.policy, context, pos, named), comp, entry)

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
        return comp.serving()

    # ------------------------------------------------------------------- call

    def subscribe(self, listener: Callable[[CallFinished], None]) -> Callable[[], None]:
        """Call ``listener`` once per finished call, before its caller has the
        Outcome; returns the function that unsubscribes it.  A listener that
        raises is dropped."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def subscribe_deferred(self, listener: Callable[[Sequence[CallFinished]], None]) -> Callable[[], None]:
        """Tell ``listener`` of finished calls after their callers have their
        Outcomes, several at a time: at the loop's next turn, or one at a time
        while a boundary spin-waits for a worker's reply (:meth:`CallScope.idle`),
        at the latest once :data:`DEFERRED_MAX` wait.  On a hub confined to one
        CPU, :data:`DEFERRED_BATCH` at a time (at the turn or in the spin once
        that many are due), and at the latest :data:`DEFERRED_DELAY` after the
        first of them.  For work no caller needs
        to wait for (metrics, the console's series, spans), done in batches;
        whoever reads what it keeps calls :meth:`drain` first.  Unsubscribing
        tells it what is still due.  A listener that raises is dropped."""
        self._deferred_listeners.append(listener)

        def unsubscribe() -> None:
            self.drain()
            with contextlib.suppress(ValueError):
                self._deferred_listeners.remove(listener)

        return unsubscribe

    @property
    def deferred(self) -> int:
        """Finished calls whose deferred listeners have not been told yet."""
        return len(self._deferred)

    def telling_soon(self) -> bool:
        """Whether the deferred listeners have events due (they will be told soon)."""
        return bool(self._deferred)

    def drain(self) -> None:
        """Tell the deferred listeners every event still due."""
        due = self._deferred
        while due:
            batch = list(due)
            due.clear()
            self._tell(batch)

    def _drain_one(self) -> bool:
        """Tell the deferred listeners the oldest event due (on one CPU: a whole
        batch once one is due); False when there is nothing to tell now."""
        due = self._deferred
        if self._batch > 1:
            if len(due) < self._batch:
                return False
            self.drain()
            return True
        try:
            event = due.popleft()
        except IndexError:
            return False
        self._tell((event,))
        return True

    def _tell(self, batch: Sequence[CallFinished]) -> None:
        _call_each(self._deferred_listeners, batch)

    async def run(self, dispatched: Dispatched) -> Outcome:
        """Run a dispatched call — whatever its policy mode: routing queue-mode
        calls to the job system is the hub's business, above the engine.  Always
        exactly one Outcome (never raises but for the caller's own task
        cancellation, which is delivered to the component as a cancellation)."""
        call, comp, entry = dispatched.call, dispatched.component, dispatched.entry
        if self.tracing is not None:
            call = self.tracing.begin(call)
        loop = asyncio.get_running_loop()
        scope = CallScope(call.id, entry.policy.cancel_grace, loop, self._drain_one_ref)
        try:
            outcome = await self._run(call, comp, entry, scope, loop)
        except asyncio.CancelledError:
            self._report(call, comp, scope, None, loop)
            raise
        except BaseException as exc:  # noqa: BLE001 - the last-resort guarantee
            scope.end()
            outcome = Outcome.failure(
                internal_error(
                    exc,
                    f"the hub failed while handling {call.target}",
                    stage=Stage.EXECUTE,
                    target=str(call.target),
                    call_id=call.id,
                )
            )
        if self._listeners or self._deferred_listeners or scope.tier is not None:
            self._report(call, comp, scope, outcome, loop)
        return outcome

    def _report(
        self,
        call: ActionCall,
        comp: Component,
        scope: CallScope,
        outcome: Outcome | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """One event per call, once its operation has ended: the final tier is known then."""
        ended = time.perf_counter_ns()
        if outcome is None:  # the caller's own task was cancelled: the event says so
            outcome = Outcome.failure(
                Observation.of(
                    Code.CANCELLED if scope.running else Code.CANCELLED_WAITING,
                    f"{call.target} was cancelled by its caller",
                    stage=Stage.EXECUTE if scope.running else Stage.WAIT,
                    target=str(call.target),
                    call_id=call.id,
                    reason=CancelReason.CALLER.value,
                    started=scope.started,
                    completed=scope.ended,
                )
            )

        if not scope.started:
            scope.end()  # it never crossed: nothing is left to settle
        if scope.ended and scope.tier is None:  # the common case: told now, no closure made
            if self._listeners or self._deferred_listeners:
                self._notify(
                    CallFinished(
                        call, outcome, scope.admitted, ended, None, ended, scope.executed, scope.parked, scope.returned
                    )
                )
            return

        def settled(scope: CallScope) -> None:
            tier = scope.tier.value if scope.tier is not None else None
            if tier is not None:
                comp.cancellations[tier] += 1
            if self._listeners or self._deferred_listeners:
                at = time.perf_counter_ns() if tier is not None else ended
                self._notify(
                    CallFinished(
                        call,
                        outcome,
                        scope.admitted,
                        ended,
                        tier,
                        max(at, ended),
                        scope.executed,
                        scope.parked,
                        scope.returned,
                    )
                )

        scope.on_end(settled)

    def _notify(self, event: CallFinished) -> None:
        if self._listeners:
            _call_each(self._listeners, event)
        if self._deferred_listeners:
            due = self._deferred
            due.append(event)
            if len(due) > DEFERRED_MAX:  # a caller that never lets the loop turn: bounded
                self.drain()
            elif not self._drain_due:
                if len(due) >= self._batch:
                    self._drain_due = True
                    asyncio.get_running_loop().call_soon(self._drain_soon)
                elif self._drain_timer is None:  # one CPU, a batch not full yet: told soon anyway
                    self._drain_timer = asyncio.get_running_loop().call_later(DEFERRED_DELAY, self._drain_late)

    def _drain_soon(self) -> None:
        self._drain_due = False
        self.drain()

    def _drain_late(self) -> None:
        self._drain_timer = None
        self.drain()

    async def _run(
        self,
        call: ActionCall,
        comp: Component,
        entry: OperationEntry,
        scope: CallScope,
        loop: asyncio.AbstractEventLoop,
    ) -> Outcome:
        target = str(call.target)
        policy = entry.policy
        cid = call.id
        records = self._records
        if cid in records:  # a duplicate id that bypassed dispatch (e.g. a queued retry)
            return Outcome.failure(
                Observation.of(
                    Code.CALL_ID_IN_USE,
                    f"call_id {cid!r} is already used by a call in flight",
                    target=str(call.target),
                    call_id=cid,
                )
            )
        rec = records[cid] = _Record(call, comp, entry, scope)
        try:
            routes = retries = 0
            while True:
                try:
                    single = comp.single
                    if single is not None:  # one replica: its gate, its instance (restarted if need be)
                        gate = single.gate
                        instance = await single.ready_instance()
                    else:
                        gate = comp.route(call, entry)
                        instance = await comp.prepare(gate)
                except Failed as exc:
                    return Outcome.failure(exc.observation.with_context(target=target, call_id=call.id))
                # ---- wait
                exclusive, limit = entry.exclusive, policy.max_concurrency
                slot = gate.try_enter(exclusive, limit)
                if slot is None or instance is None:
                    if slot is None:
                        waited = await self._wait(rec, gate, loop)
                        if isinstance(waited, Observation):
                            return Outcome.failure(waited)
                        slot = waited
                        if slot.owner.component is not comp:  # a new generation took over the line
                            comp = rec.component = slot.owner.component
                    try:  # the instance may have been replaced while we waited
                        instance = await slot.owner.ready_instance()
                    except Reroute:  # that replica is lost: another one serves
                        gate.leave(slot)
                        routes += 1
                        if routes <= len(gate.slots):
                            continue
                        return Outcome.failure(
                            Observation.of(
                                Code.COMPONENT_UNAVAILABLE,
                                f"no replica of {comp.name!r} could take the call",
                                target=target,
                                call_id=call.id,
                            )
                        )
                    except Failed as exc:
                        gate.leave(slot)
                        return Outcome.failure(exc.observation.with_context(target=target, call_id=call.id))
                rec.gate, rec.slot = gate, slot
                # ---- execute
                outcome = await self._execute(rec, instance, loop)
                obs = outcome.observation
                if (
                    obs is None
                    or retries
                    or obs.code not in _LOST_RUNNING
                    or not (policy.idempotent or obs.attributes.get("started") is False)
                    or scope.reason is not None
                    or not comp.retries_elsewhere
                ):
                    return outcome
                # Its replica was lost under it: an idempotent call runs once more on another.
                retries += 1
                scope.reopen()
        finally:
            del records[cid]
            if rec._gone is not None:
                rec.leave()

    async def _wait(self, rec: _Record, gate: Gate, loop: asyncio.AbstractEventLoop) -> Observation | Slot:
        call, policy, scope = rec.call, rec.entry.policy, rec.scope
        deadline = call.context.deadline
        limit_name = "deadline"
        if policy.wait_timeout is not None:
            wd = call.context.submitted + policy.wait_timeout
            if deadline is None or wd < deadline:
                deadline, limit_name = wd, "wait_timeout"
        fut = scope.waiter = gate.park(rec.entry.exclusive, policy.max_concurrency)
        scope.parked = time.perf_counter_ns()
        timer = loop.call_at(deadline, scope.cancel, CancelReason.WAIT_DEADLINE) if deadline is not None else None
        try:
            return await fut
        except asyncio.CancelledError:
            gate.unpark(fut)
            if scope.reason is None:
                raise  # the caller's own task was cancelled
            return _not_started(rec, scope.reason, limit_name, loop)
        except Failed as exc:  # the gate broke: the instance crashed or was unloaded
            return exc.observation.with_context(target=str(call.target), call_id=call.id)
        finally:
            scope.waiter = None
            if timer is not None:
                timer.cancel()

    async def _execute(self, rec: _Record, instance: Any, loop: asyncio.AbstractEventLoop) -> Outcome:
        call, comp, entry, scope = rec.call, rec.component, rec.entry, rec.scope
        policy = entry.policy
        replica: Replica = rec.slot.owner
        boundary = replica.boundary
        generation = replica.incarnation
        deadline = call.context.deadline
        now = loop.time()
        run_timeout = policy.run_timeout
        if run_timeout is not None:
            rd = now + run_timeout
            if deadline is None or rd < deadline:
                deadline = rd
        timer = None
        if deadline is not None:
            scope.deadline = deadline
            if deadline <= now:
                # The caller's deadline passed before the request crossed: it never runs.
                rec.gate.leave(rec.slot)
                return Outcome.failure(_not_started(rec, CancelReason.RUN_DEADLINE, "deadline", loop))
            timer = loop.call_at(deadline, scope.cancel, CancelReason.RUN_DEADLINE)
        scope.running = True
        scope.executed = time.perf_counter_ns()
        obs: Observation | None = None
        stdout = stderr = ""
        value: Any = None
        interrupted = False
        try:
            returned = await boundary.invoke(instance, call, entry.name, concurrent=not entry.exclusive, scope=scope)
            scope.returned = time.perf_counter_ns()
            value, stdout, stderr = returned.value, returned.stdout, returned.stderr
        except Failed as exc:
            scope.returned = time.perf_counter_ns()
            obs, stdout, stderr = exc.observation, exc.stdout, exc.stderr
        except Interrupted:
            interrupted = True  # the Outcome is due now; the operation goes on
        except asyncio.CancelledError:
            # The caller's own task was cancelled: a cancellation like any other
            # (delivered through the scope, forced after the grace period); the
            # caller's CancelledError propagates.
            scope.cancel(CancelReason.CALLER)
            interrupted = True
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if interrupted and scope.started and not scope.ended:
                # The slot is returned (and a crash marked) when the operation ends:
                # the next call to a serialize instance waits for the escalation.
                self._settling.add(rec)
                scope.on_end(lambda _s: self._settle(rec, generation, None))
            else:
                if scope.started and not scope.ended:  # a scope nothing was registered on has nothing to end
                    scope.end()
                if obs is None and scope.tier is None:
                    rec.gate.leave(rec.slot)  # the common case: nothing to settle but the slot
                else:
                    self._settle(rec, generation, obs)
        if obs is None and not interrupted and deadline is None:  # the common case: a value, nothing to check
            return make_outcome(call.id, value, None, stdout, stderr, comp.generation)
        if scope.reason is None and obs is None and deadline is not None and not scope.started:
            if loop.time() > deadline:
                # A component that blocked the event loop (inline, on the loop) ran past its
                # deadline without being interruptible: its late result is discarded.
                scope.reason, scope.tier = CancelReason.RUN_DEADLINE, CancelTier.LATE
                obs = _stopped(rec, None, completed=True)
        elif interrupted or (scope.reason is not None and obs is not None):
            obs = _stopped(rec, obs, completed=scope.ended)
        elif obs is not None and obs.code in _LOST_RUNNING and obs.retryable and obs.stage is Stage.EXECUTE:
            obs = _lost_running(obs, started=scope.started, idempotent=policy.idempotent)
        if obs is not None:
            return Outcome(
                call.id,
                observation=obs.with_context(target=str(call.target), call_id=call.id),
                stdout=stdout,
                stderr=stderr,
                generation=comp.generation,
            )
        return make_outcome(call.id, value, None, stdout, stderr, comp.generation)

    def _settle(self, rec: _Record, generation: int, obs: Observation | None) -> None:
        """The operation has ended: mark a crash (before the slot is returned, so no
        waiter is admitted to a dead instance), then return the slot."""
        scope = rec.scope
        replica: Replica = rec.slot.owner
        self._settling.discard(rec)
        if obs is None:
            error = scope.operation_error()
            if isinstance(error, Failed):
                obs = error.observation
        forced = scope.tier in _FORCED
        try:
            if obs is not None and replica.is_crash(obs):
                replica.mark_crashed(obs.with_context(target=str(rec.call.target), call_id=rec.call.id), generation)
            elif forced and not replica.alive():
                replica.mark_crashed(
                    Observation.of(
                        Code.WORKER_CRASHED,
                        f"the instance of {rec.component.name!r} was stopped ({scope.tier}) after a cancellation",
                        target=rec.component.name,
                    ),
                    generation,
                )
        finally:
            rec.gate.leave(rec.slot)

    # ----------------------------------------------------------- cancellation

    def cancel(self, call_id: str) -> bool:
        """Cancel a waiting or running call by id (the caller's request)."""
        rec = self._records.get(call_id)
        return rec is not None and rec.scope.cancel(CancelReason.CALLER)

    async def _drain(self, recs: list[_Record], timeout: float) -> None:
        """Wait (bounded) until ``recs`` have their Outcome and their operations ended."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        answering = [r.gone() for r in recs if self._records.get(r.call.id) is r]
        if answering:
            await asyncio.wait(answering, timeout=max(0.0, end - loop.time()))
        ending = [r.scope.finished for r in recs if r in self._settling]
        if ending:
            await asyncio.wait(ending, timeout=max(0.0, end - loop.time()))

    async def shutdown(self, grace: float = 2.0) -> None:
        """Stop admitting; cancel everything in flight, and wait for it (bounded)."""
        self.closing = True
        recs = [*self._records.values(), *self._settling]
        for rec in recs:
            rec.scope.cancel(CancelReason.SHUTDOWN)
        await self._drain(recs, grace + 1.0)

    async def cancel_component(self, comp: Component, grace: float = 2.0) -> None:
        """Cancel the component's calls (reason: unload) and wait, bounded, until
        they have ended, so that unloading never pulls an instance from under a call."""
        mine = [r for r in (*self._records.values(), *self._settling) if r.component is comp]
        for rec in mine:
            rec.scope.cancel(CancelReason.UNLOAD)
        await self._drain(mine, grace + max((r.entry.policy.cancel_grace for r in mine), default=0.0))

    @property
    def in_flight(self) -> int:
        return len(self._records)

    @property
    def settling(self) -> int:
        """Calls answered whose operations still run (escalating): the loop must
        turn for them (the synchronous ``Hub`` turns it with its pump)."""
        return len(self._settling)

    async def until_settled(self) -> None:
        """Return once no answered call's operation still runs."""
        while self._settling:
            await asyncio.wait([r.scope.finished for r in self._settling])


def _not_started(rec: _Record, reason: CancelReason, limit_name: str, loop: asyncio.AbstractEventLoop) -> Observation:
    """A call that never reached its component (stage wait): retrying it is safe."""
    call = rec.call
    code = _WAITING_CODE[reason]
    return Observation.of(
        code,
        f"{call.target} did not start: {reason.value}"
        + (f" ({limit_name} after {loop.time() - call.context.submitted:.3f}s)" if code is Code.WAIT_TIMEOUT else ""),
        stage=Stage.WAIT,
        target=str(call.target),
        call_id=call.id,
        reason=reason.value,
        limit=limit_name if code is Code.WAIT_TIMEOUT else None,
        started=False,
        completed=False,
    )


def _stopped(rec: _Record, inner: Observation | None, *, completed: bool) -> Observation:
    """A call stopped after its request crossed: it may have had its effect, so it is
    ``retryable`` only when the operation is declared idempotent (or never started)."""
    call, scope = rec.call, rec.scope
    reason = scope.reason
    assert reason is not None
    tier = (scope.tier or CancelTier.COOPERATIVE).value
    started = scope.started or completed
    obs = Observation.of(
        _RUNNING_CODE[reason],
        f"{call.target} was stopped: {reason.value} ({tier})",
        stage=Stage.EXECUTE,
        target=str(call.target),
        call_id=call.id,
        cause=observation_cause(inner),
        reason=reason.value,
        tier=tier,
        started=started,
        completed=completed,
        inner_code=inner.code.value if inner else None,
    )
    retryable = not started or rec.entry.policy.idempotent
    return obs if obs.retryable == retryable else dataclasses.replace(obs, retryable=retryable)


def _lost_running(obs: Observation, *, started: bool, idempotent: bool) -> Observation:
    """A call whose worker died (or whose node was lost) under it: whether it
    started is known (``started``: its request had crossed), whether it completed
    is not (``completed`` false: no result came back).  Like a stopped call it is
    ``retryable`` only when it never started or is declared idempotent (brief
    section 14); a crash before the request crossed stays retryable."""
    attributes = {**obs.attributes, "started": started, "completed": False}
    return dataclasses.replace(obs, attributes=attributes, retryable=not started or idempotent)
