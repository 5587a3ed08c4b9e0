"""The jar form: echo round trip into a JVM component through AsyncHub and Hub
(median, p99) against a raw JVM JSON echo over stdin/stdout measured in the
same run; Scala fat JAR load + instantiate into a warm host; JVM host start.

Targets (issue 4): echo ≤ 1.5× the raw echo through AsyncHub, ≤ 2× through
Hub; Scala fat JAR load + instantiate ≤ 300 ms; host start to ready ≤ 0.5 s.
Standalone: ``python benchmarks/bench_jar.py``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

import cncf  # noqa: E402
from cncf.jvm.build import ensure_built, startup_options  # noqa: E402
from cncf.wire.process import WorkerProcess  # noqa: E402

Row = tuple[str, float, float, str]
N = 5000
PAYLOAD = {"id": 42, "name": "echo", "tags": ["a", "b"], "ratio": 0.5}
SCALA_SOURCES = ROOT / "tests" / "fixtures" / "jar" / "scala" / "src"
SCALA_LIBRARIES = (Path("/usr/share/scala-2.11/lib/scala-library.jar"), Path("/usr/share/scala/lib/scala-library.jar"))

ECHO_COMPONENT = """
package bench;

import cncf.collaborator.ActionCall;
import cncf.collaborator.Collaborator;
import cncf.collaborator.Operations;
import cncf.collaborator.Result;

@Operations({"echo"})
public class Echo implements Collaborator {
    public Result call(ActionCall call) { return Result.success(call.argument(0)); }
}
"""

# The floor: a JVM reading one JSON document per line on stdin, parsing it and
# writing it back (the host's own JSON code, no threads, no frames, no loaders).
RAW_ECHO = """
package cncf.host;

import java.io.*;

public final class RawEcho {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        OutputStream out = new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16);
        String line;
        while ((line = in.readLine()) != null) {
            out.write(Json.write(Json.parse(line)).getBytes("UTF-8"));
            out.write('\\n');
            out.flush();
        }
    }
}
"""


def _stats(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99)] * 1e6


def _javac(work: Path, name: str, source: str, classpath: list[Path]) -> Path:
    src = work / f"{name}-src"
    src.mkdir()
    (src / f"{name}.java").write_text(source)
    out = work / f"{name}-classes"
    subprocess.run(
        [
            "javac",
            "--release",
            "8",
            "-nowarn",
            "-Xlint:-options",
            "-d",
            str(out),
            "-cp",
            os.pathsep.join(map(str, classpath)),
            str(src / f"{name}.java"),
        ],
        check=True,
    )
    return out


def _jar(target: Path, roots: list[Path], bundle: tuple[Path, ...] = ()) -> Path:
    seen: set[str] = set()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for root in roots:
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    seen.add(name := p.relative_to(root).as_posix())
                    zf.write(p, name)
        for dep in bundle:
            with zipfile.ZipFile(dep) as src:
                for info in src.infolist():
                    if (
                        not info.is_dir()
                        and info.filename not in seen
                        and not info.filename.upper().endswith((".SF", ".RSA", ".DSA"))
                    ):
                        seen.add(info.filename)
                        zf.writestr(info.filename, src.read(info))
    return target


class RawEcho:
    """The floor: a JVM echoing JSON lines over stdin/stdout, driven synchronously."""

    def __init__(self, build, work: Path) -> None:  # noqa: ANN001
        classes = _javac(work, "RawEcho", RAW_ECHO, [build.host_jar])
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [build.java, *startup_options(build), "-cp", f"{build.host_jar}{os.pathsep}{classes}", "cncf.host.RawEcho"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._w, self._readline = self.proc.stdin.write, self.proc.stdout.readline
        self._enc, self._dec = json.JSONEncoder(separators=(",", ":")).encode, json.loads
        self.once()
        self.start_seconds = time.perf_counter() - t0  # JVM start to the first echo

    def once(self) -> None:
        self._w(self._enc(PAYLOAD).encode() + b"\n")
        assert self._dec(self._readline())["id"] == 42

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


async def host_start(build, n: int = 10) -> float:  # noqa: ANN001
    """Median seconds from spawning a JVM host to its HELLO."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        w = await WorkerProcess.spawn(build.host_argv(), label="bench-host")
        times.append(time.perf_counter() - t)
        await w.close()
    return statistics.median(times)


# The floor and the figure are measured in alternating blocks, so that a
# neighbour process slowing the machine for a while slows both alike.
BLOCKS = 10


async def _interleaved_async(
    floor: Callable[[], object], fn: Callable[[], Awaitable[object]]
) -> tuple[list[float], list[float]]:
    pc = time.perf_counter
    for _ in range(N // 5):
        floor()
        await fn()
    a: list[float] = []
    b: list[float] = []
    for _ in range(BLOCKS):
        for _ in range(N // BLOCKS):
            t = pc()
            floor()
            a.append(pc() - t)
        for _ in range(N // BLOCKS):
            t = pc()
            await fn()
            b.append(pc() - t)
    return a, b


def _interleaved_sync(floor: Callable[[], object], fn: Callable[[], object]) -> tuple[list[float], list[float]]:
    pc = time.perf_counter
    for _ in range(N // 5):
        floor()
        fn()
    a: list[float] = []
    b: list[float] = []
    for _ in range(BLOCKS):
        for _ in range(N // BLOCKS):
            t = pc()
            floor()
            a.append(pc() - t)
        for _ in range(N // BLOCKS):
            t = pc()
            fn()
            b.append(pc() - t)
    return a, b


def main() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cncf-bench-jar-") as tmp:
        work = Path(tmp)
        saved = os.environ.get("CNCF_CACHE")
        os.environ["CNCF_CACHE"] = saved or str(work / "cache")  # one build for every hub of this run
        try:
            return _run(work, rows)
        finally:
            if saved is None:
                os.environ.pop("CNCF_CACHE", None)


def _run(work: Path, rows: list[Row]) -> list[Row]:
    build = ensure_built(Path(os.environ["CNCF_CACHE"]))
    echo_jar = _jar(work / "echo.jar", [_javac(work, "Echo", ECHO_COMPONENT, [build.api_jar])])
    scala_jar = None
    library = next((p for p in SCALA_LIBRARIES if p.is_file()), None)
    if shutil.which("scalac") and library is not None:
        out = work / "scala-classes"
        out.mkdir()
        subprocess.run(
            [
                "scalac",
                "-nowarn",
                "-d",
                str(out),
                "-classpath",
                f"{build.api_jar}",
                *map(str, sorted(SCALA_SOURCES.rglob("*.scala"))),
            ],
            check=True,
        )
        scala_jar = _jar(work / "inventory-scala.jar", [out], (library.resolve(),))

    gc.disable()
    raw = RawEcho(build, work)
    try:
        start = asyncio.run(host_start(build))
        rows.append(("jar: JVM host start to HELLO (target ≤ 500 ms)", start * 1e3, raw.start_seconds * 1e3, "ms"))

        async def via_async() -> tuple[list[float], list[float]]:
            async with cncf.AsyncHub(home=work / "home-a") as ahub:
                h = await ahub.load(echo_jar, name="echo")
                assert h.state == "ready", h.observation
                return await _interleaved_async(raw.once, lambda: ahub.call("echo.echo", [PAYLOAD]))

        floor, samples = asyncio.run(via_async())
        (f_med, f_p99), (a_med, a_p99) = _stats(floor), _stats(samples)
        rows.append(("jar: echo via AsyncHub median (target ≤ 1.5x)", a_med, f_med, "us"))
        rows.append(("jar: echo via AsyncHub p99", a_p99, f_p99, "us"))

        with cncf.Hub(home=work / "home-s") as hub:
            h = hub.load(echo_jar, name="echo")
            assert h.state == "ready", h.observation
            floor, samples = _interleaved_sync(raw.once, lambda: hub.call("echo.echo", [PAYLOAD]))
            (f_med, f_p99), (s_med, s_p99) = _stats(floor), _stats(samples)
            rows.append(("jar: echo via Hub median (target ≤ 2x)", s_med, f_med, "us"))
            rows.append(("jar: echo via Hub p99", s_p99, f_p99, "us"))

            # Load + instantiate into the warm host (the echo component keeps it warm).
            def load_time(jar: Path, entry: str, n: int) -> float:
                times = []
                for i in range(n):
                    t = time.perf_counter()
                    c = hub.load(jar, name=f"l{i}", entry=entry)
                    times.append(time.perf_counter() - t)
                    assert c.state == "ready", c.observation
                    hub.unload(f"l{i}")
                return statistics.median(times[2:]) * 1e3

            tiny = load_time(echo_jar, "bench.Echo", 22)  # the floor: a one-class jar
            if scala_jar is not None:
                rows.append(
                    (
                        "jar: Scala fat JAR load+instantiate, warm host (target ≤ 300 ms)",
                        load_time(scala_jar, "demo.scala.Inventory", 22),
                        tiny,
                        "ms",
                    )
                )
                rows.append(
                    (
                        "jar: Scala Collaborator load+instantiate, warm host",
                        load_time(scala_jar, "demo.scala.Ledger", 22),
                        tiny,
                        "ms",
                    )
                )
    finally:
        raw.close()
        gc.enable()
    return rows


if __name__ == "__main__":
    for name, value, floor, unit in main():
        ratio = value / floor if floor else float("nan")
        print(f"{name:66s} {value:9.2f} {unit}  floor {floor:8.2f} {unit}  ratio {ratio:5.2f}x")
