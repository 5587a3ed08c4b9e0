"""What the job system needs from a job store (``JobStore``), and how a store is
chosen (``open_store``).

Two implementations: :class:`cncf.jobs.store.Store` (SQLite, one file in the hub
home, the embedded default) and :class:`cncf.jobs.pgstore.PgStore` (PostgreSQL,
shared by hubs on several machines; imported only when a ``postgresql://`` store
is asked for, so a plain hub never imports psycopg).

The contract, the same for both:

* every write is ``async`` and its awaitable resolves only after the transaction
  holding it has committed (group commit: writes submitted during one turn of
  the event loop share one transaction);
* reads are synchronous and see every committed write, whichever hub made it;
* ``claim_next`` is atomic across hubs: one queued job of a component goes to
  exactly one claimer, oldest first;
* ``recover`` hands the running jobs of dead owners back to the queue with a
  ``job_lost`` attempt in their history (or quarantines them after their last
  allowed attempt) — how an owner is proven dead is the store's business;
* a store that cannot be reached raises :class:`StoreUnavailable` (an
  ``OSError``), which callers treat like a disk that refuses a write.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from cncf.jobs.model import Job

#: What a claim returns: (id, service, operation, payload, correlation_id,
#: idempotency_key, timeout, attempts, max_attempts, history, cancel_requested, target)
ClaimRow = tuple[Any, ...]
#: What ``insert`` is given (the order of store.op_insert's columns).
InsertRow = tuple[Any, ...]

DEFAULT_LEASE = 15.0


class StoreUnavailable(ConnectionError):
    """The store's server cannot be reached now (connection refused or lost);
    retryable: the hub reconnects with back-off."""


class JobStore(Protocol):
    """A durable job store (module docstring)."""

    #: "sqlite" or "postgresql"
    kind: str
    #: this hub's owner id: ``PID-TOKEN@HOST``
    owner: str
    #: where it is, for messages (a path, or a URL without its password)
    where: str
    #: is it shared by hubs that do not share this machine's disk?
    shared: bool

    @property
    def commits(self) -> int: ...

    # -- writes (acknowledged => committed) ------------------------------
    async def insert(self, row: InsertRow, key: str | None) -> tuple[str, bool | None]: ...
    async def claim_next(self, component: str, now: float) -> ClaimRow | None: ...
    async def finish(self, job_id: str, state: str, outcome: str, history: str | None, now: float) -> bool: ...
    async def retry(self, job_id: str, not_before: float | None, history: str, uncount: bool) -> bool: ...
    async def cancel_queued(self, job_id: str, outcome: str, now: float) -> str | None: ...
    async def record_source(self, component: str, target: str, overrides: str, now: float) -> None: ...
    async def recover(self, now: float) -> list[str]: ...
    async def heartbeat(self, components: list[str]) -> None: ...
    async def drain(self) -> None: ...

    # -- reads ---------------------------------------------------------------
    def get(self, job_id: str) -> Job | None: ...
    def select(
        self,
        *,
        state: str | None = None,
        component: str | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
    ) -> list[Job]: ...
    def waiting(self) -> dict[str, float]:
        """Component → the earliest ``not_before`` (0: now) of its queued jobs."""
        ...

    def cancel_requests(self) -> list[str]: ...
    def sources(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Component → (target, overrides) it was last loaded from (``cncf jobs work``)."""
        ...

    def counts(self) -> dict[str, int]: ...
    def queue_summary(self) -> dict[str, tuple[int, float]]: ...
    def served(self) -> dict[str, list[str]]:
        """Live owner → the components it has loaded (as last announced)."""
        ...

    def changed(self) -> bool:
        """Did another connection commit since the last call?  (cheap)"""
        ...

    def listen(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(payload)`` from any thread on each notification
        (``q:COMPONENT`` queued work, ``c:OWNER`` a cancel request,
        ``d:JOB`` a job ended); a store without notifications never calls it."""
        ...

    def close(self) -> None: ...


def store_url(explicit: str | None) -> str | None:
    """The store asked for: ``explicit``, else ``$CNCF_JOB_STORE``; None (or
    ``"sqlite"``) is the home's SQLite file."""
    url = explicit if explicit is not None else os.environ.get("CNCF_JOB_STORE") or None
    if url is not None and url.strip().lower() in ("", "sqlite"):
        return None
    return url


def is_postgres(url: str | None) -> bool:
    return url is not None and url.split(":", 1)[0].lower() in ("postgresql", "postgres")


def redact(url: str) -> str:
    """A URL without its password (for messages and ``cncf jobs``)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://…"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def open_store(home: Path, url: str | None, *, durability: str, lease: float = DEFAULT_LEASE) -> JobStore:
    """The store for ``url`` (None: ``home/jobs.sqlite3``).  Raises what opening
    raises (``sqlite3.Error``, ``OSError`` — ``StoreUnavailable`` included —,
    ``ValueError`` for a URL or setting it does not understand)."""
    if durability not in ("process", "power"):
        raise ValueError(f"durability must be one of process, power, not {durability!r}")
    if url is None:
        from cncf.jobs.store import Store

        return Store(home, durability=durability)
    if not is_postgres(url):
        raise ValueError(
            f"job_store {redact(url)!r} is not understood: use 'sqlite' (the home's file) or a postgresql:// URL"
        )
    try:
        from cncf.jobs.pgstore import PgStore
    except ImportError as exc:
        raise ValueError(
            f"a postgresql:// job_store needs psycopg 3 and psycopg_pool: pip install 'cncf[postgres]' ({exc})"
        ) from None
    return PgStore(url, lease=lease)
