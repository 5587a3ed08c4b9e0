"""Queue policy: durable enqueue rate and drain rate of trivial jobs.

Each figure is a rate (per second) printed against a floor measured in the
same run, on the same disk, with the same durability settings:

* enqueue rates against raw SQLite inserts (one ``INSERT`` + ``COMMIT`` per
  row, WAL, the same ``synchronous`` level) — the cost of one durable write
  with nothing around it;
* drain and end-to-end rates against the direct (non-queued) call path:
  ``AsyncHub.call`` of a serialize operation of the same inline component.

Durability "process" is WAL + synchronous=NORMAL (acknowledged jobs survive
kill -9 of the hub); "power" is synchronous=FULL (they also survive power
loss), where each commit is an fsync and group commit carries the rate.

PostgreSQL (``job_store = "postgresql://…"``; a throwaway server started by
``tests/jobs/pg.py`` when Debian's ``postgresql`` and ``cncf[postgres]`` are
installed, else those rows are left out): enqueue and drain rates with 1 and
8 callers (8 concurrent submitters; 8 hubs sharing the queue for the drain),
against the same rates on SQLite and against the floor on the same server — a
bare loop of ``INSERT`` + ``COMMIT`` for enqueue, and of ``UPDATE … WHERE seq =
(SELECT … FOR UPDATE SKIP LOCKED) RETURNING`` + ``UPDATE … SET state='succeeded'``
for drain, on 1 and on 8 connections (threads).

Run standalone: ``python benchmarks/bench_jobs.py``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import cncf
from cncf.jobs import JobState

HERE = Path(__file__).resolve().parent
WORKER = HERE.parent / "tests" / "jobs" / "fixtures" / "worker"
N = 5000
Row = tuple[str, float, float, str]
SYNC = {"process": "NORMAL", "power": "FULL"}


def raw_inserts(folder: Path, durability: str, n: int) -> float:
    """Rows/s: one INSERT + COMMIT each, WAL, same synchronous level."""
    path = folder / f"raw-{durability}.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={SYNC[durability]}")
    db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, payload TEXT, state TEXT)")
    payload = '{"args":[1,2],"kwargs":{}}'
    t0 = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (id, payload, state) VALUES (?, ?, 'queued')", (f"j{i}", payload))
        db.execute("COMMIT")
    rate = n / (time.perf_counter() - t0)
    db.close()
    return rate


async def _open(home: Path, durability: str) -> cncf.AsyncHub:
    os.environ["CNCF_JOB_DURABILITY"] = durability  # read when the hub opens its job store
    hub = cncf.AsyncHub(home=home)
    handle = await hub.load(WORKER)
    assert handle.state == "ready", handle.observation
    return hub


async def direct_rate(home: Path, n: int) -> float:
    async with cncf.AsyncHub(home=home) as hub:
        await hub.load(WORKER)
        for i in range(n // 10):
            await hub.call("worker.direct", [i])
        t0 = time.perf_counter()
        for i in range(n):
            await hub.call("worker.direct", [i])
        return n / (time.perf_counter() - t0)


async def enqueue_rates(home: Path, durability: str, n: int) -> tuple[float, float]:
    """(1 caller, 100 callers) enqueues/s, with the queue paused so that nothing
    drains meanwhile: the cost of acceptance alone."""
    async with await _open(home, durability) as hub:
        hub._jobs.pause()
        seq_n = n if durability == "process" else n // 5
        t0 = time.perf_counter()
        for i in range(seq_n):
            out = await hub.call("worker.add", [i, 1])
            assert out.job_id, out.observation
        seq = seq_n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for start in range(0, n, 100):  # 100 callers at a time
            outs = await asyncio.gather(*(hub.call("worker.add", [i, 1]) for i in range(start, start + 100)))
            assert all(o.job_id for o in outs)
        conc = n / (time.perf_counter() - t0)
        return seq, conc


async def drain_rate(home: Path, durability: str, n: int) -> float:
    """Jobs/s from a full queue of n trivial jobs to the last one stored as succeeded."""
    async with await _open(home, durability) as hub:
        hub._jobs.pause()
        last = None
        for start in range(0, n, 200):
            outs = await asyncio.gather(*(hub.call("worker.add", [i, 1]) for i in range(start, start + 200)))
            last = outs[-1].job_id
        t0 = time.perf_counter()
        hub._jobs.resume()
        final = await hub.wait(last, 120)
        rate = n / (time.perf_counter() - t0)
        assert final.ok, final.observation
        assert len(await hub.jobs(state=JobState.SUCCEEDED, limit=None)) == n
        return rate


async def end_to_end_async(home: Path, durability: str, n: int) -> float:
    """Jobs/s: 100 callers submit, workers drain at the same time, until all are stored."""
    async with await _open(home, durability) as hub:
        t0 = time.perf_counter()
        ids: list[str] = []
        for start in range(0, n, 100):
            outs = await asyncio.gather(*(hub.call("worker.add", [i, 1]) for i in range(start, start + 100)))
            ids += [o.job_id for o in outs]
        final = await hub.wait(ids[-1], 120)  # one component: jobs finish in order
        rate = n / (time.perf_counter() - t0)
        assert final.ok, final.observation
        assert len(await hub.jobs(state=JobState.SUCCEEDED, limit=None)) == n
        return rate


def end_to_end_sync(home: Path, n: int) -> tuple[float, float]:
    """(enqueue/s, jobs/s) through the sync Hub: one caller submits one by one;
    the pump drains between calls; then wait for the last."""
    os.environ["CNCF_JOB_DURABILITY"] = "process"
    with cncf.Hub(home=home) as hub:
        hub.load(WORKER)
        t0 = time.perf_counter()
        ids = [hub.call("worker.add", [i, 1]).job_id for i in range(n)]
        t1 = time.perf_counter()
        for j in ids[-1:]:
            assert hub.wait(j, 120).ok
        t2 = time.perf_counter()
        assert all(j.state is JobState.SUCCEEDED for j in hub.jobs(limit=None))
        return n / (t1 - t0), n / (t2 - t0)


# -- PostgreSQL against SQLite and against a bare loop on the same server -----------

PG_N = 2000
CALLERS = (1, 8)


def _bare_enqueue(url: str, n: int, threads: int) -> float:
    """Rows/s: INSERT + COMMIT each, ``threads`` connections at once."""
    import threading

    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "DROP TABLE IF EXISTS bare; CREATE TABLE bare (seq BIGSERIAL PRIMARY KEY, id TEXT UNIQUE,"
            " payload TEXT, state TEXT, owner TEXT)"
        )
        c.execute("CREATE INDEX ON bare (seq) WHERE state = 'queued'")
    payload = '{"args":[1,2],"kwargs":{}}'

    def work(k: int) -> None:
        with psycopg.connect(url) as conn:
            for i in range(k, n, threads):
                conn.execute("INSERT INTO bare (id, payload, state) VALUES (%s, %s, 'queued')", (f"j{i}", payload))
                conn.commit()

    t0 = time.perf_counter()
    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return n / (time.perf_counter() - t0)


def _bare_drain(url: str, n: int, threads: int) -> float:
    """Jobs/s: claim with SKIP LOCKED + commit, mark done + commit, ``threads`` connections."""
    import threading

    import psycopg

    def work() -> None:
        with psycopg.connect(url) as conn:
            while True:
                row = conn.execute(
                    "UPDATE bare SET state='running', owner='x' WHERE seq = (SELECT seq FROM bare WHERE"
                    " state='queued' ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING seq, payload"
                ).fetchone()
                conn.commit()
                if row is None:
                    return
                conn.execute("UPDATE bare SET state='succeeded', owner=NULL WHERE seq=%s", (row[0],))
                conn.commit()

    t0 = time.perf_counter()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return n / (time.perf_counter() - t0)


async def _store_rates(homes: list[Path], store: str | None, n: int, callers: int) -> tuple[float, float]:
    """(enqueue/s with ``callers`` concurrent submitters, drain/s by ``callers`` hubs) on one store."""
    hubs = [cncf.AsyncHub(home=h, job_store=store) for h in homes[:callers]]
    try:
        for h in hubs:
            assert (await h.load(WORKER)).state == "ready"
            h._jobs.pause()
        first = hubs[0]
        ids: list[str] = []
        sem = asyncio.Semaphore(callers)

        async def one(i: int) -> str:
            async with sem:
                out = await first.call("worker.add", [i, 1])
                assert out.job_id, out.observation
                return out.job_id

        t0 = time.perf_counter()
        ids = list(await asyncio.gather(*(one(i) for i in range(n))))
        enq = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for h in hubs:
            h._jobs.resume()
        for j in ids[-50:]:
            assert (await first.wait(j, 300)).ok
        while await first.jobs(state="queued", limit=1) or await first.jobs(state="running", limit=1):
            await asyncio.sleep(0.01)
        drain = n / (time.perf_counter() - t0)
        return enq, drain
    finally:
        for h in hubs:
            await h.close()


def _postgres_rows(base: Path) -> list[Row]:
    sys.path.insert(0, str(HERE.parent))
    try:
        import psycopg  # noqa: F401

        from tests.jobs.pg import PgServer

        server = PgServer()
    except (ImportError, FileNotFoundError, RuntimeError, OSError):
        return []
    rows: list[Row] = []
    try:
        os.environ["CNCF_JOB_DURABILITY"] = "process"
        for callers in CALLERS:
            url = server.database()
            bare_enq = _bare_enqueue(url, PG_N, callers)
            bare_drain = _bare_drain(url, PG_N, callers)
            homes = [base / f"pg{callers}-{k}" for k in range(callers)]
            pg_enq, pg_drain = asyncio.run(_store_rates(homes, url, PG_N, callers))
            sq_home = [base / f"sq{callers}"] * callers  # SQLite: hubs share one home
            sq_enq, sq_drain = asyncio.run(_store_rates(sq_home, "sqlite", PG_N, callers))
            rows.append(
                (f"jobs postgresql: enqueue, {callers} caller(s) (vs bare INSERT loop)", pg_enq, bare_enq, "/s")
            )
            rows.append((f"jobs sqlite: enqueue, {callers} caller(s) (vs PostgreSQL)", sq_enq, pg_enq, "/s"))
            rows.append(
                (f"jobs postgresql: drain, {callers} hub(s) (vs bare SKIP LOCKED loop)", pg_drain, bare_drain, "/s")
            )
            rows.append((f"jobs sqlite: drain, {callers} hub(s) on one home (vs PostgreSQL)", sq_drain, pg_drain, "/s"))
    finally:
        server.close()
    return rows


def main() -> list[Row]:
    rows: list[Row] = []
    saved = os.environ.get("CNCF_JOB_DURABILITY")
    try:
        rows = _measure()
    finally:
        if saved is None:
            os.environ.pop("CNCF_JOB_DURABILITY", None)
        else:
            os.environ["CNCF_JOB_DURABILITY"] = saved
    return rows


def _measure() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("CNCF_BENCH_DIR")) as tmp:
        base = Path(tmp)
        direct = asyncio.run(direct_rate(base / "direct", N))
        for durability in ("process", "power"):
            raw = raw_inserts(base, durability, N if durability == "process" else N // 5)
            seq, conc = asyncio.run(enqueue_rates(base / f"enq-{durability}", durability, N))
            rows.append((f"jobs {durability}: enqueue, 1 caller (vs raw insert)", seq, raw, "/s"))
            rows.append((f"jobs {durability}: enqueue, 100 callers (vs raw insert)", conc, raw, "/s"))
            drain = asyncio.run(drain_rate(base / f"drain-{durability}", durability, N))
            rows.append((f"jobs {durability}: drain trivial jobs (vs direct call)", drain, direct, "/s"))
            e2e = asyncio.run(end_to_end_async(base / f"e2e-{durability}", durability, N))
            rows.append((f"jobs {durability}: submit+drain, AsyncHub (vs direct call)", e2e, direct, "/s"))
        enq, e2e = end_to_end_sync(base / "sync", N)
        raw = rows[0][2]
        rows.append(("jobs process: enqueue, sync Hub 1 caller (vs raw insert)", enq, raw, "/s"))
        rows.append(("jobs process: submit+drain, sync Hub (vs direct call)", e2e, direct, "/s"))
        rows += _postgres_rows(base)
    return rows


if __name__ == "__main__":
    for name, value, floor, unit in main():
        print(
            f"{name:60s} {value:10,.0f} {unit}  floor {floor:10,.0f} {unit}  ratio {value / floor:6.2f}x",
            file=sys.stdout,
        )
