"""The durable job store: one SQLite file in WAL mode, with group commit.

Design.  Every state change of a job is one row update in ``home/jobs.sqlite3``;
an operation is acknowledged (its future resolved) only after the transaction
that holds it has committed, so "acknowledged ⇒ on disk".  Two durability
levels, both WAL:

* ``synchronous=NORMAL`` (default, ``durability="process"``): a commit is a
  ``write()`` into the WAL file, which the kernel keeps when the process dies.
  An acknowledged job survives ``kill -9`` of the hub (and any crash of the
  process); it may be lost only if the *machine* loses power or panics before
  the next checkpoint.  About 25 µs per commit here.
* ``synchronous=FULL`` (``durability="power"``): each commit also fsyncs the
  WAL.  About 235 µs per commit here, so commits then run on a private writer
  thread and are *grouped*: while one fsync is in flight, every operation
  submitted meanwhile waits for the next commit, which carries them all.

Group commit is the same in both modes: operations submitted during one turn
of the event loop share one transaction (``_Writer``).  A batch that fails is
replayed one operation per transaction, so one bad operation cannot fail its
neighbours; a store that cannot write at all (read-only, disk full) fails each
operation with the SQLite error, which the job system turns into an
``enqueue_failed`` Observation.

Ownership.  A running job records the *owner* that claimed it: the id of a
live hub's job system, which holds an exclusive ``flock`` on
``home/jobs.owners/<owner>.lock`` for as long as it lives.  The kernel drops
that lock when the process dies, ``kill -9`` included; a hub that starts later
and can take the lock knows the owner is dead and resumes its jobs.  Several
hubs may share one home: claims are atomic (``UPDATE … WHERE state='queued'``)
and nobody resumes the jobs of a live owner.

Prior art: PostgreSQL's and InnoDB's group commit; Oban and Que (job rows
claimed by an atomic update, a lost job found by its dead owner); Litestream's
notes on WAL + ``synchronous=NORMAL``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import random
import socket
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:  # POSIX; elsewhere an owner counts as alive while its pid exists
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from cncf._private import private_dir
from cncf.jobs.model import (
    Attempt,
    Job,
    JobState,
    decode_history,
    decode_outcome,
    encode_history,
    encode_outcome,
    quarantined,
)
from cncf.jobs.protocol import ClaimRow, InsertRow, StoreUnavailable
from cncf.observation import Code, Observation, Stage

STORE_NAME = "jobs.sqlite3"
OWNERS_DIR = "jobs.owners"
SCHEMA_VERSION = 1
DURABILITY = {"process": "NORMAL", "power": "FULL"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    component TEXT NOT NULL,          -- normalized component name
    service TEXT NOT NULL,
    operation TEXT NOT NULL,
    target TEXT NOT NULL,             -- component.service.operation, as declared
    payload TEXT NOT NULL,            -- {"args": [...], "kwargs": {...}}
    call_id TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    caller TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    timeout REAL,                     -- the caller's overall limit, applied per attempt
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    not_before REAL,
    owner TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    outcome TEXT,
    history TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, component);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- where each queue-policy component was last loaded from (``cncf jobs work`` loads it again)
CREATE TABLE IF NOT EXISTS sources (
    component TEXT PRIMARY KEY,       -- normalized name
    target TEXT NOT NULL,             -- what hub.load() was given
    overrides TEXT NOT NULL,          -- the manifest overrides given with it (JSON)
    updated REAL NOT NULL
);
"""

#: The columns each table must have (checked when an existing store is opened).
_TABLES = {
    "jobs": frozenset(
        {
            *("seq", "id", "component", "service", "operation", "target", "payload", "call_id", "correlation_id"),
            *("caller", "idempotency_key", "timeout", "state", "attempts", "max_attempts", "created", "started"),
            *("finished", "not_before", "owner", "cancel_requested", "outcome", "history"),
        }
    ),
    "meta": frozenset({"key", "value"}),
    "sources": frozenset({"component", "target", "overrides", "updated"}),
}

_COLUMNS = (
    "id, state, target, component, attempts, max_attempts, created, started, finished, "
    "not_before, outcome, history, call_id, correlation_id, idempotency_key, caller, "
    "cancel_requested, payload, owner"
)


def new_job_id() -> str:
    """Sortable by creation time (ms), 40 random bits against collisions."""
    return f"j-{int(time.time() * 1000):011x}-{random.getrandbits(40):010x}"


def row_to_job(row: tuple[Any, ...]) -> Job:
    (
        jid,
        state,
        target,
        component,
        attempts,
        max_attempts,
        created,
        started,
        finished,
        not_before,
        outcome,
        history,
        call_id,
        correlation_id,
        key,
        caller,
        cancel_requested,
        payload,
        owner,
    ) = row
    p = json.loads(payload) if payload else {}
    return Job(
        id=jid,
        state=JobState(state),
        target=target,
        component=component,
        attempts=attempts,
        max_attempts=max_attempts,
        created=created,
        started=started,
        finished=finished,
        not_before=not_before,
        outcome=decode_outcome(outcome, jid),
        history=decode_history(history),
        call_id=call_id,
        correlation_id=correlation_id,
        idempotency_key=key,
        caller=caller,
        cancel_requested=bool(cancel_requested),
        args=tuple(p.get("args", ())),
        kwargs=dict(p.get("kwargs", {})),
        owner=owner,
    )


class StoreCorrupt(sqlite3.DatabaseError):
    """``jobs.sqlite3`` is not a readable SQLite database (truncated, a garbage header
    or garbage pages).  Never read as "no jobs": the job system reports it naming
    the file and what to do, and keeps serving calls that need no store."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"{path} is not a readable job store ({detail}); move it aside (for example "
            f"`mv {path} {path}.corrupt`, then try `sqlite3 {path}.corrupt .recover` to salvage "
            "jobs) and the hub starts a new store"
        )
        self.path = path
        self.detail = detail


def error_reason(exc: BaseException) -> str:
    """A stable word for why the store refused a write (``attributes['reason']``)."""
    if isinstance(exc, StoreCorrupt):
        return "store_corrupt"
    if isinstance(exc, StoreUnavailable):
        return "store_unreachable"
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_FULL") or "disk is full" in str(exc):
        return "disk_full"
    if name.startswith("SQLITE_READONLY") or "readonly" in str(exc):
        return "store_read_only"
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED"):
        return "store_busy"
    if isinstance(exc, OSError) or name.startswith("SQLITE_CANTOPEN"):
        return "store_not_writable"
    return "store_error"


# ---------------------------------------------------------------------------
# Write operations (run inside the writer's transaction; plain functions)
# ---------------------------------------------------------------------------


def op_insert(db: Any, row: tuple[Any, ...], key: str | None) -> tuple[str, bool | None]:
    """Insert a queued job; with an idempotency key already used, return the
    first job's id instead (``created`` False) — or ``created`` None when that
    first job had another target or other arguments (the key was reused for a
    different request: never answered with the first one's result)."""
    cur = db.execute(
        "INSERT INTO jobs (id, component, service, operation, target, payload, call_id, correlation_id,"
        " caller, idempotency_key, timeout, state, max_attempts, created)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,'queued',?,?) ON CONFLICT (idempotency_key) DO NOTHING",
        row,
    )
    if cur.rowcount == 1:
        return row[0], True
    found = db.execute("SELECT id, target, payload FROM jobs WHERE idempotency_key = ?", (key,)).fetchone()
    if found[1] != row[4] or found[2] != row[5]:
        return found[0], None
    return found[0], False


def op_claim(db: Any, job_id: str, owner: str, now: float) -> tuple[Any, ...] | None:
    """queued → running, counting the attempt; None when no longer queued."""
    row: tuple[Any, ...] | None = db.execute(
        "UPDATE jobs SET state='running', attempts=attempts+1, started=?, owner=?, not_before=NULL"
        " WHERE id=? AND state='queued'"
        " RETURNING service, operation, payload, correlation_id, idempotency_key, timeout, attempts,"
        " max_attempts, history, cancel_requested, target",
        (now, owner, job_id),
    ).fetchone()
    return row


_CLAIM_SET = "state='running', attempts=attempts+1, started=?, owner=?, not_before=NULL"
_CLAIM_RETURNING = (
    " RETURNING id, service, operation, payload, correlation_id, idempotency_key, timeout, attempts,"
    " max_attempts, history, cancel_requested, target"
)


def op_claim_next(db: Any, component: str, owner: str, now: float) -> ClaimRow | None:
    """The oldest ready queued job of ``component`` → running, counting the
    attempt; None when it has none.  (SQLite serializes writers: no two hubs
    on one home can claim the same row.)"""
    row: ClaimRow | None = db.execute(
        f"UPDATE jobs SET {_CLAIM_SET} WHERE seq = (SELECT seq FROM jobs WHERE state='queued' AND component=?"
        " AND (not_before IS NULL OR not_before <= ?) ORDER BY seq LIMIT 1"
        + _skip_locked(db)
        + ") AND state='queued'"
        + _CLAIM_RETURNING,
        (now, owner, component, now),
    ).fetchone()
    return row


def _skip_locked(db: Any) -> str:
    """PostgreSQL's row locks for a claim (another hub's claim skips the row it
    holds); SQLite has one writer at a time and needs none."""
    return " FOR UPDATE SKIP LOCKED" if getattr(db, "row_locks", False) else ""


def op_finish(db: Any, job_id: str, owner: str, state: str, outcome: str, history: str | None, now: float) -> bool:
    """running → terminal, once: only the owner of the running attempt may."""
    cur = db.execute(
        "UPDATE jobs SET state=?, outcome=?, history=COALESCE(?, history), finished=?, owner=NULL"
        " WHERE id=? AND state='running' AND owner=?",
        (state, outcome, history, now, job_id, owner),
    )
    return bool(cur.rowcount == 1)


def op_retry(db: Any, job_id: str, owner: str, not_before: float | None, history: str, uncount: bool) -> bool:
    """running → queued (a retry after back-off, or an attempt handed back at shutdown)."""
    cur = db.execute(
        "UPDATE jobs SET state='queued', owner=NULL, not_before=?, history=?,"
        " attempts=attempts-? WHERE id=? AND state='running' AND owner=?",
        (not_before, history, 1 if uncount else 0, job_id, owner),
    )
    return bool(cur.rowcount == 1)


def op_cancel_queued(db: Any, job_id: str, outcome: str, now: float) -> str | None:
    """queued → cancelled at once; otherwise mark a cancellation request for the
    running job's owner.  Returns the state the job was in (None: unknown)."""
    lock = " FOR UPDATE" if getattr(db, "row_locks", False) else ""
    row = db.execute("SELECT state FROM jobs WHERE id=?" + lock, (job_id,)).fetchone()
    if row is None:
        return None
    if row[0] == "queued":
        db.execute(
            "UPDATE jobs SET state='cancelled', outcome=?, finished=?, cancel_requested=1"
            " WHERE id=? AND state='queued'",
            (outcome, now, job_id),
        )
    elif row[0] == "running":
        db.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?", (job_id,))
    return str(row[0])


def op_source(db: Any, component: str, target: str, overrides: str, now: float) -> None:
    db.execute(
        "INSERT INTO sources (component, target, overrides, updated) VALUES (?,?,?,?)"
        " ON CONFLICT (component) DO UPDATE SET target=excluded.target,"
        " overrides=excluded.overrides, updated=excluded.updated",
        (component, target, overrides, now),
    )


def lost_attempt(job_id: str, target: str, attempts: int, owner: str, started: float | None, now: float) -> Attempt:
    """The ``job_lost`` attempt recorded for a job whose hub died while running it."""
    return Attempt(
        attempts,
        Observation.of(
            Code.JOB_LOST,
            f"attempt {attempts} of job {job_id} ({target}) was interrupted: the hub running it "
            f"(owner {owner}) died or lost its lease; it may have run partly or wholly",
            stage=Stage.JOB,
            target=target,
            call_id=f"{job_id}#{attempts}",
            job_id=job_id,
            owner=owner,
        ),
        started,
        now,
        owner,
    )


def op_recover(db: Any, owner: str, now: float) -> list[str]:
    """In one transaction: every job a dead owner left running gets a
    ``job_lost`` attempt, then goes back to the queue — or to quarantine when
    that was its last allowed attempt."""
    rows = db.execute(
        "SELECT id, target, attempts, max_attempts, history, started FROM jobs WHERE state='running' AND owner=?"
        + _skip_locked(db),
        (owner,),
    ).fetchall()
    out = []
    for job_id, target, attempts, max_attempts, history, started in rows:
        call_id = f"{job_id}#{attempts}"
        hist = list(decode_history(history))
        hist.append(lost_attempt(job_id, target, attempts, owner, started, now))
        if attempts >= max_attempts:
            outcome = quarantined(job_id, target, call_id, hist, max_attempts)
            db.execute(
                "UPDATE jobs SET state='failed', outcome=?, history=?, finished=?, owner=NULL"
                " WHERE id=? AND state='running' AND owner=?",
                (encode_outcome(outcome), encode_history(hist), now, job_id, owner),
            )
        else:
            db.execute(
                "UPDATE jobs SET state='queued', history=?, owner=NULL, not_before=NULL"
                " WHERE id=? AND state='running' AND owner=?",
                (encode_history(hist), job_id, owner),
            )
        out.append(job_id)
    return out


def read_sources(home: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Component name → (target, overrides) as last loaded by a hub on ``home``
    (read-only; empty when there is no store)."""
    path = home / STORE_NAME
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT component, target, overrides FROM sources").fetchall()
    except sqlite3.Error:
        return {}
    finally:
        db.close()
    return {c: (t, json.loads(o)) for c, t, o in rows}


# ---------------------------------------------------------------------------
# The writer: group commit
# ---------------------------------------------------------------------------


class SqliteTx:
    """How the writer opens and ends a transaction on SQLite (``BEGIN IMMEDIATE``:
    the write lock at once).  The PostgreSQL store has its own (``pgstore``)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def begin(self) -> Any:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("ROLLBACK")


class _Writer:
    """Runs write operations in shared transactions (see the module docstring);
    ``tx`` opens and ends them (SQLite's or PostgreSQL's)."""

    def __init__(self, tx: Any, threaded: bool) -> None:
        self._tx = tx
        self._pending: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = []
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = (
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cncf-jobs-writer") if threaded else None
        )
        self._flusher: asyncio.Task[None] | None = None
        self.commits = 0

    @property
    def busy(self) -> bool:
        return bool(self._pending) or self._scheduled

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending.append((fn, args, fut))
        if not self._scheduled:
            self._scheduled = True
            if self._executor is None:
                loop.call_soon(self._flush_inline)
            else:
                self._flusher = loop.create_task(self._flush_threaded())
        return fut

    def _flush_inline(self) -> None:
        batch, self._pending = self._pending, []
        try:
            _resolve(batch, self._commit(batch))
        finally:
            self._scheduled = False
            if self._pending:  # submitted while resolving: next turn
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush_inline)

    async def _flush_threaded(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                results = await loop.run_in_executor(self._executor, self._commit, batch)
                _resolve(batch, results)
        finally:
            self._scheduled = False

    def _commit(self, batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]]) -> list[Any]:
        """One transaction for the batch; on failure, one per operation."""
        tx = self._tx
        try:
            db = tx.begin()
            results = [fn(db, *args) for fn, args, _ in batch]
            tx.commit()
            self.commits += 1
            return results
        except BaseException as exc:
            tx.rollback()
            if len(batch) == 1 or isinstance(exc, getattr(tx, "fatal", ())):
                return [_Failure(exc)] * len(batch)
        out: list[Any] = []
        for fn, args, _ in batch:
            try:
                db = tx.begin()
                out.append(fn(db, *args))
                tx.commit()
                self.commits += 1
            except BaseException as exc:  # noqa: BLE001 - handed to the submitter
                tx.rollback()
                out.append(_Failure(exc))
        return out

    def run_now(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Synchronously, in its own transaction (start-up and tests only)."""
        r = self._commit([(fn, args, None)])[0]
        if isinstance(r, _Failure):
            raise r.exc
        return r

    async def drain(self) -> None:
        while self._scheduled or self._pending:
            await asyncio.sleep(0)
            if self._flusher is not None and not self._flusher.done():
                await asyncio.wait([self._flusher])

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _resolve(batch: list[tuple[Any, Any, asyncio.Future[Any]]], results: list[Any]) -> None:
    for (_, _, fut), r in zip(batch, results, strict=True):
        if fut.done():
            continue
        if isinstance(r, _Failure):
            fut.set_exception(r.exc)
        else:
            fut.set_result(r)


# ---------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------


def _check_readable(db: sqlite3.Connection, path: Path) -> None:
    """An existing store must be a whole SQLite database; ``StoreCorrupt`` otherwise.
    ``quick_check`` reads every page (milliseconds for thousands of jobs)."""
    try:
        rows = db.execute("PRAGMA quick_check(3)").fetchall()
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise
        raise StoreCorrupt(path, str(exc)) from None
    if [r[0] for r in rows] != ["ok"]:
        raise StoreCorrupt(path, "; ".join(str(r[0]) for r in rows))


def _check_regular(path: Path) -> bool:
    """Whether a store exists at ``path``; ``StoreCorrupt`` when what is there is
    not a regular file (a directory, a FIFO, a device): never read as "no jobs"."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    except OSError as exc:  # a symlink loop, a name too long: not a store either
        raise StoreCorrupt(path, f"it cannot be examined: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise StoreCorrupt(path, f"it is {what}")
    return True


def _check_schema(db: sqlite3.Connection, path: Path) -> None:
    """An existing store whose tables are not this version's (another program's
    database, another hub version's): ``StoreCorrupt`` naming what differs.  Checked
    before ``CREATE TABLE IF NOT EXISTS``, which would keep a table that exists with
    other columns (and every later query would fail one by one)."""
    problems = []
    for table, wanted in _TABLES.items():
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        missing = sorted(wanted - have)
        if have and missing:  # a table that is missing altogether is created
            problems.append(f"table {table!r} lacks {', '.join(missing)}")
    if not problems and "value" in {r[1] for r in db.execute("PRAGMA table_info(meta)")}:
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is not None and str(row[0]) != str(SCHEMA_VERSION):
            problems.append(f"schema version {row[0]!r}, this hub reads {SCHEMA_VERSION}")
    if problems:
        raise StoreCorrupt(path, "it is not a cncf job store of this version: " + "; ".join(problems))


class _Reads:
    """The store's reads, in SQL that SQLite and PostgreSQL both understand
    (``?`` placeholders; the PostgreSQL reader translates them)."""

    _rdb: Any
    owner: str

    def get(self, job_id: str) -> Job | None:
        row = self._rdb.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return row_to_job(row) if row else None

    def state_of(self, job_id: str) -> str | None:
        row = self._rdb.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
        return row[0] if row else None

    def select(
        self,
        *,
        state: str | None = None,
        component: str | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
    ) -> list[Job]:
        where: list[str] = []
        params: list[Any] = []
        if state is not None:
            where.append("state=?")
            params.append(state)
        if component is not None:
            where.append("component=?")
            params.append(component)
        sql = f"SELECT {_COLUMNS} FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq " + ("ASC" if oldest_first else "DESC")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [row_to_job(r) for r in self._rdb.execute(sql, params)]

    def queued(self) -> list[tuple[str, str, float | None]]:
        """(id, component, not_before) of every queued job, oldest first."""
        return list(self._rdb.execute("SELECT id, component, not_before FROM jobs WHERE state='queued' ORDER BY seq"))

    def cancel_requests(self) -> list[str]:
        return [
            r[0]
            for r in self._rdb.execute(
                "SELECT id FROM jobs WHERE owner=? AND state='running' AND cancel_requested=1", (self.owner,)
            )
        ]

    def counts(self) -> dict[str, int]:
        return {s: n for s, n in self._rdb.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")}

    def queue_summary(self) -> dict[str, tuple[int, float]]:
        """Per component: its queued jobs and when the oldest was created (one
        indexed GROUP BY over the queued rows, every hub's included)."""
        rows = self._rdb.execute(
            "SELECT component, COUNT(*), MIN(created) FROM jobs WHERE state='queued' GROUP BY component"
        )
        return {c: (int(n), float(t)) for c, n, t in rows}

    def sources(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Component name → (target, overrides) as last loaded by a hub on this store."""
        return {
            c: (t, json.loads(o)) for c, t, o in self._rdb.execute("SELECT component, target, overrides FROM sources")
        }

    def waiting(self) -> dict[str, float]:
        return {
            c: float(nb or 0.0)
            for c, nb in self._rdb.execute(
                "SELECT component, MIN(COALESCE(not_before, 0)) FROM jobs WHERE state='queued' GROUP BY component"
            )
        }


def new_owner() -> str:
    """A hub's owner id: ``PID-TOKEN@HOST`` (shown with its running jobs)."""
    return f"{os.getpid()}-{random.getrandbits(32):08x}@{socket.gethostname()}"


class Store(_Reads):
    """``home/jobs.sqlite3``: reads on the caller's thread, writes through the writer
    (a :class:`cncf.jobs.protocol.JobStore`)."""

    kind = "sqlite"
    shared = False

    def __init__(self, home: Path, *, durability: str = "process") -> None:
        if durability not in DURABILITY:
            raise ValueError(f"durability must be one of {', '.join(DURABILITY)}, not {durability!r}")
        self.home = home
        self.path = home / STORE_NAME
        self.durability = durability
        self._lock_fd: int | None = None
        self.owner = new_owner()
        self.where = str(self.path)
        self._data_version = -1
        private_dir(home)
        sync = DURABILITY[durability]
        existed = _check_regular(self.path)
        old_umask = os.umask(0o077)  # the store, its WAL and shm: the hub's user only
        try:
            wdb = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        finally:
            os.umask(old_umask)
        try:
            wdb.execute("PRAGMA busy_timeout=5000")
            if existed:
                _check_readable(wdb, self.path)
                _check_schema(wdb, self.path)
            mode = wdb.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot use WAL mode on {self.path} (got {mode})")
            wdb.execute(f"PRAGMA synchronous={sync}")
            wdb.executescript(_SCHEMA)
            wdb.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            rdb = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            rdb.execute("PRAGMA busy_timeout=5000")
        except sqlite3.DatabaseError as exc:
            wdb.close()
            if isinstance(exc, sqlite3.OperationalError | StoreCorrupt):
                raise
            raise StoreCorrupt(self.path, str(exc)) from None
        except BaseException:
            wdb.close()
            raise
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)
        self._wdb, self._rdb = wdb, rdb
        self.writer = _Writer(SqliteTx(wdb), threaded=durability == "power")
        self._take_owner_lock()

    # -- the JobStore protocol: writes ---------------------------------------

    @property
    def commits(self) -> int:
        return self.writer.commits

    async def insert(self, row: InsertRow, key: str | None) -> tuple[str, bool | None]:
        r: tuple[str, bool | None] = await self.writer.submit(op_insert, row, key)
        return r

    async def claim_next(self, component: str, now: float) -> ClaimRow | None:
        r: ClaimRow | None = await self.writer.submit(op_claim_next, component, self.owner, now)
        return r

    async def finish(self, job_id: str, state: str, outcome: str, history: str | None, now: float) -> bool:
        return bool(await self.writer.submit(op_finish, job_id, self.owner, state, outcome, history, now))

    async def retry(self, job_id: str, not_before: float | None, history: str, uncount: bool) -> bool:
        return bool(await self.writer.submit(op_retry, job_id, self.owner, not_before, history, uncount))

    async def cancel_queued(self, job_id: str, outcome: str, now: float) -> str | None:
        r: str | None = await self.writer.submit(op_cancel_queued, job_id, outcome, now)
        return r

    async def record_source(self, component: str, target: str, overrides: str, now: float) -> None:
        await self.writer.submit(op_source, component, target, overrides, now)

    async def recover(self, now: float) -> list[str]:
        """Resume the running jobs of owners whose lock is free (dead processes)."""
        found: list[str] = []
        for owner, fd in self.dead_owners():
            try:
                found += await self.writer.submit(op_recover, owner, now)
            finally:
                self.release_owner(owner, fd)
        self.sweep_owner_files()
        return found

    async def heartbeat(self, components: list[str]) -> None:
        """Announce the components this hub has loaded (in its lock file, read by
        :meth:`served`); liveness itself is the lock."""
        if self._lock_fd is None:
            return
        data = json.dumps(sorted(components)).encode()
        with contextlib.suppress(OSError):
            os.ftruncate(self._lock_fd, 0)
            os.pwrite(self._lock_fd, data, 0)

    async def drain(self) -> None:
        await self.writer.drain()

    def listen(self, callback: Callable[[str], None]) -> None:
        return None  # SQLite has no notifications: the job system polls ``changed()``

    def changed(self) -> bool:
        try:
            v = int(self._rdb.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            return True
        if v != self._data_version:
            self._data_version = v
            return True
        return False

    def served(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        if self._lock_fd is not None:
            out[self.owner] = self._announced(self._lock_fd)
        if fcntl is None:  # pragma: no cover
            return out
        for path in (self.home / OWNERS_DIR).glob("*.lock"):
            if path.stem == self.owner:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:  # held: alive
                    out[path.stem] = self._announced(fd)
                else:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        return out

    @staticmethod
    def _announced(fd: int) -> list[str]:
        try:
            data = os.pread(fd, 1 << 16, 0)
            v = json.loads(data) if data else []
        except (OSError, ValueError):
            return []
        return [str(c) for c in v] if isinstance(v, list) else []

    # -- owners ----------------------------------------------------------

    def _owner_path(self, owner: str) -> Path:
        return self.home / OWNERS_DIR / f"{owner}.lock"

    def _take_owner_lock(self) -> None:
        d = self.home / OWNERS_DIR
        private_dir(d)
        path = self._owner_path(self.owner)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Another hub's sweep may have taken the new file for a dead owner's and removed it
            # between our open and our lock: then lock a file that is really at the path.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._lock_fd = fd

    def dead_owners(self) -> list[tuple[str, int | None]]:
        """Owners of running jobs whose process is gone, each with its lock
        fd held (so no two hubs resume the same owner's jobs)."""
        owners = [
            r[0]
            for r in self._rdb.execute("SELECT DISTINCT owner FROM jobs WHERE state='running' AND owner IS NOT NULL")
        ]
        dead: list[tuple[str, int | None]] = []
        for owner in owners:
            if owner == self.owner:
                continue
            path = self._owner_path(owner)
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                dead.append((owner, None))
                continue
            if fcntl is None:  # pragma: no cover
                os.close(fd)
                pid = int(owner.split("-")[0])
                if not _pid_alive(pid):
                    dead.append((owner, None))
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # alive: it holds its lock
                continue
            dead.append((owner, fd))
        return dead

    def sweep_owner_files(self) -> None:
        """Remove the lock files of dead owners that left no running job (a hub
        killed while idle), after recovery has resumed the others'."""
        if fcntl is None:  # pragma: no cover
            return
        for path in (self.home / OWNERS_DIR).glob("*.lock"):
            if path.stem == self.owner:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # alive
                continue
            running = self._rdb.execute(
                "SELECT 1 FROM jobs WHERE owner=? AND state='running' LIMIT 1", (path.stem,)
            ).fetchone()
            if running is None:
                with contextlib.suppress(OSError):
                    path.unlink()
            os.close(fd)

    def release_owner(self, owner: str, fd: int | None) -> None:
        with contextlib.suppress(OSError):
            self._owner_path(owner).unlink()
        if fd is not None:
            os.close(fd)

    # -- closing ---------------------------------------------------------

    def close(self) -> None:
        self.writer.close()
        for db in (self._rdb, self._wdb):
            with contextlib.suppress(sqlite3.Error):
                db.close()
        if self._lock_fd is not None:
            self.release_owner(self.owner, self._lock_fd)
            self._lock_fd = None


def _pid_alive(pid: int) -> bool:  # pragma: no cover - non-POSIX fallback
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
