"""The ActionEngine with real (inline) components: state, policies, timeouts,
cancellation, and every failure path of the core."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import cncf
from cncf import Code, Stage
from tests.conftest import INLINE


def run(coro):
    return asyncio.run(coro)


def test_state_persists_across_calls(hub, counter):
    assert hub.call("counter.increment", {"by": 2}).value == 2
    assert hub.call("counter.increment", [3]).value == 5
    assert hub.call("counter.default.get").value == 5
    assert hub.call("COUNTER.Get").value == 5


def test_serialize_never_overlaps_and_keeps_arrival_order(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter")
            outcomes = await asyncio.gather(*(hub.call("counter.probe", {"tag": i, "delay": 0.005}) for i in range(20)))
            assert [o.value for o in outcomes] == list(range(20))
            stats = (await hub.call("counter.stats")).value
            assert stats["peak"] == 1
            enters = [tag for what, tag in stats["log"] if what == "enter"]
            assert enters == list(range(20))
            log = stats["log"]
            assert all(log[i][0] == "enter" and log[i + 1] == ["exit", log[i][1]] for i in range(0, len(log), 2))

    run(main())


def test_concurrent_overlaps_up_to_its_limit_and_not_beyond(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter", policy="concurrent", max_concurrency=3)
            outcomes = await asyncio.gather(*(hub.call("counter.probe", {"tag": i, "delay": 0.05}) for i in range(9)))
            assert all(o.ok for o in outcomes)
            assert (await hub.call("counter.stats")).value["peak"] == 3

    run(main())


def test_policy_levels_operation_beats_service_beats_component(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            h = await hub.load(INLINE / "policies")
            assert h.state == "ready", h.observation
            svc = h.describe()["services"]
            assert svc["reading"]["read"]["policy"]["policy"] == "concurrent"
            assert svc["reading"]["read"]["policy"]["max_concurrency"] == 3
            assert svc["reading"]["scan"]["policy"]["policy"] == "serialize"  # operation level
            assert svc["writing"]["write"]["policy"]["policy"] == "serialize"  # component level
            assert svc["writing"]["audit"]["policy"] == {
                **svc["writing"]["audit"]["policy"],
                "policy": "concurrent",
                "max_concurrency": 2,
                "run_timeout": 1.5,
            }
            assert svc["writing"]["write"]["policy"]["run_timeout"] == 30
            for op in ("read", "scan", "write", "audit"):
                outs = await asyncio.gather(*(hub.call(f"store.{op}") for _ in range(6)))
                assert all(o.ok for o in outs), outs
            peaks = (await hub.call("store.peaks")).value
            assert peaks == {"read": 3, "scan": 1, "write": 1, "audit": 2}

    run(main())


def test_wait_timeout_is_a_wait_observation_and_the_next_call_succeeds(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter", wait_timeout=0.1)
            slow = asyncio.ensure_future(hub.call("counter.probe", {"tag": "slow", "delay": 0.5}))
            await asyncio.sleep(0.02)
            waited = await hub.call("counter.get")
            assert waited.observation.code is Code.WAIT_TIMEOUT
            assert waited.observation.stage.value == "wait"
            assert (await slow).value == "slow"
            assert (await hub.call("counter.increment")).value == 1

    run(main())


def test_overall_timeout_while_waiting_is_a_wait_timeout(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter")
            slow = asyncio.ensure_future(hub.call("counter.probe", {"tag": "s", "delay": 0.4}))
            await asyncio.sleep(0.02)
            out = await hub.call("counter.get", timeout=0.1)
            assert out.observation.code is Code.WAIT_TIMEOUT
            assert out.observation.attributes["limit"] == "deadline"
            await slow

    run(main())


def test_run_timeout_is_an_execute_observation_and_the_next_call_succeeds(hub, counter):
    out = hub.call("counter.patient", {"seconds": 5}, timeout=0.2)
    assert out.observation.code is Code.TIMED_OUT and out.observation.stage.value == "execute"
    assert out.observation.attributes["tier"] == "cooperative"
    assert hub.call("counter.increment").value == 1


def test_declared_run_timeout_applies(home):
    with cncf.Hub(home=home) as hub:
        hub.load(INLINE / "counter", run_timeout=0.1)
        t0 = time.monotonic()
        out = hub.call("counter.patient", {"seconds": 5})
        assert out.observation.code is Code.TIMED_OUT
        assert time.monotonic() - t0 < 2


def test_blocking_inline_call_is_released_after_the_grace_and_its_instance_replaced(hub):
    counter = hub.load(INLINE / "counter", cancel_grace=0.2)
    t0 = time.monotonic()
    out = hub.call("counter.block", {"seconds": 3}, timeout=0.1)
    assert time.monotonic() - t0 < 0.1 + 0.25  # at the deadline, not after the grace nor the sleep
    # The caller is answered with the tier reached by then; the escalation goes on.
    assert out.observation.code is Code.TIMED_OUT and out.observation.attributes["tier"] == "cooperative"
    assert out.observation.attributes["started"] and not out.observation.attributes["completed"]
    # The next call waits for the escalation: the abandoned thread still holds the
    # (serialize) instance, so it is served by a fresh one.
    assert hub.call("counter.get").value == 0
    assert counter.restarts == 1
    assert hub.inspect("counter")["cancellations"] == {"abandoned": 1}


def test_fast_inline_operation_is_promoted_to_the_loop_and_a_slow_one_demoted(hub, counter):
    from cncf.boundaries import inline

    for _ in range(inline.PROMOTE + 2):
        assert hub.call("counter.get").ok
    fast = counter._component.instance.fast
    assert fast["get"] >= inline.PROMOTE  # now runs on the loop, no thread hop
    for _ in range(inline.PROMOTE + 2):
        assert hub.call("counter.block", {"seconds": 0.002}).ok
    assert fast["block"] < inline.PROMOTE  # never fast enough to leave its thread


def test_cancel_a_waiting_call(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter")
            first = asyncio.ensure_future(hub.call("counter.probe", {"tag": 1, "delay": 0.3}))
            await asyncio.sleep(0.02)
            second = asyncio.ensure_future(hub.call("counter.increment", call_id="waiting-1"))
            await asyncio.sleep(0.02)
            assert hub.cancel("waiting-1")
            out = await second
            assert out.observation.code is Code.CANCELLED_WAITING and out.observation.stage.value == "wait"
            assert (await first).ok
            assert (await hub.call("counter.get")).value == 0  # the cancelled call never ran

    run(main())


def test_cancel_a_running_call_cooperatively(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter")
            running = asyncio.ensure_future(hub.call("counter.patient", {"seconds": 5}, call_id="run-1"))
            await asyncio.sleep(0.05)
            assert hub.cancel("run-1")
            out = await running
            assert out.observation.code is Code.CANCELLED
            assert out.observation.attributes["tier"] == "cooperative"
            assert not hub.cancel("run-1")  # already over

    run(main())


def test_cancel_from_another_thread_with_the_sync_hub(hub, counter):
    timer = threading.Timer(0.1, hub.cancel, args=("t-1",))
    timer.start()
    out = hub.call("counter.patient", {"seconds": 5}, call_id="t-1")
    timer.join()
    assert out.observation.code is Code.CANCELLED


@pytest.mark.parametrize(
    ("operation", "args", "code", "stage"),
    [
        ("fail", None, Code.RAISED, "execute"),
        ("exit", None, Code.EXIT_REQUESTED, "execute"),
        ("interrupt", None, Code.EXIT_REQUESTED, "execute"),
        ("recurse", None, Code.STACK_OVERFLOW, "execute"),
        ("memory", None, Code.OUT_OF_MEMORY, "execute"),
        ("refuse", {"who": "ada"}, Code.OPERATION_FAILED, "execute"),
        ("unencodable", None, Code.RESULT_NOT_SERIALISABLE, "execute"),
        ("nan", None, Code.RESULT_NOT_SERIALISABLE, "execute"),
        ("increment", {"by": 1, "extra": 2}, Code.INVALID_ARGUMENTS, "dispatch"),
        ("nothing_here", None, Code.UNKNOWN_OPERATION, "dispatch"),
    ],
)
def test_failures_become_observations_and_the_component_keeps_serving(hub, counter, operation, args, code, stage):
    out = hub.call(f"counter.{operation}", args)
    assert not out.ok and out.observation.code is code and out.observation.stage.value == stage
    assert out.observation.call_id == out.call_id
    assert hub.call("counter.increment").value == 1


def test_exception_cause_chain_travels(hub, counter):
    obs = hub.call("counter.chained").observation
    assert obs.cause.type == "RuntimeError" and obs.cause.cause.type == "KeyError"
    assert "chained" in obs.cause.stack


def test_collaborator_failure_keeps_its_code_and_attributes(hub, counter):
    obs = hub.call("counter.refuse", {"who": "ada"}).observation
    assert obs.attributes["component_code"] == "PERSON_NOT_FOUND" and obs.attributes["who"] == "ada"


def test_unknown_operation_lists_candidates(hub, counter):
    obs = hub.call("counter.incremnt").observation
    assert "counter.default.increment" in obs.attributes["candidates"]


def test_unknown_component_and_bad_selector_and_bad_timeout(hub, counter):
    assert hub.call("nobody.get").observation.code is Code.UNKNOWN_COMPONENT
    assert hub.call("counter").observation.code is Code.UNKNOWN_OPERATION
    bad = hub.call("counter.get", timeout=-1).observation
    assert bad.code is Code.INVALID_POLICY and bad.stage.value == "dispatch"
    assert hub.call("counter.get", 42).observation.code is Code.INVALID_ARGUMENTS


@pytest.mark.parametrize(
    ("fixture", "code", "stage"),
    [
        ("broken_import", Code.IMPORT_FAILED, "load"),
        ("broken_ctor", Code.CONSTRUCTOR_FAILED, "instantiate"),
        ("missing_dep", Code.DEPENDENCY_UNRESOLVED, "load"),
    ],
)
def test_load_failures_give_a_failed_handle_and_every_call_returns_it(hub, fixture, code, stage):
    h = hub.load(INLINE / fixture)
    assert h.state == "failed"
    assert h.observation.code is code and h.observation.stage.value == stage
    out = hub.call(f"{h.name}.ping")
    assert out.observation.code is code
    h2 = hub.reload(h.name)  # retried on reload, fails the same way
    assert h2.state == "failed" and h2.observation.code is code


def test_entry_not_found_and_conflict(hub, counter):
    h = hub.load(INLINE / "counter", name="other", entry="inline_counter:Nope")
    assert h.observation.code is Code.ENTRY_NOT_FOUND
    dup = hub.load(INLINE / "counter")
    assert dup.state == "failed" and dup.observation.code is Code.COMPONENT_CONFLICT
    assert hub.call("counter.increment").value == 1  # the first one is untouched


def test_one_components_failure_does_not_disturb_another(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter")
            await hub.load(INLINE / "counter", name="twin")
            outs = await asyncio.gather(
                hub.call("counter.patient", {"seconds": 5}, timeout=0.2),
                *(hub.call("twin.increment") for _ in range(10)),
            )
            assert outs[0].observation.code is Code.TIMED_OUT
            assert [o.value for o in outs[1:]] == list(range(1, 11))

    run(main())


def test_unload_and_calls_after_close(home):
    hub = cncf.Hub(home=home)
    hub.load(INLINE / "counter")
    assert hub.unload("counter")
    assert hub.call("counter.get").observation.code is Code.UNKNOWN_COMPONENT
    hub.load(INLINE / "counter")
    hub.close()
    assert hub.call("counter.get").observation.code is Code.HUB_CLOSED


def test_exactly_one_outcome_even_when_the_boundary_itself_breaks(hub, counter):
    boundary = counter._component.boundary

    async def broken_invoke(*a, **k):
        raise ZeroDivisionError("a defect in a boundary")

    boundary.invoke = broken_invoke
    out = hub.call("counter.get")
    assert out.observation.code is Code.INTERNAL_ERROR and out.observation.cause.type == "ZeroDivisionError"


def test_every_call_gets_exactly_one_outcome_under_load(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter", wait_timeout=0.05)
            ops = ["increment", "fail", "probe", "nope", "patient"]
            calls = []
            for i in range(60):
                op = ops[i % len(ops)]
                args = {"tag": i, "delay": 0.001} if op == "probe" else ({"seconds": 0.02} if op == "patient" else None)
                calls.append(hub.call(f"counter.{op}", args, timeout=0.5))
            outs = await asyncio.gather(*calls)
            assert len(outs) == 60 and len({o.call_id for o in outs}) == 60
            assert all(isinstance(o, cncf.Outcome) for o in outs)
            assert hub.engine.in_flight == 0

    run(main())


def test_ambiguous_operation_when_the_service_is_omitted(hub, tmp_path):
    (tmp_path / "cncf.toml").write_text(f"""
[component]
name = "twice"
form = "inline"
entry = "inline_policies:Store"
artifact = "{INLINE / "policies"}"

[services.left]
operations = ["read", "peaks"]

[services.right]
operations = ["write", "peaks"]
""")
    h = hub.load(tmp_path)
    assert h.state == "ready", h.observation
    obs = hub.call("twice.peaks").observation
    assert obs.code is Code.AMBIGUOUS_OPERATION and obs.stage.value == "dispatch"
    assert obs.attributes["candidates"] == ["twice.left.peaks", "twice.right.peaks"]
    assert hub.call("twice.right.peaks").ok


def test_services_naming_a_missing_operation_is_a_manifest_observation(hub, tmp_path):
    (tmp_path / "cncf.toml").write_text(f"""
[component]
form = "inline"
entry = "inline_policies:Store"
artifact = "{INLINE / "policies"}"

[services.left]
operations = ["read", "delete"]
""")
    obs = hub.load(tmp_path).observation
    assert obs.code is Code.INVALID_MANIFEST and obs.attributes["key"] == "services.left.operations"
    assert "read" in obs.attributes["candidates"]


def test_waiters_are_woken_when_the_component_is_unloaded(home):
    async def main():
        async with cncf.AsyncHub(home=home) as hub:
            await hub.load(INLINE / "counter")
            running = asyncio.ensure_future(hub.call("counter.patient", {"seconds": 5}))
            await asyncio.sleep(0.02)
            waiting = asyncio.ensure_future(hub.call("counter.increment"))
            await asyncio.sleep(0.02)
            await hub.unload("counter")
            out = await waiting
            assert out.observation.code is Code.INSTANCE_LOST_WAITING
            assert out.observation.stage.value == "wait"
            assert (await running).observation.code is Code.CANCELLED

    run(main())


def test_a_collaborator_receives_calls_itself(hub):
    h = hub.load(INLINE / "counter", name="router", entry="inline_counter:Router")
    assert h.state == "ready", h.observation
    assert sorted(h.operations) == ["default.echo", "default.history"]
    assert hub.call("router.echo", [1, 2]).value == {"args": [1, 2], "kwargs": {}}
    assert hub.call("router.history").value == ["echo", "history"]


def test_a_refused_reload_keeps_the_old_instance_serving(home, tmp_path):
    import shutil

    folder = tmp_path / "counter"
    shutil.copytree(INLINE / "counter", folder)
    manifest = folder / "cncf.toml"
    manifest.write_text(manifest.read_text().replace('form = "inline"', 'form = "python"'))

    async def main():
        async with cncf.AsyncHub(home=home, manifest_inline=False) as hub:  # as a reception runs it
            handle = await hub.load(folder)
            assert handle.state == "ready", handle.observation
            assert (await hub.call("counter.increment")).value == 1
            # The component rewrites its own manifest to run inside the hub: refused.
            manifest.write_text(manifest.read_text().replace('form = "python"', 'form = "inline"'))
            refused = await hub.reload("counter")
            assert refused.state == "failed" and refused.observation.code is Code.FORM_NOT_ALLOWED
            assert hub.component("counter") is handle and handle.state == "ready"
            assert (await hub.call("counter.increment")).value == 2  # the old instance, state kept

    run(main())


def test_exactly_one_outcome_even_when_describing_the_defect_fails(hub, counter):
    """The last-resort fallback (style rule 8): the exception's repr raises too."""

    class Indescribable(Exception):
        def __repr__(self):
            raise RuntimeError("no repr either")

    async def broken_invoke(*a, **k):
        raise Indescribable()

    counter._component.boundary.invoke = broken_invoke
    out = hub.call("counter.get")
    assert (out.observation.code, out.observation.stage) == (Code.INTERNAL_ERROR, Stage.EXECUTE)
    assert out.observation.call_id == out.call_id
    assert hub.call("counter.get").observation.code is Code.INTERNAL_ERROR  # still one Outcome per call
