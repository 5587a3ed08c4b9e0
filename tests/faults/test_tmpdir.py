"""Every worker has a private temporary folder (brief section 14, issue item 5).

``TMPDIR`` for the python and command workers, ``java.io.tmpdir`` (and
``TMPDIR``) for a JVM host: a folder of its own under the hub's run folder
(``HOME/run``), mode 0700, distinct per worker, removed when the worker ends —
unload, crash, close — so what a component wrote there never outlives it.
Components of one shared JVM host share their host's folder;
``isolation = "process"`` gives a jar its own.

Also here, because it is the same worker identity: ``inspect()["health"]["pid"]``
is the worker's own pid, not the ``unshare`` wrapper's (issue 16).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cncf
from cncf.boundaries.python import RUNTIME_DIR
from tests.conftest import require_tool

from .conftest import load

SCRATCH_PY = """
import os
import tempfile


class Scratch:
    def where(self):
        return {"tmpdir": tempfile.gettempdir(), "env": os.environ.get("TMPDIR")}

    def write(self, name):
        path = os.path.join(tempfile.gettempdir(), name)
        with open(path, "w") as f:
            f.write("left behind?")
        sub = tempfile.mkdtemp()
        os.chmod(sub, 0o500)  # a read-only folder inside must not stop the removal
        return path

    def die(self):
        os._exit(3)

    def pid(self):
        return os.getpid()
"""

RUN_SCRATCH = """
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, sys.argv[1])
import runtime  # noqa: E402

runtime.main()
"""

SCRATCH_JAVA = """
package scratch;

import java.io.File;
import java.nio.file.Files;

public class Scratch {
    public String where() { return System.getProperty("java.io.tmpdir"); }

    public String env() { return System.getenv("TMPDIR"); }

    public String write(String name) throws Exception {
        File f = new File(System.getProperty("java.io.tmpdir"), name);
        Files.write(f.toPath(), "left behind?".getBytes("UTF-8"));
        File.createTempFile("cncf", ".tmp");  // java's own temporary files land there too
        return f.getPath();
    }

    public long pid() {
        String name = java.lang.management.ManagementFactory.getRuntimeMXBean().getName();
        return Long.parseLong(name.substring(0, name.indexOf('@')));
    }

    public int die() {
        Runtime.getRuntime().halt(3);
        return 0;
    }
}
"""


@pytest.fixture(scope="session")
def scratch_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.jar.conftest import fat_jar, javac

    require_tool("javac")
    out = tmp_path_factory.mktemp("scratch-jar")
    src = out / "src" / "scratch" / "Scratch.java"
    src.parent.mkdir(parents=True)
    src.write_text(SCRATCH_JAVA)
    return fat_jar(out / "scratch.jar", [javac([src], out / "classes")])


@pytest.fixture
def component(tmp_path: Path, request: pytest.FixtureRequest):  # noqa: ANN201
    def make(form: str, name: str, **extra: str) -> Path:
        folder = tmp_path / f"{name}-{form}"
        folder.mkdir()
        lines = ["[component]", f'name = "{name}"', f'form = "{form}"']
        if form == "jar":
            jar = request.getfixturevalue("scratch_jar")
            (folder / "scratch.jar").write_bytes(jar.read_bytes())
            lines += ['artifact = "scratch.jar"', 'entry = "scratch.Scratch"']
        else:
            (folder / "scratch_mod.py").write_text(SCRATCH_PY)
            lines.append('entry = "scratch_mod:Scratch"')
            if form == "command":
                (folder / "run_scratch.py").write_text(RUN_SCRATCH)
                lines.append(f'command = ["{sys.executable}", "run_scratch.py", "{RUNTIME_DIR}"]')
        lines += [f'{k} = "{v}"' for k, v in extra.items()]
        (folder / "cncf.toml").write_text("\n".join(lines) + "\n")
        return folder

    return make


def _where(hub: cncf.Hub, name: str, form: str) -> Path:
    if form == "jar":
        out = hub.call(f"{name}.where")
        assert out.ok, out.observation
        env = hub.call(f"{name}.env")
        assert env.value == out.value  # TMPDIR names the same folder for what the JVM starts
        return Path(out.value)
    out = hub.call(f"{name}.where")
    assert out.ok, out.observation
    assert out.value["env"] == out.value["tmpdir"]
    return Path(out.value["tmpdir"])


def _gone(path: Path, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _isolation(form: str) -> dict[str, str]:
    return {"isolation": "process"} if form == "jar" else {}


@pytest.mark.parametrize("form", ["python", "command", "jar"])
def test_each_worker_has_a_private_temporary_folder(fhub: cncf.Hub, fhome: Path, component, form: str) -> None:
    load(fhub, component(form, "one", **_isolation(form)))
    load(fhub, component(form, "two", **_isolation(form)))
    one, two = _where(fhub, "one", form), _where(fhub, "two", form)
    assert one != two
    for folder in (one, two):
        assert folder.parent == fhome / "run"
        st = folder.stat()
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid()
    assert stat.S_IMODE((fhome / "run").stat().st_mode) == 0o700


@pytest.mark.parametrize("form", ["python", "command", "jar"])
def test_what_a_component_wrote_is_gone_after_unload(fhub: cncf.Hub, component, form: str) -> None:
    load(fhub, component(form, "w", **_isolation(form)))
    folder = _where(fhub, "w", form)
    written = fhub.call("w.write", ["note.txt"])
    assert written.ok, written.observation
    assert Path(written.value).read_text() == "left behind?"
    assert Path(written.value).parent == folder
    assert fhub.unload("w")
    assert not folder.exists()


@pytest.mark.parametrize("form", ["python", "command", "jar"])
def test_what_a_component_wrote_is_gone_after_a_crash(fhub: cncf.Hub, component, form: str) -> None:
    load(fhub, component(form, "c", **_isolation(form)))
    folder = _where(fhub, "c", form)
    assert fhub.call("c.write", ["note.txt"]).ok
    out = fhub.call("c.die")
    assert (out.observation.code, out.observation.stage) == ("worker_crashed", "execute")
    assert _gone(folder)  # removed when the worker's death is observed, before any restart
    again = _where(fhub, "c", form)  # the restarted instance has a new, empty folder
    assert again != folder and again.is_dir() and list(again.iterdir()) == []


def test_a_crashed_component_that_is_not_restarted_keeps_no_folder(fhub: cncf.Hub, component) -> None:
    load(fhub, component("python", "never", restart="never"))
    folder = _where(fhub, "never", "python")
    assert fhub.call("never.write", ["note.txt"]).ok
    assert fhub.call("never.die").observation.code == "worker_crashed"
    assert _gone(folder)


def test_components_of_a_shared_jvm_host_share_its_folder(fhub: cncf.Hub, fhome: Path, component) -> None:
    load(fhub, component("jar", "a"))
    load(fhub, component("jar", "b"))
    load(fhub, component("jar", "alone", isolation="process"))
    a, b, alone = (_where(fhub, n, "jar") for n in ("a", "b", "alone"))
    assert a == b and alone != a
    assert fhub.unload("a")
    assert a.is_dir()  # the host lives on for b (docs/security.md says so)
    assert fhub.unload("b")
    fhub.close()
    assert not a.exists() and not alone.exists()
    assert list((fhome / "run").iterdir()) == []


def test_close_removes_every_folder(fhome: Path, component) -> None:
    with cncf.Hub(home=fhome) as hub:
        load(hub, component("python", "p"))
        load(hub, component("command", "c"))
        folders = [_where(hub, "p", "python"), _where(hub, "c", "command")]
        assert all(f.is_dir() for f in folders)
    assert not any(f.exists() for f in folders)
    assert list((fhome / "run").iterdir()) == []


def test_folders_a_killed_hub_left_are_swept_by_the_next(tmp_path: Path) -> None:
    home = tmp_path / "home"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    run = home / "run"
    run.mkdir(parents=True)
    left = run / f"w{dead_pid}-abc123"
    (left / "inner").mkdir(parents=True)
    (left / "inner" / "file").write_text("x")
    live = run / f"w{os.getppid()}-def456"  # a live process's folder is not ours to remove
    live.mkdir()
    with cncf.Hub(home=home):
        pass
    assert not left.exists()
    assert live.is_dir()


@pytest.mark.parametrize("form", ["python", "command", "jar"])
def test_health_pid_is_the_workers_own(fhub: cncf.Hub, component, form: str) -> None:
    load(fhub, component(form, "who", **_isolation(form)))
    pid = fhub.inspect("who")["health"]["pid"]
    out = fhub.call("who.pid")
    assert out.ok, out.observation
    seen = out.value  # the pid as the worker sees it (small inside a PID namespace)
    status = Path(f"/proc/{pid}/status").read_text()
    nspids = [int(x) for x in next(line for line in status.splitlines() if line.startswith("NSpid:")).split()[1:]]
    assert nspids[0] == pid and nspids[-1] == seen  # the same process, seen from the hub and from inside
    argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    assert os.path.basename(argv0) not in (b"unshare", b"sh")
