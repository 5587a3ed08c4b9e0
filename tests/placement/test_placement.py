"""Components placed on chosen nodes of a real Ray cluster behave as local ones.

Every form keeps its boundary on the node: the same values, state, output and
Observations as locally; ``inspect`` names the node; the node's loss is an
execute-stage ``node_lost`` (naming the node; retryable when idempotent) and the next call
restarts the component on a node that fits; nothing is left on any node once
the hub is done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import cncf
from cncf.jobs import JobState
from tests.conftest import require_tool
from tests.placement.conftest import ECHO, RayCluster, gone

pytestmark = pytest.mark.slow  # a Ray cluster of three nodes, JVM hosts, nodes added and removed

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RAY = {"placement": "ray"}


def code_stage(outcome: cncf.Outcome) -> tuple[str, str]:
    assert outcome.observation is not None, outcome
    return outcome.observation.code.value, outcome.observation.stage.value


# ---------------------------------------------------------------------------
# Every form on a chosen node
# ---------------------------------------------------------------------------


def test_python_component_on_a_chosen_node(placed_hub: cncf.Hub, ray_cluster: RayCluster) -> None:
    h = placed_hub.load(ECHO, **RAY, placement_resources={"beta": 1})
    assert h.state == "ready", h.observation
    assert placed_hub.call("echo.echo", [{"a": [1, 2.5, None]}]).value == {"a": [1, 2.5, None]}
    assert [placed_hub.call("echo.increment", [2]).value for _ in range(3)] == [2, 4, 6]
    out = placed_hub.call("echo.shout", ["hi"])
    assert (out.value, out.stdout, out.stderr) == (2, "HI\n", "to stderr\n")
    assert code_stage(placed_hub.call("echo.fail")) == ("raised", "execute")
    where = placed_hub.call("echo.where").value
    assert where["node"] == "beta" and where["pgid"] == where["pid"]  # its own process group
    placement = placed_hub.inspect("echo")["placement"]
    assert placement["engine"] == "ray"
    assert placement["node_id"] == ray_cluster.node_id("beta")
    assert placement["address"] == "127.0.0.1"
    crashed = placed_hub.call("echo.crash", [7])
    assert code_stage(crashed) == ("worker_crashed", "execute")
    assert crashed.observation is not None and crashed.observation.attributes["exit_code"] == 7
    assert placed_hub.call("echo.increment", [1], timeout=60).value == 1  # restarted, fresh state
    assert placed_hub.call("echo.where").value["node"] == "beta"


def test_local_placement_is_the_default_and_inspect_says_so(placed_hub: cncf.Hub) -> None:
    assert placed_hub.load(ECHO).state == "ready"
    assert placed_hub.inspect("echo")["placement"]["engine"] == "local"
    assert placed_hub.call("echo.where").value["node"] == ""
    probe = (
        "import sys, cncf, cncf.hub, cncf.placement, cncf.boundaries.python, cncf.boundaries.jar;"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(cncf.__file__).parents[1])},
    ).stdout
    assert imported.strip() == "[]"  # Ray is imported only when a component is placed on it


def test_command_component_on_a_chosen_node(placed_hub: cncf.Hub) -> None:
    require_tool("node")
    h = placed_hub.load(EXAMPLES / "node-counter", **RAY, placement_resources={"alpha": 1})
    assert h.state == "ready", h.observation
    assert placed_hub.inspect("node-counter")["placement"]["engine"] == "ray"
    assert placed_hub.call("node-counter.increment", [5]).value == 5
    out = placed_hub.call("node-counter.greet", ["ada"])
    assert out.value == "hello, ada" and out.stdout == "hello from node, ada\n"
    failed = placed_hub.call("node-counter.fail")
    assert code_stage(failed) == ("raised", "execute")
    crashed = placed_hub.call("node-counter.crash")
    assert code_stage(crashed) == ("worker_crashed", "execute")
    assert crashed.observation is not None and crashed.observation.attributes["exit_code"] == 7
    assert placed_hub.call("node-counter.increment", timeout=60).value == 1


def test_jar_components_share_a_host_per_node_or_get_their_own(
    placed_jar_hub: cncf.Hub, plain_jar: Path, ray_cluster: RayCluster
) -> None:
    hub = placed_jar_hub
    for name, extra in (("geo1", {}), ("geo2", {}), ("solo", {"isolation": "process"})):
        h = hub.load(plain_jar, name=name, entry="plain.Geometry", **RAY, placement_resources={"alpha": 0.1}, **extra)
        assert h.state == "ready", h.observation
    assert hub.call("geo1.hypot", [3, 4]).value == 5.0
    assert [hub.call("geo1.addPoint", [1, 2]).value for _ in range(2)] == [1, 2]
    assert hub.call("geo2.summary").value == {"count": 0, "empty": True, "first": None}
    assert code_stage(hub.call("geo1.convert", [1, "FURLONG"]))[1] in ("dispatch", "execute")
    pids = {n: hub.inspect(n)["health"]["pid"] for n in ("geo1", "geo2", "solo")}
    assert pids["geo1"] == pids["geo2"] != pids["solo"]
    places = {n: hub.inspect(n)["placement"] for n in ("geo1", "solo")}
    assert {p["node_id"] for p in places.values()} == {ray_cluster.node_id("alpha")}
    assert places["geo1"]["actor"] != places["solo"]["actor"]


def test_python_environment_is_built_on_the_node_by_the_same_hash(
    placed_hub: cncf.Hub, ray_cluster: RayCluster, tmp_path: Path
) -> None:
    from cncf.boundaries._environments import environment_key

    h = placed_hub.load(ECHO, name="pinned", requirements=["packaging==23.2"], **RAY, placement_resources={"alpha": 1})
    assert h.state == "ready", h.observation
    assert placed_hub.call("pinned.version").value == "23.2"
    key = environment_key(sys.executable, ["packaging==23.2"], [])
    assert (ray_cluster.node_cache / "envs" / key[:32] / "bin" / "python").exists()
    assert not (tmp_path / "home" / "cache" / "envs").exists()  # nothing built on the hub's side


# ---------------------------------------------------------------------------
# Placement failures are load Observations
# ---------------------------------------------------------------------------


def test_infeasible_placement_fails_the_load_at_once(placed_hub: cncf.Hub, ray_cluster: RayCluster) -> None:
    t = time.monotonic()
    h = placed_hub.load(ECHO, **RAY, placement_resources={"gamma": 1})
    assert h.state == "failed" and h.observation is not None
    assert (h.observation.code.value, h.observation.stage.value) == ("placement_infeasible", "load")
    assert "beta" in h.observation.attributes["offered"]
    assert time.monotonic() - t < 10
    assert code_stage(placed_hub.call("echo.echo", [1]))[0] == "placement_infeasible"
    assert ray_cluster.cncf_actors() == []


def test_unreachable_cluster_fails_the_load(placed_hub: cncf.Hub) -> None:
    h = placed_hub.load(ECHO, **RAY, ray_address="127.0.0.1:9")
    assert h.observation is not None
    assert (h.observation.code.value, h.observation.stage.value) == ("cluster_unreachable", "load")
    assert h.observation.retryable


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"placement": "mars"}, "placement"),
        ({"placement": "ray", "placement_resources": {"beta": -1}}, "placement_resources.beta"),
        ({"placement": "ray", "placement_resources": {"beta": float("nan")}}, "placement_resources.beta"),
        ({"placement": "ray", "placement_resources": {"beta": True}}, "placement_resources.beta"),
        ({"placement": "ray", "placement_resources": "beta"}, "placement_resources"),
        ({"placement": "ray", "ray_address": 7}, "ray_address"),
    ],
)
def test_placement_keys_are_validated(placed_hub: cncf.Hub, overrides: dict[str, Any], key: str) -> None:
    h = placed_hub.load(ECHO, **overrides)
    assert h.observation is not None and h.observation.code.value == "invalid_manifest"
    assert h.observation.attributes["key"].endswith(key)


def test_hub_file_hub_table_places_every_component(tmp_path: Path, ray_cluster: RayCluster) -> None:
    from rich.console import Console

    from cncf.receptions.runner import run_config

    hubfile = tmp_path / "hub.toml"
    hubfile.write_text(
        '[hub]\nplacement = "ray"\nplacement_resources = { beta = 1 }\n\n'
        f'[[component]]\ntarget = "{ECHO}"\n\n'
        f'[[component]]\ntarget = "{ECHO}"\nname = "here"\nplacement = "local"\n\n'
        '[[call]]\ncall = "echo.where"\n\n[[call]]\ncall = "here.where"\n'
    )
    import io
    import json

    buf = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(buf):
        status = run_config(hubfile, tmp_path / "home", True, Console(file=io.StringIO()), Console(file=io.StringIO()))
    assert status == 0, buf.getvalue()
    calls = json.loads(buf.getvalue())["calls"]
    assert [c["outcome"]["value"]["node"] for c in calls] == ["beta", ""]
    hubfile.write_text('[hub]\nplacement = "mars"\n')
    assert run_config(hubfile, tmp_path / "home", True, Console(file=io.StringIO()), Console(file=io.StringIO())) == 2


# ---------------------------------------------------------------------------
# Losing a node
# ---------------------------------------------------------------------------


def test_node_loss_fails_calls_in_flight_and_the_next_call_restarts_on_a_fitting_node(
    placed_hub: cncf.Hub, ray_cluster: RayCluster
) -> None:
    hub = placed_hub
    ray_cluster.add("spot1", {"spot": 1})
    ray_cluster.cluster.wait_for_nodes()
    # idempotent: a call (and a job's attempt) the loss interrupted may run again (brief section 14)
    spot = {**RAY, "placement_resources": {"spot": 0.4}, "idempotent": True}
    assert hub.load(ECHO, name="sync", **spot).state == "ready"
    h = hub.load(ECHO, name="jobs", policy="queue", **spot)
    assert h.state == "ready", h.observation
    hub.aio._jobs.retry_base = 0.05
    lost_id = ray_cluster.node_id("spot1")
    assert hub.inspect("sync")["placement"]["node_id"] == hub.inspect("jobs")["placement"]["node_id"] == lost_id
    ray_cluster.add("spot2", {"spot": 1})
    ray_cluster.cluster.wait_for_nodes()
    results: dict[str, cncf.Outcome] = {}
    t = threading.Thread(target=lambda: results.setdefault("sync", hub.call("sync.slow", [120])))
    t.start()
    job = hub.call("jobs.slow", [3])
    assert job.job_id
    time.sleep(1.5)  # both are running on spot1
    ray_cluster.remove("spot1")
    t.join(60)
    out = results["sync"]
    assert code_stage(out) == ("node_lost", "execute")
    assert out.observation is not None and out.observation.retryable
    assert out.observation.attributes["node_id"] == lost_id
    assert out.observation.attributes["node_address"] == "127.0.0.1"
    again = hub.call("sync.where", timeout=120)
    assert again.ok, again.observation
    assert again.value["node"] == "spot2"
    assert hub.inspect("sync")["placement"]["node_id"] == ray_cluster.node_id("spot2")
    final = hub.wait(job.job_id, 120)
    assert final.value == 3, final.observation  # at least once: run again after the loss
    assert hub.job(job.job_id).state is JobState.SUCCEEDED and hub.job(job.job_id).attempts >= 2
    hub.unload("sync")
    hub.unload("jobs")
    ray_cluster.remove("spot2")


def test_a_frozen_node_is_lost_by_its_missing_heartbeat(
    placed_hub: cncf.Hub, ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cncf.placement import _tcp

    monkeypatch.setattr(_tcp, "HEARTBEAT_TIMEOUT", 2.0)
    assert placed_hub.load(ECHO, **RAY, placement_resources={"alpha": 1}).state == "ready"
    worker = placed_hub.call("echo.where").value["pid"]
    actor = placed_hub.inspect("echo")["placement"]["actor_pid"]
    for pid in (actor, worker):  # the whole "machine" stops answering; no socket closes
        os.kill(pid, signal.SIGSTOP)
    try:
        t = time.monotonic()
        out = placed_hub.call("echo.echo", [1], timeout=30)
        assert code_stage(out) == ("node_lost", "execute")
        assert time.monotonic() - t < 10
    finally:
        for pid in (actor, worker):
            os.kill(pid, signal.SIGCONT)


# ---------------------------------------------------------------------------
# Nothing is left on any node
# ---------------------------------------------------------------------------


def test_unload_and_close_release_every_actor_and_process(
    tmp_path: Path, ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool("node")
    monkeypatch.setenv("CNCF_RAY_IDLE_SECONDS", "2")  # an idle node actor waits this long for a next worker
    with cncf.Hub(home=tmp_path / "home") as hub:
        assert hub.load(ECHO, **RAY, placement_resources={"alpha": 0.3}).state == "ready"
        assert hub.load(ECHO, name="other", **RAY, placement_resources={"beta": 0.3}).state == "ready"
        assert hub.load(EXAMPLES / "node-counter", **RAY, placement_resources={"beta": 0.3}).state == "ready"
        pids = [hub.call(f"{n}.where").value["pid"] for n in ("echo", "other")]
        pids.append(hub.call("echo.spawn_child").value)  # a grandchild in the worker's group
        pids.append(hub.inspect("node-counter")["health"]["pid"])
        actors = [hub.inspect(n)["placement"]["actor_pid"] for n in ("echo", "other", "node-counter")]
        port = hub.inspect("echo")["placement"]["port"]
        with pytest.raises(ConnectionRefusedError):  # the node listens only until the hub connected
            __import__("socket").create_connection(("127.0.0.1", port), timeout=2)
        hub.unload("other")
        assert gone([pids[1]], timeout=1)  # the worker at once …
        assert actors[1] in {a.pid for a in ray_cluster.cncf_actors()}  # … its actor parked for the next one
        assert gone([actors[1]], timeout=15)  # and ended when nobody took it
        assert len(ray_cluster.cncf_actors()) == 2
    assert gone(pids + actors), [p for p in pids + actors if os.path.exists(f"/proc/{p}")]
    assert ray_cluster.cncf_actors() == []


_DYING_HUB = """
import sys, cncf
hub = cncf.Hub(home=sys.argv[1])
h = hub.load(sys.argv[2], placement="ray", placement_resources={"beta": 1})
assert h.state == "ready", h.observation
print("CNCF-PIDS", hub.call("echo.where").value["pid"], hub.inspect("echo")["placement"]["actor_pid"], flush=True)
import time; time.sleep(600)
"""


def test_hub_death_releases_everything_on_the_cluster(tmp_path: Path, ray_cluster: RayCluster) -> None:
    env = {
        **os.environ,
        "RAY_ADDRESS": ray_cluster.address,
        "PYTHONPATH": os.pathsep.join([str(Path(cncf.__file__).parents[1]), str(Path(__file__).parents[2])]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", _DYING_HUB, str(tmp_path / "home"), str(ECHO)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    # Ray may print its own lines (a raylet's "node marked dead") on the driver's
    # stdout: read up to the hub's own marked line.
    line = proc.stdout.readline()
    while line and not line.startswith("CNCF-PIDS "):
        line = proc.stdout.readline()
    assert line, "the hub did not start"
    worker, actor = (int(x) for x in line.split()[1:])
    proc.kill()
    proc.wait()
    proc.stdout.close()
    assert gone([worker, actor], timeout=60)
    assert ray_cluster.cncf_actors() == []


def test_busy_nodes_are_a_placement_timeout_not_an_endless_wait(
    placed_hub: cncf.Hub, ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cncf.placement import ray_cluster as engine

    holder = placed_hub.load(ECHO, name="holder", **RAY, placement_resources={"alpha": 1})
    assert holder.state == "ready", holder.observation  # (an actor may take seconds on a loaded machine)
    monkeypatch.setattr(engine, "PLACEMENT_TIMEOUT", 2.0)
    t = time.monotonic()
    h = placed_hub.load(ECHO, name="waiter", **RAY, placement_resources={"alpha": 1})
    assert h.observation is not None
    assert (h.observation.code.value, h.observation.stage.value) == ("placement_timeout", "load")
    assert time.monotonic() - t < 10
    assert len(ray_cluster.cncf_actors()) == 1  # the waiting actor was withdrawn


def test_without_ray_placement_is_a_load_observation(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['ray'] = None\n"  # an environment without the extra
        "import cncf\n"
        f"h = cncf.Hub(home={str(tmp_path / 'home')!r}).load({str(ECHO)!r}, placement='ray')\n"
        "print(h.observation.code.value, h.observation.stage.value)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(cncf.__file__).parents[1])},
    )
    assert out.stdout.split() == ["placement_unavailable", "load"], out.stderr
