"""What a worker sees of the file system: nothing of the hub's home.

A hostile component of every process form looks for the hub's token, the job
store (with a neighbour's arguments in it), a neighbour's temporary folder, a
token file kept outside the home and the hub's own ``/proc`` entry; it finds
none of them, and cannot take the cover off (``umount2``, a user namespace of
its own).  What a worker needs is still there: its temporary folder
(writable), the shared cache (read-only), its own folder.  ``cncf serve``
hides its token file and its Unix socket the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

import cncf
from cncf.wire import ownership
from tests.conftest import IN_CI
from tests.faults.conftest import PROCESS_FORMS, Maker, load

SRC = Path(cncf.__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
CAP_DAC_READ_SEARCH, CAP_SYS_ADMIN = 2, 21


def need_view() -> None:
    if not ownership.view_available():
        if IN_CI:
            pytest.fail("workers get no mount namespace here, but CI runs where unshare --mount works")
        pytest.skip("no mount namespace for workers here (see docs/security.md)")


def names(shown: object) -> list[str]:
    """A folder listing as the python (a list) or the jar (lines) rogue returns it."""
    if isinstance(shown, list):
        return shown
    return [] if not isinstance(shown, str) or shown.startswith("!") else shown.splitlines()


@pytest.mark.parametrize("form", PROCESS_FORMS)
def test_a_hostile_worker_finds_nothing_of_the_hubs_home(
    fhome: Path, make: Maker, form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_view()
    secret = uuid.uuid4().hex
    fhome.mkdir(parents=True, exist_ok=True)
    (fhome / "serve.token").write_text(f"token-{secret}\n")
    outside = tmp_path / "elsewhere" / "hub.token"
    outside.parent.mkdir()
    outside.write_text(f"outside-{secret}\n")
    monkeypatch.setattr(ownership, "_HIDDEN", {str(outside)})  # as `cncf serve --token-file` registers it
    with cncf.Hub(home=fhome) as hub:
        load(hub, make("python", "other"))
        load(hub, make("python", "queued", policy="queue"))
        load(hub, make(form, "rogue"))
        theirs = hub.call("other.scribble", [f"neighbour-{secret}"]).value
        assert Path(theirs).read_text() == f"neighbour-{secret}"  # it is there, for the hub
        hub.call("queued.echo", [f"job-{secret}"], timeout=60)
        store = fhome / "jobs.sqlite3"
        assert store.exists() and f"job-{secret}".encode() in store.read_bytes() + _wal(store)
        mine = hub.call("rogue.env", ["TMPDIR"]).value
        hub_pid = os.getpid()
        looks = {
            "home": str(fhome),
            "token": str(fhome / "serve.token"),
            "store": str(store),
            "run": str(fhome / "run"),
            "neighbour": theirs,
            "neighbour_dir": str(Path(theirs).parent),
            "outside": str(outside),
            "hub_root": f"/proc/{hub_pid}/root{fhome}/serve.token",
            "hub_cwd": f"/proc/{hub_pid}/cwd",
            "hub_environ": f"/proc/{hub_pid}/environ",
            "init_root": f"/proc/1/root{fhome}/serve.token",
        }
        seen = {what: hub.call("rogue.peek", [path]).value for what, path in looks.items()}
        for what, shown in seen.items():
            assert secret not in json.dumps(shown), (what, shown)
        assert names(seen["home"]) in (["cache", "run"], ["run", "cache"]), seen["home"]
        assert names(seen["run"]) == [Path(mine).name], seen["run"]  # its own folder only
        assert seen["outside"] == ""  # covered by /dev/null
        for what in ("token", "store", "neighbour", "hub_root", "init_root"):
            assert isinstance(seen[what], str) and seen[what].startswith("!"), (what, seen[what])
        # what it needs is there
        assert hub.call("rogue.peek", [str(fhome / "cache")]).value  # the shared cache (the JVM build)
        assert hub.call("rogue.bump").ok
        if form != "jar":
            assert hub.call("rogue.scribble", ["mine"]).value == str(Path(mine) / "scribble.txt")
            assert (Path(mine) / "scribble.txt").read_text() == "mine"  # the same folder the hub sees


def _wal(store: Path) -> bytes:
    wal = store.with_name(store.name + "-wal")
    return wal.read_bytes() if wal.exists() else b""


def test_the_cover_cannot_be_taken_off(fhome: Path, make: Maker) -> None:
    need_view()
    secret = uuid.uuid4().hex
    fhome.mkdir(parents=True, exist_ok=True)
    (fhome / "serve.token").write_text(secret)
    with cncf.Hub(home=fhome) as hub:
        load(hub, make("python", "rogue"))
        said = hub.call("rogue.undo_view", [str(fhome)], timeout=60).value
        assert said["umount2/0"] < 0 and said["umount2/2"] < 0, said
        assert "serve.token" not in said["unshare"], said
        assert hub.call("rogue.peek", [str(fhome / "serve.token")]).value.startswith("!")
        caps = hub.call("rogue.capabilities").value
        assert not caps & (1 << CAP_SYS_ADMIN | 1 << CAP_DAC_READ_SEARCH), hex(caps)
        # the shared cache is there, read-only: no component plants code for its neighbours
        assert "jvm" in hub.call("rogue.peek", [str(fhome / "cache")]).value
        assert hub.call("rogue.write", [str(fhome / "cache" / "planted.py"), "x"]).value == "!30"  # EROFS
        assert hub.call("rogue.write", [str(Path(hub.call("rogue.env", ["TMPDIR"]).value) / "f"), "x"]).value == "ok"


def test_serve_hides_its_token_file_and_socket_from_workers(make: Maker, tmp_path: Path) -> None:
    """A real `cncf serve --unix` whose token file lies outside its home: the
    hostile component reads neither, and cannot connect to the socket."""
    need_view()
    home, token = tmp_path / "home", tmp_path / "keys" / "hub.token"
    token.parent.mkdir()
    secret = uuid.uuid4().hex
    token.write_text(secret + "\n")
    os.chmod(token, 0o600)
    sock = tmp_path / "run" / "hub.sock"
    sock.parent.mkdir()
    rogue = make("python", "rogue")
    hubfile = tmp_path / "hub.toml"
    hubfile.write_text(f'[[component]]\ntarget = "{rogue}"\n')
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    log = tmp_path / "serve.log"
    err = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cncf", "serve", str(hubfile), "--home", str(home), "--token-file", str(token)]
        + ["--unix", str(sock)],
        stdout=subprocess.PIPE,
        stderr=err,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving 1 components" in line, (line, log.read_text())

        def call(op: str, *args: object) -> object:
            return _unix_call(sock, f"/rest/v1/rogue/{op}", list(args), secret)

        assert call("echo", 7) == 7  # the socket serves the hub's user
        for path in (token, home / "serve.token", home):
            shown = call("peek", str(path))
            assert secret not in json.dumps(shown), (path, shown)
        assert call("peek", str(token)) == ""
        assert call("peek", str(sock)) == ""  # /dev/null: the socket cannot be reached by name
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err.close()
        if proc.stdout is not None:
            proc.stdout.close()


def test_serve_with_its_token_in_the_home_loads_and_hides_it(make: Maker, tmp_path: Path) -> None:
    """The default: `cncf serve` creates `HOME/serve.token`; the components load,
    and what they see of the home has no token in it."""
    need_view()
    home = tmp_path / "home"
    rogue = make("python", "rogue")
    hubfile = tmp_path / "hub.toml"
    hubfile.write_text(f'[[component]]\ntarget = "{rogue}"\n')
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cncf", "serve", str(hubfile), "--home", str(home), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, "PYTHONPATH": str(SRC)},
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "serving 1 components" in line, (line, log.read_text())
            url = line.strip().rsplit(" ", 1)[-1]
            token = (home / "serve.token").read_text().strip()

            def call(op: str, *args: object) -> object:
                req = urllib.request.Request(
                    f"{url}rest/v1/rogue/{op}",
                    data=json.dumps(list(args)).encode(),
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(req, timeout=60) as r:
                    body = json.loads(r.read())
                assert body["ok"], body
                return body["value"]

            assert call("echo", 3) == 3  # loaded and serving: the view did not stop it
            assert str(call("peek", str(home / "serve.token"))).startswith("!")
            assert token not in json.dumps(call("peek", str(home)))
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def _unix_call(sock: Path, path: str, args: list[object], token: str) -> object:
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(60)
            self.sock.connect(str(sock))

    deadline = time.monotonic() + 30
    while True:
        conn = Conn("localhost")
        try:
            conn.request(
                "POST",
                path,
                body=json.dumps(args),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )
            body = json.loads(conn.getresponse().read())
            break
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            conn.close()
    assert body["ok"], body
    return body["value"]


def test_an_unprivileged_hub_hides_its_home_through_a_user_namespace() -> None:
    """The same view for a hub that is not root: its workers' namespace is a user
    namespace, and the worker runs as the hub's own uid without capabilities."""
    runuser, python = shutil.which("runuser"), "/usr/bin/python3"
    if os.geteuid() != 0 or runuser is None or not os.path.exists(python):
        if IN_CI:
            pytest.fail("this test runs as root with runuser and /usr/bin/python3 under CI=true")
        pytest.skip("needs root, runuser and /usr/bin/python3 to act as another user")
    base = Path(tempfile.mkdtemp(prefix="cncf-view-nobody-"))  # /tmp: readable by nobody, unlike tmp_path
    try:
        comp = base / "comp"
        comp.mkdir()
        shutil.copy(HERE / "fixtures" / "rogue.py", comp / "rogue_rogue.py")
        (comp / "cncf.toml").write_text('[component]\nname = "rogue"\nform = "python"\nentry = "rogue_rogue:Rogue"\n')
        secret = uuid.uuid4().hex
        script = base / "hub.py"
        script.write_text(
            textwrap.dedent(f"""
            import json, os, cncf
            from cncf.wire import ownership
            home = {str(base / "home")!r}
            with cncf.Hub(home=home) as hub:
                assert hub.load({str(comp)!r}).state == "ready"
                with open(os.path.join(home, "serve.token"), "w") as f:
                    f.write({secret!r})
                print(json.dumps({{
                    "view": ownership.view_available(),
                    "uid": os.getuid(),
                    "home": hub.call("rogue.peek", [home]).value,
                    "token": hub.call("rogue.peek", [os.path.join(home, "serve.token")]).value,
                    "undo": hub.call("rogue.undo_view", [home], timeout=60).value,
                    "caps": hub.call("rogue.capabilities").value,
                    "after": hub.call("rogue.peek", [os.path.join(home, "serve.token")]).value,
                }}))
            """)
        )
        # the hub's own code, where nobody can read it (a clone may sit in a folder only root can enter)
        shutil.copytree(SRC / "cncf", base / "src" / "cncf", ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(["chown", "-R", "nobody", str(base)], check=True)
        env = {"PATH": os.environ["PATH"], "HOME": str(base), "PYTHONPATH": str(base / "src"), "LANG": "C.UTF-8"}
        done = subprocess.run(
            [runuser, "-u", "nobody", "--", python, str(script)], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, done.stderr[-3000:]
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        if not seen["view"]:
            if IN_CI:
                pytest.fail("unprivileged user namespaces are refused here, but CI allows them")
            pytest.skip("unprivileged user namespaces are refused here (see docs/security.md)")
        assert seen["uid"] != 0
        assert secret not in json.dumps(seen), seen
        assert seen["home"] == ["run"], seen["home"]
        assert seen["token"].startswith("!") and seen["after"].startswith("!"), seen
        assert seen["undo"]["umount2/0"] < 0 and seen["undo"]["umount2/2"] < 0, seen["undo"]
        assert seen["caps"] == 0, hex(seen["caps"])
    finally:
        shutil.rmtree(base, ignore_errors=True)
