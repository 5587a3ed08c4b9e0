"""The job store on PostgreSQL: one queue shared by hubs on several machines.

Chosen with ``[hub] job_store = "postgresql://…"``, ``cncf serve --job-store
URL``, ``Hub(job_store=URL)`` or ``$CNCF_JOB_STORE``; needs ``cncf[postgres]``
(psycopg 3 and psycopg_pool), imported only then.

Tables live in their own schema, ``cncf`` (``jobs``, ``sources``, ``owners``,
``schema_version``), created and migrated by the first hub that connects, under
an advisory transaction lock so that hubs starting together do not race.

Semantics, as the SQLite store's (``store``), with these means:

* **acknowledged ⇒ committed**: writes go through the same group-commit writer
  (one transaction per turn of the event loop) on a private thread, each
  transaction on a connection from a ``psycopg_pool`` pool;
* **claims**: ``UPDATE … WHERE seq = (SELECT … FOR UPDATE SKIP LOCKED)`` —
  hubs claiming at once never wait for each other nor take the same job;
* **owners**: each hub holds a *session-level advisory lock* on its own key
  for as long as its listening connection lives, and renews a *lease*
  (``owners.heartbeat``, on the server's clock) every ``lease / 3`` seconds.
  A hub is dead when its lease has run out, or when its lock is free (the
  server closed its connection: a killed process) and its last heartbeat is
  older than ``lease / 3``.  Its running jobs are then resumed by any other
  hub with a ``job_lost`` attempt (at-least-once);
* **wake-ups**: ``NOTIFY cncf_jobs`` in the transaction that queues, cancels
  or ends a job (``q:COMPONENT``, ``c:OWNER``, ``d:JOB``), ``LISTEN`` on the
  session connection;
* **a lost connection**: writes fail with ``StoreUnavailable`` (the calls that
  needed them get ``enqueue_failed``, reason ``store_unreachable``, retryable);
  the pool and the listener reconnect with back-off, re-take the lock and
  re-register the hub.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import psycopg_pool

from cncf.jobs.protocol import ClaimRow, InsertRow, StoreUnavailable, redact
from cncf.jobs.store import (
    _Reads,
    _Writer,
    new_owner,
    op_cancel_queued,
    op_claim_next,
    op_finish,
    op_insert,
    op_recover,
    op_retry,
    op_source,
)

SCHEMA = "cncf"
CHANNEL = "cncf_jobs"
#: the advisory lock that serializes schema migrations (any constant of our own)
_MIGRATE_KEY = 0x636E6366_4A4F4253  # "cncfJOBS"
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"

#: Schema migrations: version n is reached by running _MIGRATIONS[n - 1].
_MIGRATIONS: tuple[str, ...] = (
    f"""
    CREATE TABLE IF NOT EXISTS {SCHEMA}.jobs (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        component TEXT NOT NULL,
        service TEXT NOT NULL,
        operation TEXT NOT NULL,
        target TEXT NOT NULL,
        payload TEXT NOT NULL,
        call_id TEXT NOT NULL,
        correlation_id TEXT NOT NULL,
        caller TEXT NOT NULL,
        idempotency_key TEXT UNIQUE,
        timeout DOUBLE PRECISION,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        started DOUBLE PRECISION,
        finished DOUBLE PRECISION,
        not_before DOUBLE PRECISION,
        owner TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        outcome TEXT,
        history TEXT
    );
    CREATE INDEX IF NOT EXISTS jobs_queued ON {SCHEMA}.jobs (component, seq) WHERE state = 'queued';
    CREATE INDEX IF NOT EXISTS jobs_running ON {SCHEMA}.jobs (owner) WHERE state = 'running';
    CREATE INDEX IF NOT EXISTS jobs_by_state ON {SCHEMA}.jobs (state);
    CREATE TABLE IF NOT EXISTS {SCHEMA}.sources (
        component TEXT PRIMARY KEY,
        target TEXT NOT NULL,
        overrides TEXT NOT NULL,
        updated DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE IF NOT EXISTS {SCHEMA}.owners (
        owner TEXT PRIMARY KEY,
        lock_key BIGINT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started DOUBLE PRECISION NOT NULL,
        heartbeat DOUBLE PRECISION NOT NULL,
        lease DOUBLE PRECISION NOT NULL,
        components TEXT NOT NULL DEFAULT '[]'
    );
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)

_QMARK = re.compile(r"\?")


def _pg_sql(sql: str) -> str:
    """The store's shared SQL (``?`` placeholders) for psycopg (``%s``)."""
    return _QMARK.sub("%s", sql.replace("%", "%%"))


class _Rows(list[tuple[Any, ...]]):
    """A read's rows, shaped like a DB-API cursor for ``_Reads``."""

    def fetchone(self) -> tuple[Any, ...] | None:
        return self[0] if self else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self)


class _Conn:
    """A psycopg connection in a transaction, with the shared SQL's dialect."""

    row_locks = True  # claims and recoveries lock rows (see store._skip_locked)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.notices: list[str] = []  # sent (deduplicated) with the COMMIT of the transaction

    def notify(self, payload: str) -> None:
        if payload not in self.notices:
            self.notices.append(payload)

    def execute(self, sql: str, params: Any = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(_pg_sql(sql), params)


def _unavailable(exc: BaseException, where: str) -> StoreUnavailable:
    err = StoreUnavailable(f"the database server cannot be reached: {str(exc).strip() or type(exc).__name__}")
    err.__cause__ = exc
    return err


class _PgTx:
    """The writer's transactions: one pooled connection per batch."""

    #: a failure that fails the whole batch at once (no replay one by one: the server is gone)
    fatal = (psycopg.OperationalError, psycopg_pool.PoolTimeout, StoreUnavailable)

    def __init__(self, store: PgStore) -> None:
        self.store = store
        self.conn: psycopg.Connection[Any] | None = None
        self.db: _Conn | None = None

    def begin(self) -> _Conn:
        try:
            self.conn = self.store.pool.getconn(timeout=self.store.connect_timeout)
        except psycopg_pool.PoolTimeout as exc:
            self.store.down = True
            raise _unavailable(exc, self.store.where) from None
        self.db = _Conn(self.conn)
        return self.db

    def commit(self) -> None:
        conn, self.conn = self.conn, None
        db, self.db = self.db, None
        assert conn is not None and db is not None
        try:
            if db.notices:  # one round trip: the notifications and the COMMIT, pipelined
                with conn.pipeline():
                    conn.execute("SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p", (CHANNEL, db.notices))
                    conn.commit()
            else:
                conn.commit()
        except psycopg.OperationalError as exc:
            self.store.down = True
            raise _unavailable(exc, self.store.where) from None
        finally:
            self.store.pool.putconn(conn)
        self.store.down = False  # the server answers: reads may go to it again

    def rollback(self) -> None:
        conn, self.conn = self.conn, None
        self.db = None
        if conn is None:
            return
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
        self.store.pool.putconn(conn)


class _Reader:
    """``_Reads`` on a pooled connection (autocommit: each read sees the latest commits)."""

    def __init__(self, store: PgStore) -> None:
        self.store = store

    def execute(self, sql: str, params: Any = ()) -> _Rows:
        if self.store.down:  # fail at once: a read must not stall the hub's loop
            raise StoreUnavailable("the database server cannot be reached (the hub is reconnecting)")
        try:
            with self.store.pool.connection(timeout=self.store.connect_timeout) as conn, conn.transaction():
                return _Rows(conn.execute(_pg_sql(sql), params).fetchall())
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            self.store.down = True
            raise _unavailable(exc, self.store.where) from None


# -- write operations of its own (run in the writer's transaction) -------------


def _notify(db: _Conn, payload: str) -> None:
    db.notify(payload)


def pg_insert(db: _Conn, row: InsertRow, key: str | None) -> tuple[str, bool | None]:
    r = op_insert(db, row, key)
    if r[1]:
        _notify(db, f"q:{row[1]}")
    return r


def pg_retry(db: _Conn, job_id: str, owner: str, not_before: float | None, history: str, uncount: bool) -> bool:
    done = op_retry(db, job_id, owner, not_before, history, uncount)
    if done and not_before is None:
        row = db.execute("SELECT component FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is not None:
            _notify(db, f"q:{row[0]}")
    return done


def pg_finish(db: _Conn, job_id: str, owner: str, state: str, outcome: str, history: str | None, now: float) -> bool:
    done = op_finish(db, job_id, owner, state, outcome, history, now)
    if done:
        _notify(db, f"d:{job_id}")
    return done


def pg_cancel(db: _Conn, job_id: str, outcome: str, now: float) -> str | None:
    was = op_cancel_queued(db, job_id, outcome, now)
    if was == "queued":
        _notify(db, f"d:{job_id}")
    elif was == "running":
        row = db.execute("SELECT owner FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is not None and row[0]:
            _notify(db, f"c:{row[0]}")
    return was


def pg_heartbeat(db: _Conn, owner: str, lock_key: int, lease: float, components: str) -> None:
    """Renew this hub's lease (re-register it if another hub took it for dead)."""
    cur = db.execute(f"UPDATE owners SET heartbeat={_NOW}, components=? WHERE owner=?", (components, owner))
    if cur.rowcount == 0:
        host, _, _ = socket.gethostname().partition(".")
        db.execute(
            "INSERT INTO owners (owner, lock_key, host, pid, started, heartbeat, lease, components)"
            f" VALUES (?, ?, ?, ?, {_NOW}, {_NOW}, ?, ?) ON CONFLICT (owner) DO NOTHING",
            (owner, lock_key, host, os.getpid(), lease, components),
        )


def pg_recover(db: _Conn, me: str, now: float) -> list[str]:
    """Resume the running jobs of every dead owner (module docstring), in one
    transaction; the dead owners' rows go."""
    dead = [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT j.owner FROM jobs j LEFT JOIN owners o ON o.owner = j.owner"
            " WHERE j.state = 'running' AND j.owner <> ? AND (o.owner IS NULL"
            f" OR o.heartbeat < {_NOW} - o.lease"
            f" OR (o.heartbeat < {_NOW} - o.lease / 3 AND pg_try_advisory_xact_lock(o.lock_key)))",
            (me,),
        ).fetchall()
    ]
    found: list[str] = []
    for owner in dead:
        ids = op_recover(db, owner, now)
        found += ids
        db.execute("DELETE FROM owners WHERE owner=?", (owner,))
    if found:
        for (component,) in db.execute(
            "SELECT DISTINCT component FROM jobs WHERE id = ANY(?) AND state='queued'", (found,)
        ).fetchall():
            _notify(db, f"q:{component}")
    # owners that died idle (no running job): their rows go once the lease has long run out
    db.execute(f"DELETE FROM owners WHERE owner <> ? AND heartbeat < {_NOW} - 4 * lease", (me,))
    return found


class PgStore(_Reads):
    """The job store on a PostgreSQL server (module docstring)."""

    kind = "postgresql"
    shared = True

    def __init__(self, url: str, *, lease: float = 15.0, connect_timeout: float = 3.0) -> None:
        if not lease > 0:
            raise ValueError(f"job_lease must be a number of seconds > 0, not {lease!r}")
        self.url = url
        self.where = redact(url)
        self.lease = float(lease)
        self.connect_timeout = connect_timeout
        self.owner = new_owner()
        self.lock_key = random.getrandbits(63) - (1 << 62)
        self._kwargs: dict[str, Any] = {
            "connect_timeout": max(1, int(connect_timeout)),
            "options": f"-c search_path={SCHEMA}",
            "application_name": f"cncf hub {self.owner}"[:63],
            # a partitioned server must fail a write within seconds, not hang it for the
            # kernel's TCP timeout (minutes): keepalives, and a limit on unacknowledged data
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 3,
            "tcp_user_timeout": 10_000,  # ms
        }
        self._callback: Callable[[str], None] | None = None
        self._stopping = threading.Event()
        self._session: psycopg.Connection[Any] | None = None
        self._last_scan = 0.0
        self.reconnects = 0
        self.down = False  # the server was found unreachable; the listener clears it on reconnecting
        session = self._connect_session()  # raises StoreUnavailable: the hub reports it
        try:
            self._migrate(session)
            self._register(session)
        except psycopg.Error as exc:
            session.close()
            raise _unavailable(exc, self.where) from None
        except BaseException:
            session.close()
            raise
        self._session = session
        self.pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=4,
            kwargs=self._kwargs,
            timeout=connect_timeout,
            reconnect_timeout=24 * 3600.0,
            name="cncf-jobs",
            open=False,
        )
        self.pool.open(wait=False)
        self._rdb = _Reader(self)
        self.writer = _Writer(_PgTx(self), threaded=True)
        self._listener = threading.Thread(target=self._listen_main, name="cncf-jobs-listen", daemon=True)
        self._listener.start()

    # -- connections ---------------------------------------------------------

    def _connect_session(self) -> psycopg.Connection[Any]:
        """The hub's own connection: its advisory lock and LISTEN live on it."""
        try:
            conn = psycopg.connect(self.url, autocommit=True, **self._kwargs)
        except psycopg.Error as exc:
            raise _unavailable(exc, self.where) from None
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (self.lock_key,))
            conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            conn.close()
            raise _unavailable(exc, self.where) from None
        return conn

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """Create or migrate the schema (one hub at a time)."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_KEY,))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version (version INTEGER NOT NULL)")
            row = conn.execute(f"SELECT max(version) FROM {SCHEMA}.schema_version").fetchone()
            have = int(row[0]) if row is not None and row[0] is not None else 0
            if have > SCHEMA_VERSION:
                raise ValueError(
                    f"the job store {self.where} has schema version {have}; this hub reads up to "
                    f"{SCHEMA_VERSION} (upgrade this hub)"
                )
            for version in range(have + 1, SCHEMA_VERSION + 1):
                conn.execute(_MIGRATIONS[version - 1])
                conn.execute(f"INSERT INTO {SCHEMA}.schema_version (version) VALUES (%s)", (version,))

    def _register(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            pg_heartbeat(_Conn(conn), self.owner, self.lock_key, self.lease, "[]")

    def _listen_main(self) -> None:
        """Deliver notifications; reconnect (re-taking the lock) with back-off."""
        delay = 0.1
        while not self._stopping.is_set():
            conn = self._session
            if conn is None:
                try:
                    conn = self._connect_session()
                    self._register(conn)
                except (psycopg.Error, OSError):
                    self._stopping.wait(delay)
                    delay = min(5.0, delay * 2)
                    continue
                self._session = conn
                self.reconnects += 1
                self.down = False
                delay = 0.1
                self._emit("q:*")  # notifications may have been missed: look at the whole queue
            try:
                for n in conn.notifies(timeout=0.5):
                    self._emit(n.payload)
            except (psycopg.Error, OSError):
                self.down = True
                with contextlib.suppress(psycopg.Error, OSError):
                    conn.close()
                self._session = None
                continue
            if self.down and self._probe(conn):
                self.down = False  # a write or read failed, but the server answers again

        conn = self._session
        self._session = None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                conn.close()

    @staticmethod
    def _probe(conn: psycopg.Connection[Any]) -> bool:
        try:
            conn.execute("SELECT 1")
        except (psycopg.Error, OSError):
            return False
        return True

    def _emit(self, payload: str) -> None:
        cb = self._callback
        if cb is not None:
            cb(payload)

    # -- the JobStore protocol ---------------------------------------------------

    @property
    def commits(self) -> int:
        return self.writer.commits

    async def insert(self, row: InsertRow, key: str | None) -> tuple[str, bool | None]:
        r: tuple[str, bool | None] = await self._submit(pg_insert, row, key)
        return r

    async def claim_next(self, component: str, now: float) -> ClaimRow | None:
        r: ClaimRow | None = await self._submit(op_claim_next, component, self.owner, now)
        return r

    async def finish(self, job_id: str, state: str, outcome: str, history: str | None, now: float) -> bool:
        return bool(await self._submit(pg_finish, job_id, self.owner, state, outcome, history, now))

    async def retry(self, job_id: str, not_before: float | None, history: str, uncount: bool) -> bool:
        return bool(await self._submit(pg_retry, job_id, self.owner, not_before, history, uncount))

    async def cancel_queued(self, job_id: str, outcome: str, now: float) -> str | None:
        r: str | None = await self._submit(pg_cancel, job_id, outcome, now)
        return r

    async def record_source(self, component: str, target: str, overrides: str, now: float) -> None:
        await self._submit(op_source, component, target, overrides, now)

    async def recover(self, now: float) -> list[str]:
        r: list[str] = await self._submit(pg_recover, self.owner, now)
        return r

    async def heartbeat(self, components: list[str]) -> None:
        await self._submit(pg_heartbeat, self.owner, self.lock_key, self.lease, json.dumps(sorted(components)))

    async def drain(self) -> None:
        await self.writer.drain()

    async def _submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await self.writer.submit(fn, *args)
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            self.down = True
            raise _unavailable(exc, self.where) from None

    def listen(self, callback: Callable[[str], None]) -> None:
        self._callback = callback

    def changed(self) -> bool:
        """Notifications say what changed; a full look every 2 s catches a
        job another hub put back with a back-off (no notification then)."""
        now = time.monotonic()
        if now - self._last_scan >= 2.0:
            self._last_scan = now
            return True
        return False

    def served(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for owner, comps in self._rdb.execute(
            f"SELECT owner, components FROM owners WHERE heartbeat >= {_NOW} - lease"
        ):
            try:
                v = json.loads(comps)
            except ValueError:
                v = []
            out[str(owner)] = [str(c) for c in v] if isinstance(v, list) else []
        return out

    def owners(self) -> Iterator[tuple[str, float]]:
        """(owner, seconds since its heartbeat) of every registered hub (for tests and ``cncf jobs``)."""
        for owner, age in self._rdb.execute(f"SELECT owner, {_NOW} - heartbeat FROM owners ORDER BY owner"):
            yield str(owner), float(age)

    def close(self) -> None:
        """Stop listening (the server releases the advisory lock with the
        session), deregister, close the pool."""
        self._stopping.set()
        self.writer.close()
        self._listener.join(5.0)
        with (
            contextlib.suppress(psycopg.Error, psycopg_pool.PoolTimeout, OSError),
            self.pool.connection(timeout=1.0) as conn,
        ):
            conn.execute(
                "DELETE FROM owners WHERE owner=%s AND NOT EXISTS"
                " (SELECT 1 FROM jobs WHERE owner=%s AND state='running')",
                (self.owner, self.owner),
            )
        self.pool.close(timeout=2.0)
