"""Components that exist only on the hub's side, for an isolated node (issue 17).

Each maker returns (target, load options, [(call, args, expected value)]) for
one form; the files live in ``tmp`` (or the repository, or Debian's jars
copied into ``tmp``): all hidden on an isolated node (``isolated.py``), so
whatever the node needs must travel.  :func:`measure` loads one form on the
isolated node and calls it, and returns what happened as data.

Measure what each form gives on an isolated node without pytest::

    PYTHONPATH=$PWD/src:$PWD python -m tests.placement.forms [FORM ...] [--elsewhere]
"""

from __future__ import annotations

import shutil
import sys
import threading
import zipapp
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cncf
from tests.placement.isolated import REPO, IsolatedCluster

ECHO = REPO / "tests" / "fixtures" / "placement" / "echo"
EXAMPLES = REPO / "examples"
DEB = Path("/usr/share/java")
NODE = {"iso": 1}
RAY: dict[str, Any] = {"placement": "ray", "placement_resources": NODE}


# ---------------------------------------------------------------------------
# Components that exist only on the hub's side
# ---------------------------------------------------------------------------


def python_folder(tmp: Path) -> tuple[Path, dict[str, Any], list[tuple[str, list[Any], Any]]]:
    return ECHO, {}, [("echo.echo", [{"a": [1, None]}], {"a": [1, None]}), ("echo.increment", [2], 2)]


def python_pypi(tmp: Path) -> tuple[Path, dict[str, Any], list[tuple[str, list[Any], Any]]]:
    # packaging is pure python; the node's uv has no cache (a fresh HOME): it comes from PyPI.
    return ECHO, {"name": "pinned", "requirements": ["packaging==23.2"]}, [("pinned.version", [], "23.2")]


def python_pyz(tmp: Path) -> tuple[Path, dict[str, Any], list[tuple[str, list[Any], Any]]]:
    stage = tmp / "pyz-stage"
    shutil.copytree(EXAMPLES / "python-counter", stage, ignore=shutil.ignore_patterns("__pycache__", "cncf.toml"))
    (stage / "__main__.py").write_text("print('a cncf component')\n")
    target = tmp / "hub-artifacts" / "counter.pyz"
    target.parent.mkdir(parents=True, exist_ok=True)
    zipapp.create_archive(stage, target, interpreter="/usr/bin/env python3")
    return target, {"name": "zipped", "entry": "counter:Counter"}, [("zipped.increment", [5], 5)]


def fat_jar_with_classpath(tmp: Path) -> tuple[Path, dict[str, Any], list[tuple[str, list[Any], Any]]]:
    """commons-text as a fat jar of its own, commons-lang3 as a ``classpath`` jar: both copied
    into the hub's folder (Debian's copies under /usr would be on a node built from the same image)."""
    from tests.jar.conftest import fat_jar, require_file

    text = require_file(DEB / "commons-text.jar", "commons-text (Debian libcommons-text-java)")
    lang3 = require_file(DEB / "commons-lang3.jar", "commons-lang3 (Debian libcommons-lang3-java)")
    jar = fat_jar(tmp / "hub-artifacts" / "words.jar", bundle=[text])
    lib = tmp / "hub-artifacts" / "lib" / "lang3.jar"
    lib.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(lang3, lib)
    options = {"name": "words", "entry": "org.apache.commons.text.WordUtils", "classpath": [str(lib)]}
    return jar, options, [("words.capitalizeFully", ["hello big WORLD"], "Hello Big World")]


def command(tmp: Path) -> tuple[Path, dict[str, Any], list[tuple[str, list[Any], Any]]]:
    folder = tmp / "hub-artifacts" / "perl-greeter"
    shutil.copytree(EXAMPLES / "perl-greeter", folder)
    return folder, {}, [("perl-greeter.greet", ["ada"], "hello, ada"), ("perl-greeter.add", [1, 2, 3], 6)]


FORMS: dict[str, Callable[[Path], tuple[Path, dict[str, Any], list[tuple[str, list[Any], Any]]]]] = {
    "python folder": python_folder,
    "python + PyPI requirement": python_pypi,
    ".pyz": python_pyz,
    "fat jar + classpath jar": fat_jar_with_classpath,
    "command (perl)": command,
}


ELSEWHERE = {"iso_py": 1}  # a node whose Python is at /tmp/python, not at the hub's path


def measure(hub: cncf.Hub, form: str, tmp: Path, resources: dict[str, float] | None = None) -> dict[str, Any]:
    """Load one form on the isolated node and call it: what happened, as data."""
    target, options, calls = FORMS[form](tmp)
    handle = hub.load(target, **options, placement="ray", placement_resources=resources or NODE)
    record: dict[str, Any] = {"form": form, "state": handle.state}
    obs = handle.observation
    if obs is not None:
        record.update(code=obs.code.value, stage=obs.stage.value, message=obs.message)
        return record
    record["calls"] = []
    for name, args, expected in calls:
        out = hub.call(name, args, timeout=120)
        o = out.observation
        record["calls"].append(
            {
                "call": name,
                "ok": out.ok and out.value == expected,
                "value": out.value,
                "code": o.code.value if o else None,
                "stage": o.stage.value if o else None,
                "message": o.message if o else None,
            }
        )
    return record


_PROBE = """
import os


class Probe:
    def env(self):
        return dict(os.environ)
"""


def http_store(files: dict[str, bytes], honour_range: bool = True, log: list[str] | None = None) -> tuple[str, Any]:
    """A static HTTP artifact store on loopback (``<base>/<sha256>``), with range requests;
    ``log`` gets ``METHOD path`` of every request."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _body(self) -> bytes | None:
            if log is not None:
                log.append(f"{self.command} {self.path}")
            data = files.get(self.path.rsplit("/", 1)[-1])
            if data is None:
                self.send_error(404)
            return data

        def do_HEAD(self) -> None:
            data = self._body()
            if data is not None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()

        def do_GET(self) -> None:
            data = self._body()
            if data is None:
                return
            rng = self.headers.get("Range")
            if rng and honour_range:
                start, end = (int(x) for x in rng.removeprefix("bytes=").split("-"))
                part = data[start : end + 1]
                self.send_response(206)
            else:
                part = data
                self.send_response(200)
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            self.wfile.write(part)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/store/", server


def _main() -> None:  # pragma: no cover - a measuring script
    import json
    import tempfile

    forms = [f for f in sys.argv[1:] if f != "--elsewhere"] or list(FORMS)
    elsewhere = "--elsewhere" in sys.argv
    tmp = Path(tempfile.mkdtemp(prefix="issue17-"))
    cluster = IsolatedCluster(head_resources={"hub_machine": 1})
    try:
        cluster.add("iso", NODE)
        if elsewhere:
            cluster.add("py", ELSEWHERE, python_at="/tmp/python")
        with cncf.Hub(home=tmp / "home") as hub:  # a fresh home: the hub compiles its JVM host
            for form in forms:
                sub = tmp / form.replace(" ", "_").replace("/", "_").replace("+", "p")
                sub.mkdir()
                record = measure(hub, form, sub, ELSEWHERE if elsewhere else None)
                print(json.dumps(record, default=str), flush=True)
    finally:
        cluster.shutdown()
        cluster.cleanup_disk()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    _main()
