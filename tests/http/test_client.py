"""``cncf.connect``: Outcomes and Observations identical to the local hub's.

The same components are loaded in a local ``cncf.Hub`` and in a served hub;
every call below is made through both, and the two Outcomes are compared
field by field (a call id, a pid or a duration differs from run to run:
digits are masked before comparing text).  Every Observation code a call can
produce over HTTP with these components is covered; the list is checked.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import cncf
from cncf.client import _outcome, connect_async
from tests.http.conftest import FIXTURES, SRC, Served

INLINE_COUNTER = FIXTURES.parent.parent / "fixtures" / "inline" / "counter"
FAULTY = FIXTURES.parent.parent / "fixtures" / "python" / "faulty"

# (selector, args, timeout) -> the code both hubs must return (None: a value)
CASES: list[tuple[str, Any, float | None, str | None]] = [
    ("svc.add", [1, 2], None, None),
    ("svc.default.add", {"a": 1, "b": 2}, None, None),
    ("svc.echo", None, None, None),
    ("svc.talk", ["hi"], None, None),
    ("counter.increment", {"by": 2}, None, None),
    ("svc.fail", ["no"], None, "raised"),
    ("svc.add", {"nope": 1}, None, "invalid_arguments"),
    ("svc.add", "text", None, "invalid_arguments"),
    ("svc.unencodable", None, None, "result_not_serialisable"),
    ("svc.incremnt", None, None, "unknown_operation"),
    ("nobody.echo", None, None, "unknown_component"),
    ("not-a-selector", None, None, "unknown_operation"),
    ("svc.echo", None, -1, "invalid_policy"),
    ("counter.refuse", ["x"], None, "operation_failed"),
    ("counter.exit", None, None, "exit_requested"),
    ("counter.recurse", None, None, "stack_overflow"),
    ("svc.slow", [3], None, "timed_out"),
    ("svc.hold", [2], 0.3, "timed_out"),
    ("svc.crash", None, None, "worker_crashed"),
    ("svc.pid", None, None, None),  # restarted after the crash
    ("counter.memory", None, None, "out_of_memory"),
    ("broken.ping", None, None, "constructor_failed"),
    ("fragile.crash", None, None, "worker_crashed"),
    ("fragile.echo", None, None, "component_unavailable"),
]


def _mask(v: Any) -> Any:
    text = json.dumps(v, sort_keys=True, default=str)
    text = re.sub(r"c-[0-9a-f]+-\d+", "CALL", text)
    return re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", text)


def _fields(outcome: cncf.Outcome) -> dict[str, Any]:
    obs = outcome.observation
    d: dict[str, Any] = {"ok": outcome.ok, "queued": outcome.queued, "stdout": outcome.stdout, "stderr": outcome.stderr}
    if obs is None:
        d["value"] = outcome.value if not isinstance(outcome.value, int) else "int"
        return d
    d.update(
        code=obs.code,
        stage=obs.stage,
        category=obs.category,
        symptom=obs.symptom,
        cause_kind=obs.cause_kind,
        retryable=obs.retryable,
        target=obs.target,
        message=_mask(obs.message),
        attributes=_mask(dict(obs.attributes)),
        cause_type=obs.cause.type if obs.cause else None,
        cause_message=_mask(obs.cause.message) if obs.cause else None,
        has_call_id=bool(obs.call_id),
        call_id_matches=obs.call_id == outcome.call_id,
    )
    return d


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with cncf.Hub(home=tmp_path_factory.mktemp("local") / "home") as hub:
        for target in (FIXTURES / "svc", FIXTURES / "jobs", INLINE_COUNTER):
            assert hub.load(target).state == "ready"
        assert hub.load(FIXTURES / "svc", name="fragile", restart="never").state == "ready"
        assert hub.load(FAULTY, name="broken", env={"FAULTY_AT": "constructor"}).state == "failed"
        yield hub


def test_outcomes_are_identical_field_by_field(local: cncf.Hub, hub_server: Served) -> None:
    seen = set()
    with cncf.connect(hub_server.url) as remote:
        for selector, args, timeout, code in CASES:
            a = local.call(selector, args, timeout=timeout)
            b = remote.call(selector, args, timeout=timeout)
            got = None if a.ok else a.observation.code.value  # type: ignore[union-attr]
            assert got == code, (selector, a)
            assert _fields(a) == _fields(b), selector
            seen.add(code)
            if a.observation is not None:
                assert type(a.observation) is type(b.observation)
    produced = {c for c in seen if c}
    assert produced == {c for _, _, _, c in CASES if c}


def _concurrently(hub, selector: str, args: Any, then) -> tuple[cncf.Outcome, Any]:  # type: ignore[no-untyped-def]
    """Start ``selector`` in a thread, run ``then()`` while it runs, return both results."""
    import concurrent.futures
    import time

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(hub.call, selector, args, call_id=f"cid-{selector}-{id(hub)}")
        time.sleep(0.4)
        second = then(f"cid-{selector}-{id(hub)}")
        return first.result(timeout=30), second


def test_concurrent_codes_are_identical(local: cncf.Hub, hub_server: Served) -> None:
    with cncf.connect(hub_server.url) as remote:
        results = {}
        for name, hub in (("local", local), ("remote", remote)):
            held, waited = _concurrently(hub, "svc.hold", [1.5], lambda _cid, h=hub: h.call("svc.hold", [0.1]))
            stopped, cancelled = _concurrently(hub, "svc.hold", [3], lambda cid, h=hub: h.cancel(cid))
            assert held.ok and cancelled is True
            results[name] = (waited, stopped)
            assert waited.observation is not None and waited.observation.code.value == "wait_timeout"
            assert stopped.observation is not None and stopped.observation.code.value == "cancelled"
        for a, b in zip(results["local"], results["remote"], strict=True):
            assert _fields(a) == _fields(b)


def test_jobs_through_the_client_are_the_local_hubs(local: cncf.Hub, hub_server: Served) -> None:
    with cncf.connect(hub_server.url) as remote:
        for hub in (local, remote):
            q = hub.call("jobs.add", [2, 3])
            assert q.ok and q.queued and q.job_id
            final = hub.wait(q.job_id, timeout=30)
            assert final.ok and final.value == 5
            job = hub.job(q.job_id)
            assert (job.state.value, job.target, job.attempts) == ("succeeded", "jobs.default.add", 1)
            assert job.outcome is not None and job.outcome.value == 5
            slow = hub.call("jobs.sleep", [2])
            waited = hub.wait(slow.job_id, timeout=0.3)  # type: ignore[arg-type]
            assert waited.observation is not None
            assert (waited.observation.code.value, waited.observation.stage.value) == ("wait_timeout", "wait")
            assert waited.observation.attributes["job_state"] in ("queued", "running")
            assert hub.cancel_job(slow.job_id) is True  # type: ignore[arg-type]
            gone = hub.wait("j-nope", timeout=1)
            assert gone.observation is not None and gone.observation.code.value == "job_not_found"
            with pytest.raises(cncf.ObservationError) as err:
                hub.job("j-nope")
            assert err.value.observation.code.value == "job_not_found"
            assert hub.cancel_job("j-nope") is False
            assert any(j.id == q.job_id for j in hub.jobs(component="jobs"))
        names_local = sorted(h.name for h in local.components())
        names_remote = sorted(h.name for h in remote.components())
        assert names_local == names_remote
        svc = next(c for c in remote.components() if c.name == "svc")
        assert svc.form == "python" and "default.add" in svc.operations
        assert remote.inspect("svc")["services"].keys() == local.inspect("svc")["services"].keys()
        with pytest.raises(KeyError):
            remote.inspect("nobody")


def test_the_client_rebuilds_the_servers_observation_exactly(hub_server: Served) -> None:
    r = httpx.post(hub_server.url + "/rest/v1/svc/fail", json=["exact"])
    outcome = _outcome(r.status_code, r.headers, r.content, hub_server.url, "svc.fail")
    assert outcome.observation is not None
    assert outcome.observation.to_dict() == r.json()["observation"]
    assert outcome.call_id == r.headers["x-cncf-call-id"]


def test_async_client(hub_server: Served) -> None:
    async def main() -> None:
        async with connect_async(hub_server.url) as hub:
            outs = await asyncio.gather(*(hub.call("svc.add", [i, 1]) for i in range(5)))
            assert [o.value for o in outs] == [1, 2, 3, 4, 5]
            bad = await hub.call("svc.fail")
            assert bad.observation is not None and bad.observation.code.value == "raised"
            q = await hub.call("jobs.add", [1, 1])
            assert (await hub.wait(q.job_id, timeout=30)).value == 2  # type: ignore[arg-type]
            assert [c.name for c in await hub.components()]

    asyncio.run(main())


def test_an_unreachable_hub_is_an_observation(tmp_path: Path) -> None:
    with cncf.connect("http://127.0.0.1:9") as remote:
        out = remote.call("svc.echo", [1])
    assert out.observation is not None
    assert (out.observation.code.value, out.observation.stage.value) == ("hub_unreachable", "reception")
    assert out.observation.retryable is True


def test_cli_call_hub(hub_server: Served) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cncf", "call", "--hub", hub_server.url, *args],
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
            timeout=60,
        )

    r = cli("svc.add", "2", "3")
    assert (r.returncode, r.stdout.strip()) == (0, "5")
    r = cli("svc.add", "a=2", "b=5", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"ok": True, "value": 7}
    r = cli("svc.fail", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["observation"]["code"] == "raised"
    r = cli("svc.default.echo")
    assert r.returncode == 0 and r.stdout.strip() == "null"


def test_connect_to_a_hub_on_a_unix_socket(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`cncf serve --unix PATH` prints `unix:PATH`; `cncf.connect` takes that (and
    `unix:///PATH`, `http+unix://%2FPATH`), the async client and `cncf call --hub` too."""
    sock = tmp_path / "hub.sock"
    s: Served = serve(FIXTURES / "hub.toml", "--unix", str(sock))
    assert s.url == f"unix:{sock}"
    quoted = str(sock).replace("/", "%2F")
    for url in (s.url, f"unix://{sock}", f"http+unix://{quoted}"):
        with cncf.connect(url) as remote:
            assert remote.call("svc.add", [2, 3]).value == 5, url
            bad = remote.call("svc.fail")
            assert bad.observation is not None and bad.observation.code.value == "raised"
            assert "svc" in [c.name for c in remote.components()]
            q = remote.call("jobs.add", [1, 1])
            assert q.job_id is not None and remote.wait(q.job_id, timeout=30).value == 2
    with cncf.connect(s.url, token=s.token) as admin:  # the admin routes (the token) over the socket too
        assert admin.unload("svc") is True
        assert "svc" not in [c.name for c in admin.components()]

    async def main() -> None:
        async with connect_async(s.url) as hub:
            assert (await hub.call("jobs.add", [4, 5])).job_id is not None

    asyncio.run(main())
    r = subprocess.run(
        [sys.executable, "-m", "cncf", "call", "--hub", s.url, "jobs.add", "2", "3", "--json"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True


# httpcore 1.0's synchronous Unix-socket connect leaves its socket to the garbage
# collector when connect(2) fails (a ResourceWarning, not a leak: it is closed then)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_no_hub_on_the_socket_is_an_observation(tmp_path: Path) -> None:
    for url in (f"unix:{tmp_path / 'none.sock'}", f"unix://{tmp_path / 'none.sock'}"):
        with cncf.connect(url) as gone:
            out = gone.call("svc.add", [1, 1])
        assert out.observation is not None
        assert (out.observation.code.value, out.observation.stage.value) == ("hub_unreachable", "reception")
