"""JobSystem: the queue policy — durable jobs, fair workers, retries, resumption.

A call on a queue-policy operation reaches :meth:`JobSystem.enqueue` from the
hub, which routes queue-mode calls here instead of to the ActionEngine.  The job is written to the
store and the caller gets its id once the row is committed; from then on the
job belongs to the store, not to the caller.  Workers take jobs and run each
attempt through ``engine.run(Dispatched(call, component, entry))`` — the
same gate, boundary, timeouts and cancellation as any call, so a serialize
component still runs one job at a time.

Scheduling.  Ready jobs wait in one FIFO per component; the components with
ready jobs form a round-robin ring.  At most ``workers`` attempts run at once,
and at most one per component (queue operations need their instance to
themselves, like serialize), so a component with a long backlog cannot starve
another.  A job whose component is not loaded (yet) simply waits: a hub
restarted on the same home resumes it once the component is loaded again.

Delivery is at-least-once.  The claim (``queued → running``, attempt counted)
is committed before the attempt starts; the ending (``running → terminal``)
after it ends.  A hub killed in between leaves the job ``running`` under a
dead owner; the next hub to start on the home finds it (see ``store``),
records a ``job_lost`` attempt and queues it again — or quarantines it when
that was its last allowed attempt.  An attempt can therefore have run, wholly
or partly, more times than it was acknowledged: components that must not
repeat an effect key it on the job's idempotency key (``call.context``) or the
job id.

Endings.  A value → ``succeeded``.  A non-retryable Observation → ``failed``
with that Observation.  A retryable one (``observation.retryable``: instance
lost, a timeout or a worker's crash of an attempt that never started or whose
operation is idempotent, …) → queued again after an exponential
back-off, until ``max_attempts`` attempts have run; then ``failed`` with
``job_quarantined``, every attempt's Observation kept.  A cancellation →
``cancelled`` with ``job_cancelled``.  Shutdown is not the job's fault: an
attempt interrupted by ``hub.close()`` or by unloading its component is handed
back to the queue uncounted.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import contextvars
import dataclasses
import json
import os
import random
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cncf.call import ActionCall, Target
from cncf.engine.component import Component, State
from cncf.engine.engine import ActionEngine, Dispatched
from cncf.engine.operations import OperationEntry
from cncf.failures import cause_of, observation_cause
from cncf.jobs.model import (
    Attempt,
    Job,
    JobNotFound,
    JobState,
    JobStoreCorrupt,
    JobStoreUnavailable,
    decode_history,
    encode_history,
    encode_outcome,
    not_found,
    quarantined,
)
from cncf.jobs.protocol import DEFAULT_LEASE, JobStore, StoreUnavailable, open_store, redact, store_url
from cncf.jobs.store import StoreCorrupt, error_reason, new_job_id
from cncf.observation import Code, Failed, Observation, Stage
from cncf.outcome import Outcome
from cncf.policy import Mode
from cncf.selector import normalize

_UNAVAILABLE = (State.LOADING, State.FAILED, State.UNLOADED)
_POLL = 0.25  # how often a waiter re-reads the store (a job run by another hub)
_SERVER_WAIT = 30.0  # how long an enqueue waits for a database server that stopped answering
_SWEEP = 1.0  # how often the watcher looks for dead hubs' jobs (and re-reads the queue without notifications)
#: what a store error looks like (``StoreUnavailable`` is an OSError)
_STORE_ERRORS = (sqlite3.Error, OSError)


class _Active:
    """A job claimed (or being claimed) by this hub."""

    __slots__ = ("id", "key", "call_id", "cancel", "attempt", "started")

    def __init__(self, job_id: str, key: str) -> None:
        self.id = job_id
        self.key = key
        self.call_id: str | None = None
        self.cancel = False
        self.attempt = 0
        self.started = 0.0


class JobSystem:
    """The hub's job management: store, workers, retries (module docstring).

    Args:
        home: the hub's home folder; the store is ``home/jobs.sqlite3``.
        engine: the hub's ActionEngine (every attempt runs through it).
        components: the hub's components by normalized name (a live mapping).
        workers: how many attempts may run at once (across components); 0
            makes a submit-only hub, which stores jobs and runs none (a
            one-shot CLI call should not start, then interrupt, older jobs).
        durability: ``"process"`` (WAL, synchronous=NORMAL: survives kill -9)
            or ``"power"`` (synchronous=FULL, group-committed fsync); default
            ``$CNCF_JOB_DURABILITY``, else ``"process"``.
        retry_base, retry_max: back-off before attempt n+1 is
            ``min(retry_max, retry_base * 2**(n-1))``, ±20 % jitter.
        sources: normalized name → (target, overrides) each loaded component
            came from; recorded so that ``cncf jobs work`` can load it again.
        job_store: None or ``"sqlite"`` (``home/jobs.sqlite3``), or a
            ``postgresql://`` URL shared by several hubs; default
            ``$CNCF_JOB_STORE``.
        lease: seconds after which a hub that stopped renewing its lease is
            taken for dead and its running jobs are resumed (PostgreSQL).
    """

    def __init__(
        self,
        home: Path,
        engine: ActionEngine,
        components: Mapping[str, Component],
        workers: int = 2,
        *,
        durability: str | None = None,
        retry_base: float = 0.2,
        retry_max: float = 30.0,
        sources: Callable[[], Mapping[str, tuple[str, Mapping[str, Any]]]] | None = None,
        job_store: str | None = None,
        lease: float | None = None,
    ) -> None:
        self.home = Path(home)
        self.engine = engine
        self.components = components
        self.workers = max(0, int(workers))
        self.durability = durability or os.environ.get("CNCF_JOB_DURABILITY") or "process"
        self.paused = False  # True: accept and store jobs, start no attempt (see resume())
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.store_url = store_url(job_store)
        try:
            self.lease = float(lease if lease is not None else os.environ.get("CNCF_JOB_LEASE") or DEFAULT_LEASE)
        except (TypeError, ValueError):
            self.lease = -1.0  # refused when a store that uses it is opened (enqueue_failed, store_error)
        self.store: JobStore | None = None
        self.store_error: BaseException | None = None
        self._ring: collections.deque[str] = collections.deque()  # components that may have ready jobs
        self._gen: dict[str, int] = {}  # per component: bumped at each push (a claim that found none is stale)
        self._ctimers: dict[str, asyncio.TimerHandle] = {}  # a component's earliest back-off, seen in the store
        self._inflight: dict[str, int] = {}
        self._running = 0
        self._active: dict[str, _Active] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._depths: tuple[float, dict[str, tuple[int, float]]] | None = None  # (when read, queue_depths)
        self._waiters: dict[str, list[asyncio.Future[Outcome]]] = {}
        self._changed: asyncio.Event | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._peers = False  # other live hubs share the store (SQLite: seen by their locks)
        self._cancels = False  # a cancellation of a job this hub runs was requested elsewhere
        self._done: set[str] = set()  # waited-for jobs another hub ended
        self._closing = False
        self.recovered: list[str] = []  # ids resumed (or quarantined) by this hub
        self._sources = sources
        self._recorded: dict[str, tuple[str, str]] = {}
        self._announced: list[str] | None = None
        self._beat = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.draining = False  # drain(): no new attempt; running ones may end
        self.handed_back = 0  # attempts interrupted by the hub's shutdown and put back in the queue

    # ------------------------------------------------------------------ start

    async def start(self) -> None:
        """Open the store, resume what dead hubs left running, queue the rest.
        Never raises: an unusable store is remembered, and every enqueue then
        returns ``enqueue_failed`` (opening is retried on each enqueue)."""
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if await self._open():
            await self._resume_store()

    async def reopen(self) -> bool:
        """Is the store open (opened again now if it was not)?"""
        if self.store is not None:
            return True
        if not await self._open():
            return False
        await self._resume_store()
        return True

    async def _resume_store(self) -> None:
        """Just opened: resume dead owners' jobs, look at what is queued, watch."""
        assert self.store is not None
        try:
            await self._recover()
        except _STORE_ERRORS as exc:  # a read-only store can still be read
            self.store_error = exc
        self._scan()
        self._see_peers()
        self._record_sources()
        self._pump()
        if self.workers and (self._watcher is None or self._watcher.done()):
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _open(self) -> bool:
        try:
            # PostgreSQL connects (and may migrate) here: off the loop
            self.store = await asyncio.to_thread(
                open_store, self.home, self.store_url, durability=self.durability, lease=self.lease
            )
            self.store_error = None
        except (*_STORE_ERRORS, ValueError, ImportError) as exc:  # ValueError: a bad setting or URL
            self.store, self.store_error = None, exc
            return False
        loop = self._loop
        if loop is not None:
            self.store.listen(lambda payload: _threadsafe(loop, self._notified, payload))
        return True

    @property
    def where(self) -> str:
        """The store, for messages: a path, or a URL without its password."""
        return redact(self.store_url) if self.store_url else str(self.home / "jobs.sqlite3")

    async def _recover(self) -> list[str]:
        """Resume the jobs of dead owners (see the store); their ids."""
        store = self.store
        assert store is not None
        found = await store.recover(time.time())
        self.recovered += found
        return found

    def _scan(self) -> None:
        """Read which components have queued jobs (any hub's): ready ones join
        the ring, delayed ones get a timer at their earliest back-off."""
        if self.store is None:
            return
        try:
            waiting = self.store.waiting()
        except _STORE_ERRORS:
            return
        now = time.time()
        loop = asyncio.get_running_loop()
        for key, not_before in waiting.items():
            if not_before <= now:
                self._push(key)
            elif key not in self._ctimers:
                self._ctimers[key] = loop.call_later(not_before - now, self._cdue, key)

    def _cdue(self, key: str) -> None:
        self._ctimers.pop(key, None)
        self._push(key)
        self._pump()

    def _notified(self, payload: str) -> None:
        """A notification from the store (another hub queued, cancelled, ended)."""
        kind, _, what = payload.partition(":")
        if kind == "q":
            if what == "*":  # the store reconnected: notifications may have been missed
                self._scan()
                self._cancels = True
                self._done.update(self._waiters)
            else:
                self._push(what)
            self._pump()
            return
        if kind == "c" and self.store is not None and what == self.store.owner:
            self._cancels = True
        elif kind == "d" and what in self._waiters:
            self._done.add(what)
        else:
            return  # not about this hub
        if self._wake is not None:
            self._wake.set()

    async def _watch(self) -> None:
        """While the hub lives: see jobs queued by other hubs, cancellation
        requested elsewhere, dead hubs whose jobs must be resumed; renew this
        hub's lease.  Woken by the store's notifications (PostgreSQL) or every
        ``_POLL`` seconds (SQLite: ``PRAGMA data_version``, a cheap read)."""
        assert self._wake is not None
        swept = 0.0
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), _POLL)
            except TimeoutError:
                pass
            self._wake.clear()
            store = self.store
            if store is None or self._closing:
                return
            now = time.monotonic()
            try:
                if now - self._beat >= min(5.0, self.lease / 3):
                    self._beat = now
                    await store.heartbeat(self._loaded())
                if store.changed():
                    self._scan()
                sweep = now - swept >= (_POLL if self._waiters else _SWEEP)  # a waiter may wait for a dead hub
                # without notifications (SQLite) cancellations are polled; with them, asked for (and swept)
                if self._active and (self._cancels or not store.shared or sweep):
                    self._cancels = False
                    for job_id in store.cancel_requests():
                        act = self._active.get(job_id)
                        if act is not None and not act.cancel:
                            self._cancel_active(act)
                while self._done:  # (waiters also poll the store themselves)
                    job_id = self._done.pop()
                    job = store.get(job_id)
                    if job is not None and job.done and job.outcome is not None:
                        self._resolve(job_id, job.outcome)
                if sweep:
                    swept = now
                    self._see_peers()
                    found = await self._recover()
                    if found or not store.shared:
                        self._scan()
                    self._pump()
            except _STORE_ERRORS:
                continue
            except Exception:  # noqa: BLE001 - the watcher must outlive any surprise
                continue

    def _see_peers(self) -> None:
        """Are other live hubs sharing this store?  (Then a synchronous ``Hub``
        keeps its loop turning to drain their jobs, see ``busy``.)"""
        if self.store is None:
            return
        try:
            self._peers = self.store.shared or len(self.store.served()) > 1
        except _STORE_ERRORS:
            pass

    def _loaded(self) -> list[str]:
        """The components this hub can run jobs of (none for a submit-only hub)."""
        if not self.workers:
            return []
        return sorted(k for k in self.components if self._available(k) is not None)

    def pause(self) -> None:
        """Keep accepting jobs but start no new attempt (running ones finish)."""
        self.paused = True
        self._note()

    def resume(self) -> None:
        self.paused = False
        self._pump()

    def poke(self) -> None:
        """Something changed outside (a component was loaded): look for work.
        (The hub pokes at every queued call too: cheap unless the loaded
        components changed.)"""
        self._record_sources()
        loaded = self._loaded()
        if loaded != self._announced:
            self._announced = loaded
            self._beat = 0.0  # announce the components at the next watch
            if self.store is not None and not self.store.shared:  # SQLite: a write into our own lock file
                fut = asyncio.ensure_future(self.store.heartbeat(loaded))
                fut.add_done_callback(_ignore)
            if self._wake is not None:
                self._wake.set()
            self._scan()
        self._pump()

    def _record_sources(self) -> None:
        """Remember where each queue-policy component was loaded from (best effort)."""
        if self._sources is None or self.store is None:
            return
        for key, (target, overrides) in self._sources().items():
            comp = self.components.get(key)
            if comp is None or not any(
                e.policy.mode is Mode.QUEUE for ops in comp.services.values() for e in ops.values()
            ):
                continue
            where = Path(target)
            target = str(where.resolve()) if where.exists() else str(target)  # usable from any cwd
            try:
                rec = (target, json.dumps(dict(overrides), sort_keys=True))
            except (TypeError, ValueError):
                continue
            if self._recorded.get(key) == rec:
                continue
            self._recorded[key] = rec
            fut = asyncio.ensure_future(self.store.record_source(key, rec[0], rec[1], time.time()))
            fut.add_done_callback(_ignore)

    # ---------------------------------------------------------------- enqueue

    async def enqueue(self, dispatched: Dispatched) -> Outcome:
        """Store the call as a queued job; the Outcome carries its id (or an
        ``enqueue_failed`` Observation: nothing was stored)."""
        call = dispatched.call
        target = str(call.target)
        if self._closing:
            return Outcome.failure(
                Observation.of(
                    Code.HUB_CLOSED, "the hub is closing; the job was not accepted", target=target, call_id=call.id
                )
            )
        try:
            payload = json.dumps(
                {"args": list(call.args), "kwargs": call.kwargs},  # sorted: comparable
                allow_nan=False,
                separators=(",", ":"),
                sort_keys=True,
            )
        except (TypeError, ValueError, RecursionError) as exc:
            return Outcome.failure(
                Observation.of(
                    Code.ENQUEUE_FAILED,
                    f"the arguments of {target} cannot be stored as JSON ({exc}); a job's payload must "
                    "be JSON: strings, numbers, booleans, null, lists and objects with string keys",
                    stage=Stage.JOB,
                    target=target,
                    call_id=call.id,
                    cause=cause_of(exc),
                    reason="payload_not_encodable",
                )
            )
        if not await self.reopen():
            return self._store_failure(call, self.store_error)
        store = self.store
        assert store is not None
        ctx = call.context
        key = ctx.idempotency_key
        timeout = ctx.deadline - ctx.submitted if ctx.deadline is not None else None
        comp_key = normalize(call.target.component)
        row = (
            new_job_id(),
            comp_key,
            call.target.service,
            call.target.operation,
            target,
            payload,
            call.id,
            ctx.correlation_id,
            ctx.caller,
            key,
            timeout,
            call.policy.max_attempts,
            time.time(),
        )
        wait = _SERVER_WAIT  # a server that stopped answering must not hang the call past its deadline
        if ctx.deadline is not None:
            wait = max(0.0, min(wait, ctx.deadline - asyncio.get_running_loop().time()))
        try:
            if store.shared:
                insert = asyncio.ensure_future(store.insert(row, key))
                insert.add_done_callback(_ignore)  # (its late failure is nobody's to hear)
                job_id, created = await asyncio.wait_for(asyncio.shield(insert), wait)
            else:
                job_id, created = await store.insert(row, key)
        except TimeoutError:
            return self._store_failure(
                call,
                StoreUnavailable(
                    f"the database server did not answer within {wait:.3g}s (the call's deadline, at most "
                    f"{_SERVER_WAIT:g}s); the job may still be "
                    "stored when it does (retry with the same idempotency key to be sure of one job)"
                ),
            )
        except Exception as exc:  # sqlite3.Error, OSError: disk full, read-only, unreachable ...
            return self._store_failure(call, exc)
        if created is None:
            return Outcome.failure(
                Observation.of(
                    Code.IDEMPOTENCY_CONFLICT,
                    f"idempotency key {key!r} was first used for job {job_id} with another target or other "
                    f"arguments than this call to {target}; use a new key for a different request",
                    stage=Stage.JOB,
                    target=target,
                    call_id=call.id,
                    job_id=job_id,
                    idempotency_key=key,
                )
            )
        if created:
            self._push(comp_key)
            self._pump()
        return Outcome(call.id, job_id=job_id, queued=True)

    def corrupt_observation(self) -> Observation:
        exc = self.store_error
        path = exc.path if isinstance(exc, StoreCorrupt) else self.where
        return Observation.of(Code.JOB_STORE_CORRUPT, str(exc), stage=Stage.JOB, file=str(path))

    def _store_failure(self, call: ActionCall, exc: BaseException | None) -> Outcome:
        reason = error_reason(exc) if exc is not None else "store_error"
        if isinstance(exc, StoreCorrupt):
            return Outcome.failure(
                Observation.of(
                    Code.ENQUEUE_FAILED,
                    f"{call.target} was not queued: {exc}",
                    stage=Stage.JOB,
                    target=str(call.target),
                    call_id=call.id,
                    reason=reason,
                    file=str(exc.path),
                )
            )
        return Outcome.failure(
            Observation.of(
                Code.ENQUEUE_FAILED,
                f"{call.target} could not be stored as a job in {self.where}: {exc} "
                + (
                    "(is the database server reachable? the hub reconnects by itself; retry the call)"
                    if self.store_url
                    else "(is the hub home writable, and is there free disk space?)"
                ),
                stage=Stage.JOB,
                target=str(call.target),
                call_id=call.id,
                cause=cause_of(exc) if exc is not None else None,
                reason=reason,
                store=self.where if self.store_url else str(self.home),
            )
        )

    # ------------------------------------------------------------- scheduling

    def _push(self, key: str) -> None:
        """``key`` may have ready jobs: it joins the ring (once)."""
        self._gen[key] = self._gen.get(key, 0) + 1
        if key not in self._ring:
            self._ring.append(key)

    def _later(self, job_id: str, key: str, delay: float) -> None:
        loop = asyncio.get_running_loop()
        old = self._timers.pop(job_id, None)
        if old is not None:
            old.cancel()
        self._timers[job_id] = loop.call_later(max(0.0, delay), self._due, job_id, key)

    def _due(self, job_id: str, key: str) -> None:
        self._timers.pop(job_id, None)
        self._push(key)
        self._pump()
        self._note()

    def _available(self, key: str) -> Component | None:
        comp = self.components.get(key)
        if comp is None or comp.state in _UNAVAILABLE:
            return None
        return comp

    def _pump(self) -> None:
        """Start attempts while workers are free: round robin over components,
        one attempt per component at a time.  Each attempt claims the oldest
        ready job of its component in the store, so hubs sharing the store
        share the work: a hub never takes more than one job per component
        ahead of the others."""
        if self._closing or self.paused or self.draining or self.engine.closing or self.store is None:
            return
        ring = self._ring
        skipped = 0
        while ring and self._running < self.workers and skipped < len(ring):
            key = ring[0]
            comp = self._available(key)
            if comp is None or self._inflight.get(key, 0) >= 1:
                ring.rotate(-1)
                skipped += 1
                continue
            ring.rotate(-1)  # the next component goes first next time
            skipped = 0
            self._start(key, comp)

    def _start(self, key: str, comp: Component) -> None:
        self._inflight[key] = self._inflight.get(key, 0) + 1
        self._running += 1
        act = _Active("", key)
        # in a context of its own: an attempt owes nothing to whatever made the pump run
        # (a request that submitted a job, an operation that called): its span is a
        # trace's root, whenever it starts
        attempt = self._attempt(act, comp, self._gen.get(key, 0))
        task = asyncio.get_running_loop().create_task(attempt, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._note()

    def _note(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # ---------------------------------------------------------------- attempt

    async def _attempt(self, act: _Active, comp: Component, gen: int) -> None:
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._inflight[act.key] -= 1
                self._running -= 1
                self._pump()

        store = self.store
        assert store is not None
        try:
            try:
                row = await store.claim_next(act.key, time.time())
            except Exception:  # the store cannot write now: leave it queued, look again later
                self._drop(act.key, gen)
                release()
                if not self._closing:
                    self._later(f"claim:{act.key}", act.key, max(self.retry_base, 0.2))
                return
            if row is None:  # nothing ready (any more) for this component
                self._drop(act.key, gen)
                return
            self._push(act.key)  # it may have more: stays in the ring (round robin)
            (
                job_id,
                service,
                operation,
                payload,
                corr,
                key,
                timeout,
                attempts,
                max_attempts,
                history,
                cancel_requested,
                target,
            ) = row
            act.id = job_id
            self._active[job_id] = act
            act.attempt, act.started = attempts, time.time()
            hist = list(decode_history(history))
            call_id = f"{act.id}#{attempts}"
            if cancel_requested or act.cancel:
                release()
                await self._cancelled(act, call_id, target, hist, None)
                return
            if self._closing or self.draining or self.engine.closing:
                release()
                await self._hand_back(act, hist, None, uncount=True)
                return
            entry, obs = _resolve_entry(self.engine, comp, service, operation, target, call_id)
            if entry is None:
                assert obs is not None
                release()
                await self._settle(act, Outcome(call_id, observation=obs), target, max_attempts, hist)
                return
            p = json.loads(payload)
            call = ActionCall.job_attempt(
                call_id,
                Target(comp.name, entry.service, entry.name),
                entry.policy,
                correlation_id=corr,
                idempotency_key=key,
                timeout=timeout,
                now=asyncio.get_running_loop().time(),
                args=p.get("args", ()),
                kwargs=p.get("kwargs", {}),
            )
            act.call_id = call.id
            outcome = await self.engine.run(Dispatched(call, comp, entry))
            release()
            await self._settle(act, outcome, target, max_attempts, hist)
        finally:
            release()
            self._active.pop(act.id, None)

    def _drop(self, key: str, gen: int) -> None:
        """A claim found nothing: ``key`` leaves the ring, unless something was
        queued for it since the claim began."""
        if self._gen.get(key, 0) == gen:
            try:
                self._ring.remove(key)
            except ValueError:
                pass

    async def _settle(
        self, act: _Active, outcome: Outcome, target: str, max_attempts: int, hist: list[Attempt]
    ) -> None:
        obs = outcome.observation
        now = time.time()
        if obs is None:
            await self._finish(act, JobState.SUCCEEDED, outcome, None)
            return
        attempt = Attempt(act.attempt, obs, act.started, now, self._owner)
        if act.cancel:
            await self._cancelled(act, outcome.call_id, target, hist, obs)
        elif self._closing or _interrupted(obs):
            # Shutdown or unload is not the job's fault: back to the queue, uncounted.
            await self._hand_back(act, hist, None, uncount=True)
            if not self._closing:
                self._push(act.key)  # runs again once its component is loaded
        elif not obs.retryable:
            hist.append(attempt)
            await self._finish(act, JobState.FAILED, outcome, hist)
        elif act.attempt >= max_attempts:
            hist.append(attempt)
            await self._finish(
                act, JobState.FAILED, quarantined(act.id, target, outcome.call_id, hist, max_attempts), hist
            )
        else:
            hist.append(attempt)
            delay = self.backoff(act.attempt)
            assert self.store is not None
            if await self._write(self.store.retry, act.id, now + delay, encode_history(hist), False):
                self._later(act.id, act.key, delay)

    def backoff(self, attempt: int) -> float:
        """Seconds before the attempt after ``attempt`` (1-based), with jitter."""
        base = min(self.retry_max, self.retry_base * 2 ** max(0, attempt - 1))
        return float(base * random.uniform(0.8, 1.2))

    async def _cancelled(
        self, act: _Active, call_id: str, target: str, hist: list[Attempt], inner: Observation | None
    ) -> None:
        obs = Observation.of(
            Code.JOB_CANCELLED,
            f"job {act.id} ({target}) was cancelled "
            + ("while running" if inner is not None else "before its attempt started"),
            stage=Stage.JOB,
            target=target,
            call_id=call_id,
            cause=observation_cause(inner),
            job_id=act.id,
            inner_code=inner.code.value if inner else None,
        )
        await self._finish(act, JobState.CANCELLED, Outcome(call_id, observation=obs), hist)

    async def _hand_back(self, act: _Active, hist: list[Attempt], attempt: Attempt | None, uncount: bool) -> None:
        if self._closing or self.engine.closing or self.draining:
            self.handed_back += 1
        if attempt is not None:
            hist.append(attempt)
        assert self.store is not None
        await self._write(self.store.retry, act.id, None, encode_history(hist), uncount)

    async def _finish(self, act: _Active, state: JobState, outcome: Outcome, hist: list[Attempt] | None) -> None:
        final = Outcome(
            outcome.call_id, outcome.value, outcome.observation, outcome.stdout, outcome.stderr, job_id=act.id
        )
        assert self.store is not None
        await self._write(
            self.store.finish,
            act.id,
            state.value,
            encode_outcome(final),
            encode_history(hist) if hist is not None else None,
            time.time(),
        )
        self._resolve(act.id, final)

    @property
    def _owner(self) -> str:
        assert self.store is not None
        return self.store.owner

    async def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A state change that must not be dropped: retried while the store
        refuses (disk full, server unreachable) for a few seconds.  If it still
        fails, the job stays ``running`` under this hub and is resumed after its
        next start (SQLite) or once its lease runs out (PostgreSQL)."""
        delay = 0.05
        tries = 0
        while True:
            try:
                return await fn(*args)
            except Exception:
                tries += 1
                shared = self.store is not None and self.store.shared
                # a shared store's server may come back: keep trying while the hub lives (else the
                # job would stay running under a live hub); after close, its lease runs out instead
                if tries >= 8 and not (shared and not self._closing):
                    return None
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)

    def _resolve(self, job_id: str, outcome: Outcome) -> None:
        for fut in self._waiters.pop(job_id, ()):
            if not fut.done():
                fut.set_result(outcome)

    # ------------------------------------------------------------- user view

    def get(self, job_id: str) -> Job:
        """The job's current record; raises :class:`JobNotFound` (``job_not_found``)."""
        if self.store is None:
            raise JobNotFound(not_found(job_id, f"the store is unavailable: {self.store_error}"))
        try:
            job = self.store.get(job_id)
        except _STORE_ERRORS as exc:
            raise JobNotFound(not_found(job_id, f"the store is unavailable: {exc}")) from None
        if job is None:
            raise JobNotFound(not_found(job_id))
        return self._why([job])[0]

    def list(
        self,
        *,
        state: str | JobState | None = None,
        component: str | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
    ) -> list[Job]:
        """Jobs, newest first (all of them unless ``limit``), filtered by state
        and/or component name (compared normalized)."""
        if self.store is None:
            if isinstance(self.store_error, StoreCorrupt):
                raise JobStoreCorrupt(self.corrupt_observation())
            if self.store_url is None and not (self.home / "jobs.sqlite3").exists():
                return []  # nothing was ever stored here (e.g. a read-only home)
            raise JobStoreUnavailable(self._unavailable(self.store_error))
        try:
            jobs = self.store.select(
                state=JobState(state).value if state is not None else None,
                component=normalize(component) if component else None,
                limit=limit,
                oldest_first=oldest_first,
            )
        except _STORE_ERRORS as exc:
            raise JobStoreUnavailable(self._unavailable(exc)) from None
        return self._why(jobs)

    def _unavailable(self, exc: BaseException | None) -> Observation:
        return Observation.of(
            Code.JOB_STORE_UNAVAILABLE,
            f"the job store {self.where} cannot be read just now: {exc}",
            stage=Stage.JOB,
            reason=error_reason(exc) if exc is not None else "store_error",
            store=self.where,
        )

    def queue_depths(self) -> dict[str, tuple[int, float]]:
        """Per component key: its queued jobs (every hub's: the queue is shared) and
        when the oldest was created (``time.time()``).  One indexed GROUP BY over
        the queued rows, at most four times a second; the last answer stands while the
        store cannot be read."""
        if self.store is None:
            return {}
        now = time.monotonic()
        cached = self._depths
        if cached is not None and now - cached[0] < 0.25:
            return cached[1]
        try:
            depths = self.store.queue_summary()
        except _STORE_ERRORS:
            return cached[1] if cached is not None else {}
        self._depths = (now, depths)
        return depths

    def served(self) -> dict[str, builtins.list[str]]:
        """Every live hub on this store (its owner id) → the components it has loaded."""
        if self.store is None:
            return {}
        try:
            served = self.store.served()
        except _STORE_ERRORS:
            return {}
        served[self.store.owner] = self._loaded()
        return served

    def _why(self, jobs: builtins.list[Job]) -> builtins.list[Job]:
        """Queued jobs that no live hub can run say so (``Job.waiting``)."""
        if not any(j.state is JobState.QUEUED for j in jobs):
            return jobs
        have = {c for comps in self.served().values() for c in comps}
        return [
            dataclasses.replace(
                j,
                waiting=f"no live hub has component {j.component!r} loaded (the job runs once one does)",
            )
            if j.state is JobState.QUEUED and j.component not in have
            else j
            for j in jobs
        ]

    async def wait(self, job_id: str, timeout: float | None = None) -> Outcome:
        """The job's final Outcome.  When ``timeout`` passes first, an Outcome
        whose Observation is ``wait_timeout`` (stage ``wait``) with
        ``attributes['job_state']``: the *caller's* wait ended, the job did not —
        it goes on and can be waited for again."""
        if self.store is None:
            return Outcome(
                job_id, observation=not_found(job_id, f"store unavailable: {self.store_error}"), job_id=job_id
            )
        try:
            job = self.store.get(job_id)
        except _STORE_ERRORS:  # unreachable now: wait, reading again at each poll
            job = None
        else:
            if job is None:
                return Outcome(job_id, observation=not_found(job_id), job_id=job_id)
            if job.outcome is not None and job.done:
                return job.outcome
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(0.0, timeout)
        fut: asyncio.Future[Outcome] = loop.create_future()
        self._waiters.setdefault(job_id, []).append(fut)
        try:
            while True:
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    break
                done, _ = await asyncio.wait({fut}, timeout=_POLL if left is None else min(left, _POLL))
                if done:
                    return fut.result()
                try:
                    job = self.store.get(job_id) if self.store is not None else None
                except _STORE_ERRORS:
                    continue
                if job is not None and job.done and job.outcome is not None:
                    return job.outcome
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._waiters[job_id]
        state = job.state.value if job is not None else "unknown"
        return Outcome(
            job.call_id if job is not None else job_id,
            job_id=job_id,
            observation=Observation.of(
                Code.WAIT_TIMEOUT,
                f"job {job_id} is still {state} after waiting {timeout:g}s; the job goes on (wait again, or cancel it)",
                stage=Stage.WAIT,
                target=job.target if job is not None else job_id,
                call_id=job.call_id if job is not None else "",
                job_id=job_id,
                job_state=state,
                limit="wait",
            ),
        )

    async def cancel(self, job_id: str) -> bool:
        """Queued → cancelled at once.  Running → cancellation delivered to the
        attempt (cooperative, then forced after the grace period); the job ends
        ``cancelled`` unless the attempt had already finished.  False for an
        unknown or already finished job."""
        act = self._active.get(job_id)
        if act is not None:
            self._cancel_active(act)
            return True
        if self.store is None:
            return False
        try:
            job = self.store.get(job_id)
        except _STORE_ERRORS:
            return False
        if job is None or job.done:
            return False
        obs = Observation.of(
            Code.JOB_CANCELLED,
            f"job {job_id} ({job.target}) was cancelled while queued",
            stage=Stage.JOB,
            target=job.target,
            call_id=job.call_id,
            job_id=job_id,
        )
        outcome = Outcome(job.call_id, observation=obs, job_id=job_id)
        try:
            was = await self.store.cancel_queued(job_id, encode_outcome(outcome), time.time())
        except Exception:
            return False
        if was == JobState.QUEUED.value:
            timer = self._timers.pop(job_id, None)
            if timer is not None:
                timer.cancel()
                self._note()
            self._resolve(job_id, outcome)
            return True
        if was == JobState.RUNNING.value:
            act = self._active.get(job_id)
            if act is not None:
                self._cancel_active(act)
            return True  # another hub runs it: it sees the request within _POLL seconds
        return False

    def _cancel_active(self, act: _Active) -> None:
        act.cancel = True
        if act.call_id is not None:
            self.engine.cancel(act.call_id)

    # ---------------------------------------------------------- idle / close

    @property
    def busy(self) -> bool:
        """Is there job work that needs the event loop to turn?  (The sync
        ``Hub`` keeps a pump thread running its loop while this is true.)"""
        if self._tasks or self._timers:
            return True
        if self._closing or self.paused or self.engine.closing or not self.workers:
            return False
        if self._peers and any(self._available(k) is not None for k in self.components):
            return True  # other hubs share the queue (PostgreSQL, or seen on this home): their jobs may come
        return any(self._available(k) is not None for k in self._ring)

    async def until_idle(self) -> None:
        """Return once :attr:`busy` is false."""
        assert self._changed is not None
        while self.busy:
            self._changed.clear()
            await self._changed.wait()

    def stats(self) -> dict[str, Any]:
        return {
            "running": self._running,
            "active": len(self._active),
            "ready": len(self._ring),
            "delayed": len(self._timers) + len(self._ctimers),
            "commits": self.store.commits if self.store else 0,
        }

    async def drain(self, grace: float) -> int:
        """Shutdown's first step (``cncf serve`` on SIGTERM): start no new
        attempt and give the running ones up to ``grace`` seconds to end as
        usual.  Returns how many still run; ``close()`` then cancels them
        (the engine's tiers) and hands them back to the queue uncounted
        (``handed_back`` counts them)."""
        self.draining = True
        running = [t for t in self._tasks if not t.done()]
        if running and grace > 0:
            await asyncio.wait(running, timeout=grace)
        return sum(1 for t in self._tasks if not t.done())

    async def close(self, grace: float = 5.0) -> None:
        """Stop starting attempts; let running ones end (the engine's shutdown
        has cancelled them: they are handed back to the queue); close the store."""
        self._closing = True
        for timer in (*self._timers.values(), *self._ctimers.values()):
            timer.cancel()
        self._timers.clear()
        self._ctimers.clear()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        if self._watcher is not None:
            self._watcher.cancel()
        closed = Observation.of(
            Code.HUB_CLOSED, "the hub closed while this wait was pending; the job stays in the store", stage=Stage.WAIT
        )
        for job_id in list(self._waiters):
            self._resolve(job_id, Outcome("", observation=closed, job_id=job_id))
        if self._watcher is not None:
            self._watcher.cancel()
        if self.store is not None:
            await self.store.drain()
            store, self.store = self.store, None
            await asyncio.to_thread(store.close)
        self._note()


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _threadsafe(loop: asyncio.AbstractEventLoop, fn: Callable[[str], None], payload: str) -> None:
    """Hand a store notification (from its listener thread) to the loop."""
    try:
        loop.call_soon_threadsafe(fn, payload)
    except RuntimeError:  # the loop is closed: the hub is gone
        pass


def _ignore(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved: a best-effort write that failed is not an error


def _interrupted(obs: Observation) -> bool:
    """Did the hub stop this attempt (close, unload), rather than the job fail?"""
    return obs.code is Code.HUB_CLOSED or (
        obs.code is Code.CANCELLED and obs.attributes.get("reason") in ("unload", "shutdown")
    )


def _resolve_entry(
    engine: ActionEngine, comp: Component, service: str, operation: str, target: str, call_id: str
) -> tuple[OperationEntry | None, Observation | None]:
    """The stored job's operation on the component as loaded now (it may have
    been reloaded since); an unknown operation is the dispatch Observation."""
    entry = comp.services.get(service, {}).get(operation)
    if entry is not None:
        return entry, None
    try:
        entry = engine.dispatch(f"{comp.name}.{service}.{operation}", None, call_id=call_id).entry
        return entry, None
    except Failed as exc:
        return None, exc.observation.with_context(target=target, call_id=call_id)
