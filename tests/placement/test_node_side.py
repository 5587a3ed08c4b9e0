"""The node side's own checks, without a cluster: what a node finds on itself.

The node actor (``cncf.placement.ray_node``) asks the machine it runs on for
a Python of the version a component needs and for a JVM new enough for the
JVM host the hub compiled (``--release 8``); what it lacks is a load
Observation naming the piece, never a worker that fails to start later.
These run the node-side code in this process against real executables.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from cncf.placement import ray_node
from tests.conftest import require_tool


def _fake(path: Path, script: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    path.chmod(0o755)
    return str(path)


def test_java_major_reads_the_old_and_the_new_version_strings(tmp_path: Path) -> None:
    old = _fake(tmp_path / "j7" / "java", "#!/bin/sh\necho 'java version \"1.7.0_80\"' >&2\n")
    new = _fake(tmp_path / "j21" / "java", "#!/bin/sh\necho 'openjdk version \"21.0.2\" 2024-01-16' >&2\n")
    broken = _fake(tmp_path / "jx" / "java", "#!/bin/sh\nexit 1\n")
    assert ray_node.java_major(old) == 7
    assert ray_node.java_major(new) == 21
    assert ray_node.java_major(broken) is None
    assert ray_node.java_major(str(tmp_path / "missing" / "java")) is None


def test_the_real_jdk_is_new_enough_for_the_jvm_host() -> None:
    require_tool("java")
    java = shutil.which("java")
    assert java is not None
    major = ray_node.java_major(java)
    assert major is not None and major >= ray_node.JVM_HOST_RELEASE


def _prepare(argv: list[str], **request: object) -> dict[str, object]:
    """What a run's preparation reports for ``argv`` (a load Observation as a dict), or {} if it passes."""
    run = ray_node.Run()
    run._where = {"node_id": "n1", "node_address": "10.0.0.7"}
    try:
        asyncio.run(run._prepare(argv, {"argv": argv, "env": {}, **request}))
    except ray_node._Missing as missing:
        return missing.observation
    finally:
        run._release()
    return {}


def test_a_node_whose_java_is_too_old_refuses_the_jvm_host_at_load(tmp_path: Path) -> None:
    old = _fake(tmp_path / "j7" / "java", "#!/bin/sh\necho 'java version \"1.7.0_80\"' >&2\n")
    obs = _prepare([old, "-cp", "host.jar"], bridged=True)
    assert (obs["code"], obs["stage"]) == ("worker_start_failed", "load")
    attributes = obs["attributes"]
    assert isinstance(attributes, dict)
    assert (attributes["java_version"], attributes["required"]) == (7, 8)
    assert attributes["node_address"] == "10.0.0.7" and attributes["java"] == old


def test_a_node_with_a_new_enough_java_prepares_the_jvm_host(tmp_path: Path) -> None:
    new = _fake(tmp_path / "j17" / "java", "#!/bin/sh\necho 'openjdk version \"17.0.9\"' >&2\n")
    assert _prepare([new, "-cp", "host.jar"], bridged=True) == {}


def test_the_python_version_probe_is_one_function_for_hub_and_node(tmp_path: Path) -> None:
    from cncf.placement import ray_cluster

    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    fake = _fake(tmp_path / "bin" / "python3.99", "#!/bin/sh\necho 3.99\n")
    broken = _fake(tmp_path / "bin" / "python-broken", "#!/bin/sh\nexit 3\n")
    assert ray_node.python_version(sys.executable) == here
    assert ray_node.python_version(fake) == "3.99"
    assert ray_node.python_version(broken) is None
    assert ray_cluster._python_version(fake) == "3.99"  # the hub asks the same probe …
    assert ray_cluster._python_version(broken) == here  # … and falls back to its own version


def test_a_python_the_node_lacks_is_not_found() -> None:
    assert ray_node.find_python("/nonexistent/python", "3.99") is None
