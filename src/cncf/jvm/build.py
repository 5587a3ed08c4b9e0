"""Build the JVM host and the collaborator API jar from the project's own sources.

Both jars are compiled with the machine's ``javac`` at Java 8 language level
(``--release 8``; ``-source 8 -target 8`` for a JDK 8 compiler), with no
dependency, and cached under ``<cache>/jvm/<hash>/`` where the hash covers the
Java sources and the compiler's version: a changed source or JDK builds anew,
an unchanged one costs a directory lookup.  Builds are atomic (compiled in a
temporary folder, renamed into place) and serialised across processes by a
lock file, so parallel hubs never see a half-written jar.

The source tree (package data of ``cncf.jvm``):

- ``api/cncf/collaborator/*.java`` → ``cncf-collaborator-api.jar``: the only
  classes that cross the class-loader boundary (each component loader gets its
  own copy).
- ``launch/cncf/launch/*.java`` → ``cncf-launcher.jar``: the only jar on the
  JVM's class path; it loads the host in a loader of its own and holds the
  components' loader class, so a component walking class loaders reaches the
  launcher, never the host.
- ``host/cncf/host/*.java`` → ``cncf-host.jar`` (``Main-Class: cncf.host.Host``).

Where the JDK supports it (13+), the build also records a class-data-sharing
archive of the host's startup classes (``cncf-host.jsa``), which shortens every
later host start.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from cncf._private import private_dir
from cncf.observation import Code, Failed, Observation

_HERE = Path(__file__).resolve().parent
API_SOURCES = _HERE / "api"
HOST_SOURCES = _HERE / "host"
LAUNCH_SOURCES = _HERE / "launch"
HOST_MAIN = "cncf.host.Host"
LAUNCH_MAIN = "cncf.launch.Launcher"  # loads the host in a loader of its own (not the system loader)


@dataclasses.dataclass(frozen=True)
class JvmBuild:
    """The built artifacts and the JDK that built them."""

    host_jar: Path
    api_jar: Path
    java: str
    java_version: int
    cds_archive: Path | None
    launcher_jar: Path | None = None

    def host_argv(self, options: tuple[str, ...] = ()) -> list[str]:
        """The command line that starts a host (``options`` go before the main class)."""
        return [
            self.java,
            *startup_options(self),
            *options,
            *_main_class(self.host_jar, self.launcher_jar),
            "--api",
            str(self.api_jar),
        ]


def _main_class(host_jar: Path, launcher_jar: Path | None) -> list[str]:
    if launcher_jar is None:  # pragma: no cover - a build from before the launcher
        return ["-cp", f"{host_jar}{os.pathsep}{host_jar.with_name('cncf-launcher.jar')}", HOST_MAIN]
    return ["-cp", str(launcher_jar), LAUNCH_MAIN, "--host", str(host_jar)]


def startup_options(build: JvmBuild) -> list[str]:
    """Flags that make a short-lived, many-small-components JVM start fast."""
    opts = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss4m", "-XX:-UsePerfData", "-Dfile.encoding=UTF-8"]
    if build.cds_archive is not None and build.cds_archive.is_file():
        opts += ["-Xshare:auto", f"-XX:SharedArchiveFile={build.cds_archive}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
    else:
        opts.append("-Xshare:auto")
    return opts


def _tool(name: str) -> str:
    home = os.environ.get("JAVA_HOME")
    if home:
        p = Path(home) / "bin" / name
        if p.is_file():
            return str(p)
    found = shutil.which(name)
    if not found:
        raise Failed(
            Observation.of(
                Code.WORKER_START_FAILED,
                f"'{name}' is not on PATH (and JAVA_HOME is not set): the jar form needs a JDK "
                "(Debian: apt-get install default-jdk-headless)",
                tool=name,
            )
        )
    return str(Path(found).resolve())


def _java_version(javac: str) -> tuple[str, int]:
    out = subprocess.run([javac, "-version"], capture_output=True, text=True, check=False)
    text = (out.stdout + out.stderr).strip()
    m = re.search(r"(\d+)(?:\.(\d+))?", text)
    if not m:
        return text, 8
    major = int(m.group(1))
    if major == 1 and m.group(2):  # "1.8.0_392"
        major = int(m.group(2))
    return text, major


def _sources(root: Path) -> list[Path]:
    return sorted(root.rglob("*.java"))


def source_hash(jdk: str) -> str:
    h = hashlib.sha256(jdk.encode())
    for root in (API_SOURCES, HOST_SOURCES, LAUNCH_SOURCES):
        for p in _sources(root):
            h.update(str(p.relative_to(_HERE)).encode())
            h.update(b"\0")
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _compile(javac: str, major: int, sources: list[Path], out: Path, classpath: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    level = ["--release", "8"] if major >= 9 else ["-source", "8", "-target", "8"]
    argv = [javac, *level, "-encoding", "UTF-8", "-nowarn", "-Xlint:-options", "-g", "-parameters", "-d", str(out)]
    if classpath is not None:
        argv += ["-cp", str(classpath)]
    argv += [str(s) for s in sources]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise Failed(
            Observation.of(
                Code.WORKER_START_FAILED,
                f"compiling the JVM host failed (javac exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-2000:]}",
                tool="javac",
            )
        )


def _jar(classes: Path, target: Path, main: str | None) -> None:
    manifest = "Manifest-Version: 1.0\r\nCreated-By: cncf\r\n"
    if main:
        manifest += f"Main-Class: {main}\r\n"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", manifest + "\r\n")
        for p in sorted(classes.rglob("*.class")):
            zf.write(p, p.relative_to(classes).as_posix())


def _record_cds(java: str, host_jar: Path, api_jar: Path, archive: Path) -> Path | None:
    """Run the host once with -XX:ArchiveClassesAtExit (JDK 13+) to record its classes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNCF_FD_")}
    proc = subprocess.run(
        [
            java,
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Xss4m",
            "-XX:-UsePerfData",
            "-Dfile.encoding=UTF-8",
            "-Xshare:auto",
            f"-XX:ArchiveClassesAtExit={archive}",
            "-Xlog:cds=off",
            "-Xlog:cds+dynamic=off",
            *_main_class(host_jar, host_jar.with_name("cncf-launcher.jar")),
            "--api",
            str(api_jar),
            "--warmup",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return archive if proc.returncode == 0 and archive.is_file() else None


_MEMO: dict[str, JvmBuild] = {}


def _jdk_identity(javac: str) -> str:
    """Cheap identity of the JDK (no JVM start): the compiler's real path and mtime."""
    st = os.stat(javac)
    return f"{javac}|{st.st_size}|{st.st_mtime_ns}"


def is_built(cache_dir: Path) -> bool:
    """Whether :func:`ensure_built` would return without compiling (best effort)."""
    if str(cache_dir) in _MEMO:
        return True
    try:
        key = source_hash(_jdk_identity(_tool("javac")))
    except Failed:
        return False
    return (Path(cache_dir) / "jvm" / key / "cncf-host.jar").is_file()


def ensure_built(cache_dir: Path) -> JvmBuild:
    """Return the cached build for the current sources and JDK, building it if needed.

    Raises ``Failed`` (``worker_start_failed``) when no JDK is available or
    compilation fails.
    """
    memo = _MEMO.get(str(cache_dir))
    if memo is not None and memo.host_jar.is_file():
        return memo
    javac = _tool("javac")
    java = _tool("java")
    key = source_hash(_jdk_identity(javac))
    root = (Path(cache_dir) / "jvm").resolve()  # real paths: the CDS archive records them
    final = root / key
    host_jar, api_jar = final / "cncf-host.jar", final / "cncf-collaborator-api.jar"
    cds = final / "cncf-host.jsa"

    def result() -> JvmBuild:
        version = (final / "java-version").read_text().strip() if (final / "java-version").is_file() else "8"
        launcher = final / "cncf-launcher.jar"
        b = JvmBuild(
            host_jar,
            api_jar,
            java,
            int(version or 8),
            cds if cds.is_file() else None,
            launcher if launcher.is_file() else None,
        )
        _MEMO[str(cache_dir)] = b
        return b

    if host_jar.is_file() and api_jar.is_file():
        return result()
    private_dir(root)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if host_jar.is_file() and api_jar.is_file():
            return result()
        _, major = _java_version(javac)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            (tmp / "java-version").write_text(str(major))
            _compile(javac, major, _sources(API_SOURCES), tmp / "api-classes", None)
            # The launcher jar holds the components' loader class (cncf.launch.Isolation),
            # which the host links to through its loader's parent, the system loader.
            _compile(javac, major, _sources(LAUNCH_SOURCES), tmp / "launch-classes", None)
            _compile(javac, major, _sources(HOST_SOURCES), tmp / "host-classes", tmp / "launch-classes")
            _jar(tmp / "launch-classes", tmp / "cncf-launcher.jar", LAUNCH_MAIN)
            shutil.rmtree(tmp / "launch-classes")
            _jar(tmp / "api-classes", tmp / "cncf-collaborator-api.jar", None)
            _jar(tmp / "host-classes", tmp / "cncf-host.jar", HOST_MAIN)
            shutil.rmtree(tmp / "api-classes")
            shutil.rmtree(tmp / "host-classes")
            if major >= 13:
                # Paths recorded in the archive must be the final ones.
                tmp.rename(final)
                tmp = final
                if _record_cds(java, host_jar, api_jar, cds) is None:
                    cds.unlink(missing_ok=True)
            else:
                tmp.rename(final)
        except BaseException:
            if tmp != final:
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                shutil.rmtree(final, ignore_errors=True)
            raise
    return result()


def _main(argv: list[str]) -> int:  # pragma: no cover - used by examples' build scripts
    """``python -m cncf.jvm.build [--api-jar | --host-jar] [CACHE_DIR]``: build (if
    needed) and print the paths; the default cache is the hub's."""
    args = [a for a in argv if not a.startswith("--")]
    if args:
        cache = Path(args[0])
    else:
        from cncf.paths import cache_dir, default_home

        cache = cache_dir(default_home())
    try:
        b = ensure_built(cache)
    except Failed as exc:
        print(exc.observation.message, file=sys.stderr)
        return 1
    if "--api-jar" in argv:
        print(b.api_jar)
    elif "--host-jar" in argv:
        print(b.host_jar)
    else:
        print(f"host: {b.host_jar}\napi:  {b.api_jar}\ncds:  {b.cds_archive}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1:]))
