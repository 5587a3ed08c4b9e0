"""Cases 3, 4, 6, 7, 12, 13: what a component does to processes, memory and the hub.

Every process a component starts ends with it (unload, close, kill -9 of the
hub); a flood of output costs the hub a bounded amount of memory; the JVM
host is invisible to the system class loader and a frozen host is detected;
a worker cannot signal the hub; no temporary folder outlives a hub.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import cncf
from tests.faults.conftest import PROCESS_FORMS, Maker, load, marked, wait_gone

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(cncf.__file__).resolve().parents[1]  # the code under test, for hub subprocesses
HOWS = {
    "python": ("popen", "setsid", "fork", "double_fork"),
    "command": ("setsid", "double_fork"),
    "jar": ("process_builder",),
}
CASES = [(form, how) for form, hows in HOWS.items() for how in hows]


# --------------------------------------------------------------- case 3: orphans


@pytest.mark.parametrize(("form", "how"), CASES)
@pytest.mark.parametrize("end", ["unload", "close"])
def test_children_end_with_the_component(fhome: Path, make: Maker, mark: str, form: str, how: str, end: str) -> None:
    with cncf.Hub(home=fhome) as hub:
        load(hub, make(form, "parent"))
        assert hub.call("parent.spawn", [how], timeout=30).value == how
        assert len(marked(mark)) >= 2  # the worker (or host) and its child
        if end == "unload":
            assert hub.unload("parent")
    assert wait_gone(mark) == []


@pytest.mark.parametrize("form", PROCESS_FORMS)
def test_kill_9_of_the_hub_leaves_no_process(fhome: Path, make: Maker, mark: str, form: str, tmp_path: Path) -> None:
    folder = make(form, "orphan")
    how = HOWS[form][-1]
    script = tmp_path / "hub.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, time, cncf
        hub = cncf.Hub(home={str(fhome)!r})
        assert hub.load({str(folder)!r}).state == "ready"
        print(hub.call("orphan.spawn", [{how!r}], timeout=60).value, flush=True)
        time.sleep(600)
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == how
        assert len(marked(mark)) >= 2
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    from cncf.wire import ownership

    if not ownership.namespace_available():  # documented: the next hub to start ends the escapees
        assert wait_gone(mark, 3) == [] or cncf.Hub(home=fhome).close() is None
    assert wait_gone(mark, 10) == []


# ----------------------------------------------------------- case 4: output flood


@pytest.mark.parametrize("form", PROCESS_FORMS)
def test_output_flood_is_bounded_head_and_tail_kept(
    fhub: cncf.Hub, make: Maker, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNCF_MAX_OUTPUT", "65536")
    load(fhub, make(form, "loud"))
    load(fhub, make(form, "quiet"))
    rss = _rss_kb()
    out = fhub.call("loud.flood", [300], timeout=120)  # 300 MB in one call
    assert out.ok, out.observation
    assert out.stdout.startswith("FIRST LINE") and out.stdout.rstrip().endswith("LAST LINE")
    assert "bytes of output dropped" in out.stdout and len(out.stdout) < 200_000
    assert _rss_kb() - rss < 150_000  # the hub did not hold the flood
    again = fhub.call("loud.flood", [0])
    assert again.ok and "dropped" not in again.stdout
    assert fhub.call("quiet.bump").value == 1


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ------------------------------------------------------- case 6: JVM isolation


def test_system_class_loader_cannot_see_the_host(fhub: cncf.Hub, make: Maker) -> None:
    load(fhub, make("jar", "peek"))
    assert fhub.call("peek.hostClass").value == "refused"


# -------------------------------------------------- case 7: a worker and the hub


@pytest.mark.parametrize("form", ["python", "command"])
def test_worker_cannot_kill_the_hub(fhome: Path, make: Maker, form: str, tmp_path: Path) -> None:
    from cncf.wire import ownership

    if not ownership.namespace_available():
        pytest.skip("no PID namespaces here: documented as a limit in docs/security.md")
    folder = make(form, "assassin", restart="never")
    script = tmp_path / "hub.py"
    script.write_text(
        textwrap.dedent(f"""
        import cncf
        with cncf.Hub(home={str(fhome)!r}) as hub:
            hub.load({str(folder)!r})
            out = hub.call("assassin.kill_parent", timeout=30)
            print("hub alive", out.ok, flush=True)
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + str(ROOT)}
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "hub alive" in r.stdout, r.stderr


def test_cli_runs_inline_only_when_asked(make: Maker, tmp_path: Path) -> None:
    folder = make("inline", "downloaded")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    base = [sys.executable, "-m", "cncf", "call", str(folder), "exit_hub", "--json", "--home", str(tmp_path / "h")]
    r = subprocess.run(base, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1 and '"form_not_allowed"' in r.stdout, r.stdout + r.stderr
    asked = subprocess.run(
        [
            sys.executable,
            "-m",
            "cncf",
            "call",
            str(folder),
            "echo",
            "7",
            "--form",
            "inline",
            "--home",
            str(tmp_path / "h"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert asked.returncode == 0 and asked.stdout.strip() == "7", asked.stdout + asked.stderr


# ------------------------------------------------ case 12: temporary folders


@pytest.mark.parametrize("how", ["sigterm", "double_sigint", "kill_9", "failed_load"])
def test_no_temporary_folder_outlives_the_hub(make: Maker, tmp_path: Path, how: str) -> None:
    extra = {"memory_limit": "9223372036854775808"} if how == "failed_load" else {}  # 2**63 bytes
    folder = make("python", "tmpuser", **extra)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(SRC), "TMPDIR": str(tmp)}
    args = ["nap", "30"] if how != "failed_load" else ["echo"]
    target = str(folder)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cncf", "call", target, *args, "--home", str(tmp_path / "h")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    if how != "failed_load":
        time.sleep(4)
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        elif how == "double_sigint":
            proc.send_signal(signal.SIGINT)
            time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
        else:
            proc.kill()
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while list(tmp.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(tmp.iterdir()) == []


# ------------------------------------------------------ case 13: frozen host


def test_frozen_shared_host_is_detected_and_neighbours_recover(
    fhome: Path, make: Maker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNCF_HEARTBEAT_STALL_MS", "1000")
    monkeypatch.setenv("CNCF_HEARTBEAT_TIMEOUT", "5")
    with cncf.Hub(home=fhome) as hub:
        load(hub, make("jar", "freezer"))
        load(hub, make("jar", "bystander"))
        assert hub.call("bystander.bump").value == 1
        assert hub.call("freezer.freeze").value == "frozen"
        started = time.monotonic()
        out = hub.call("bystander.bump")  # no timeout: it must still end
        assert time.monotonic() - started < 30
        assert (out.observation.code, out.observation.stage) == ("worker_crashed", "execute")
        assert "frozen" in out.observation.message
        assert hub.call("bystander.bump").value == 1  # restarted on a fresh host
