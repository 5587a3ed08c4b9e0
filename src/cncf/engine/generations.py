"""Generations: a zero-downtime upgrade of a loaded component.

``hub.upgrade(name, target=None, **overrides)`` loads the component again (a
new *generation*: a new :class:`~cncf.engine.component.Component`) beside
the one serving, and switches when it is ready:

1. **Load beside.**  The new generation's replicas start while the old ones
   serve.  A ``readiness`` operation named in the manifest must then answer
   (an Outcome with a value that is not ``false``) before the switch.
2. **Hand-over** (stateful components).  When the old instance defines
   ``export_state()`` and the new one ``import_state(state)``, the old stops
   admitting (calls arriving meanwhile wait, under their wait limits), its
   calls finish, its state is exported and imported into the new one.
3. **Switch.**  One assignment in the hub's component table: every call
   dispatched after it goes to the new generation (the dispatch cache keys
   on the component object, so it cannot serve a stale entry).
4. **Drain.**  The old generation finishes its calls in flight and in its
   line, within ``drain_timeout`` (then the cancellation tiers: cooperative,
   forced), and unloads.  ``upgrade`` returns at the switch; ``inspect``
   shows the draining generation meanwhile.

Any failure before the switch is a **rollback**: the new generation is
unloaded, the old one keeps serving (admitting again, after a failed
hand-over), and the caller gets a handle in state ``failed`` whose
``observation`` is the new generation's load Observation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cncf.engine.component import Component, State
from cncf.observation import Code, Failed, Observation

if TYPE_CHECKING:
    from cncf.engine.engine import ActionEngine

#: How often a drain looks whether the old generation's calls have ended.
_POLL = 0.02
#: The hand-over operations a component may define (Erlang's ``code_change``).
EXPORT, IMPORT = "export_state", "import_state"


async def ready_check(engine: ActionEngine, new: Component) -> Observation | None:
    """Run the manifest's ``readiness`` operation on the new generation (not yet
    routed to): None when it answered, else the Observation (``readiness_failed``)."""
    op = new.spec.readiness
    if op is None:
        return None
    outcome = await call_on(engine, new, op, None, timeout=new.spec.drain_timeout)
    if outcome.ok and outcome.value is not False:
        return None
    return Observation.of(
        Code.READINESS_FAILED,
        f"the new generation of {new.name!r} did not pass its readiness operation {op!r}"
        + (f": {outcome.observation.message}" if outcome.observation is not None else " (it answered false)"),
        target=new.name,
        operation=op,
        inner_code=outcome.observation.code.value if outcome.observation is not None else None,
    )


async def call_on(engine: ActionEngine, comp: Component, op: str, args: Any, *, timeout: float) -> Any:
    """Run ``op`` on ``comp`` whether or not it is the registered generation."""
    from cncf.call import Target, new_call_id
    from cncf.engine.engine import Dispatched
    from cncf.outcome import Outcome
    from cncf.selector import resolve

    found = resolve(comp.operation_names(), None, op)
    if found.operation is None or found.service is None:
        return Outcome.failure(
            Observation.of(Code.UNKNOWN_OPERATION, f"{comp.name!r} has no operation {op!r}", target=comp.name)
        )
    entry = comp.services[found.service][found.operation]
    cid = new_call_id()
    built = engine._build(
        cid,
        f"{comp.name}.{op}",
        comp,
        entry,
        Target(comp.name, entry.service, entry.name),
        args,
        timeout,
        "hub",
        None,
        None,
    )
    return await engine.run(Dispatched(built.call, comp, entry))


def has(comp: Component, op: str) -> bool:
    """Whether the component's operations include ``op`` (hand-over hooks)."""
    from cncf.selector import resolve

    found = resolve(comp.operation_names(), None, op)
    return found.operation is not None and not found.ambiguous


async def hand_over(engine: ActionEngine, old: Component, new: Component) -> Observation | None:
    """Move the state of the (held, quiet) old generation into the new one."""
    exported = await _export(old, old.spec.drain_timeout)
    if isinstance(exported, Observation):
        return Observation.of(
            Code.HANDOVER_FAILED,
            f"{old.name!r}: {EXPORT}() of the old generation failed: {exported.message}",
            target=old.name,
            step=EXPORT,
            inner_code=exported.code.value,
        )
    imported = await call_on(engine, new, IMPORT, [exported], timeout=new.spec.drain_timeout)
    if not imported.ok:
        obs = imported.observation
        return Observation.of(
            Code.HANDOVER_FAILED,
            f"{new.name!r}: {IMPORT}(state) of the new generation failed: {obs.message}",
            target=new.name,
            step=IMPORT,
            inner_code=obs.code.value,
        )
    return None


async def _export(old: Component, timeout: float) -> Any:
    """``export_state()`` of the held, quiet old generation, straight through its
    boundary (its gate admits nobody now): the value, or an Observation."""
    from cncf.call import ActionCall, ExecutionContext, Target, new_call_id
    from cncf.engine.scope import CallScope, CancelReason, Interrupted
    from cncf.selector import resolve

    found = resolve(old.operation_names(), None, EXPORT)
    if found.operation is None or found.service is None or len(old.replicas) != 1:
        return Observation.of(Code.UNKNOWN_OPERATION, f"{old.name!r} has no {EXPORT}()", target=old.name)
    entry = old.services[found.service][found.operation]
    replica = old.replicas[0]
    try:
        instance = await replica.ready_instance()
    except Failed as exc:
        return exc.observation
    loop = asyncio.get_running_loop()
    cid = new_call_id()
    now = loop.time()
    call = ActionCall(
        id=cid,
        target=Target(old.name, entry.service, entry.name),
        policy=entry.policy,
        context=ExecutionContext(cid, "hub", now + timeout, now, None),
        args=(),
        kwargs={},
    )
    scope = CallScope(cid, entry.policy.cancel_grace, loop)
    scope.running, scope.deadline = True, now + timeout
    timer = loop.call_at(now + timeout, scope.cancel, CancelReason.RUN_DEADLINE)
    try:
        returned = await replica.boundary.invoke(instance, call, entry.name, concurrent=False, scope=scope)
    except Failed as exc:
        return exc.observation
    except Interrupted:
        return Observation.of(Code.TIMED_OUT, f"{EXPORT}() took longer than {timeout:g}s", target=old.name)
    finally:
        timer.cancel()
    return returned.value


async def quiet(old: Component, timeout: float, *, waiting: bool = True) -> bool:
    """Wait (bounded) until no call runs (nor, with ``waiting``, waits) on ``old``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    poll = _POLL if waiting else _POLL / 4  # a hand-over holds callers: look more often
    while _busy(old, waiting):
        if loop.time() >= end:
            return False
        await asyncio.sleep(poll)
    return True


def _busy(comp: Component, waiting: bool) -> int:
    return sum(g.running + (g.statistics().waiting if waiting else 0) for g in comp.gates)


def hold(comp: Component) -> None:
    """Stop admitting to ``comp``: its slots close, new calls wait in its line."""
    for g in comp.gates:
        for slot in g.slots:
            g.close(slot)


def release(comp: Component) -> None:
    """Admit to ``comp`` again (a failed hand-over: the old generation serves on)."""
    for g in comp.gates:
        for slot in g.slots:
            g.open(slot)


def take_over(old: Component, new: Component) -> None:
    """The calls waiting in the old generation's line join the new one's (after a hand-over)."""
    for i, g in enumerate(old.gates):
        g.move_waiters(new.gates[i] if len(new.gates) == len(old.gates) else new.gates[0])


async def drain(engine: ActionEngine, old: Component, on_gone: Callable[[], None]) -> None:
    """Let the old generation finish within ``drain_timeout``, cancel what is left, unload."""
    try:
        if not await quiet(old, old.spec.drain_timeout):
            await engine.cancel_component(old)  # the cancellation tiers for what is left
        await old.unload()
    finally:
        on_gone()


def serving(comp: Component) -> bool:
    """Whether ``comp`` serves calls (an upgrade that fails leaves it so)."""
    return comp.state in (State.READY, State.BUSY, State.RESTARTING)


__all__ = ["call_on", "drain", "hand_over", "has", "hold", "quiet", "ready_check", "release", "serving", "take_over"]
