"""Private Python environments built with uv, cached by content hash.

A component that declares ``requirements`` or ships wheels gets a virtual
environment of its own, built by ``uv`` from its base interpreter.  The
environment is identified by a hash of what determines its content — the
interpreter (real path, size, mtime), the sorted requirement strings and the
bytes of every wheel — so two components with the same needs share one
environment, and the next load (or the next hub) finds it ready at once.

Building happens in a temporary sibling folder which is renamed into place
only when complete: a crash mid-build never leaves a half environment under
the final name, and two hubs racing on the same hash both end up using the
one that won the rename (the loser deletes its copy).

The build obeys the trust rules (brief section 13), because building an
sdist runs its build backend — code from the package:

* uv and every build backend run with the allow-list of the hub's environment
  (:data:`~cncf.boundaries._environment_policy.ALLOWED`, ``LC_*``), plus
  uv's own configuration (``UV_*``), proxies and TLS trust settings: never
  the hub's credentials (``AWS_SECRET_ACCESS_KEY``, tokens);
* inside the same ownership as a worker (:mod:`cncf.wire.ownership`): a PID
  namespace where the kernel allows it, a session of its own and the
  ``CNCF_OWNER`` cookie, so a build backend's children end with the build;
* under a time limit (``build_timeout`` in the manifest or the hub file's
  ``[hub]`` table; :data:`DEFAULT_BUILD_TIMEOUT`), and killed — grandchildren
  included — when it is exceeded or when the load is cancelled (``hub.close()``);
  the limit also travels with the build (coreutils ``timeout -s KILL``), so a
  build whose hub was killed (``kill -9``) still ends within it.

Direct references (``pkg @ https://…``) in a downloaded manifest are refused
before any of this, in :mod:`cncf.manifest` (``allow_direct_references``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cncf._private import private_dir
from cncf.boundaries._environment_policy import ALLOWED
from cncf.observation import Code, Failed, Observation, Stage
from cncf.wire import ownership

#: Seconds an environment build may take when neither the manifest nor the hub file says.
DEFAULT_BUILD_TIMEOUT = 900.0
#: What uv needs beyond the worker allow-list: its own settings, proxies, TLS trust.
_BUILD_PREFIXES = ("LC_", "UV_")
_BUILD_NAMES = frozenset(
    {
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
    }
)


def build_environment() -> dict[str, str]:
    """The environment uv (and the build backends it runs) gets: the allow-list only."""
    env = {k: v for k, v in os.environ.items() if k in ALLOWED or k in _BUILD_NAMES or k.startswith(_BUILD_PREFIXES)}
    env.update(NO_COLOR="1", UV_NO_PROGRESS="1", UV_PYTHON_DOWNLOADS="never")
    return env


_FORMAT = 1  # bump when the layout of a cached environment changes
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_RESOLUTION = (
    "No solution found",
    "not found in the package registry",
    "Failed to parse",
    "no version of",
    "Because ",
    "was not found in the provided package locations",
    "is not a valid",
    "Distribution not found",
)
#: uv's own progress lines: the CLI shows these while an environment builds.
_STATUS = (
    "Resolved ",
    "Prepared ",
    "Installed ",
    "Uninstalled ",
    "Audited ",
    "Downloading ",
    "Downloaded ",
    "Building ",
    "Built ",
)
#: Lines that say why uv failed (its diagnostics), kept whole in the excerpt.
_WHY = (
    "×",
    "╰─▶",
    "├─▶",
    "error:",
    "cause:",
    "hint:",
    "help:",
    "Caused by:",
    "Because ",
    "And because ",
    "No solution found",
)
_TAIL = 12  # the last lines of a build backend's output (where a traceback ends)
_MAX_EXCERPT = 40


def explain(lines: Sequence[str]) -> tuple[str, int]:
    """The lines of uv's output that explain a failure, and how many were left out.

    uv's own diagnostics (``×``, ``╰─▶``, ``error:``, ``hint:``) are kept, and
    the last lines of a failed build backend's output, where the cause stands
    (``ModuleNotFoundError``, ``AttributeError: cython_sources``); the hundreds
    of lines of compiler or setuptools chatter before them are not.
    """
    if len(lines) <= _MAX_EXCERPT:
        return "\n".join(lines).strip(), 0
    keep: list[int] = [i for i, ln in enumerate(lines) if ln.lstrip().startswith(_WHY)]
    end = len(lines)  # the backend's output ends before uv's closing hints
    while end > 0 and lines[end - 1].lstrip().startswith(("hint:", "help:")):
        end -= 1
    keep.extend(range(max(0, end - _TAIL), end))
    chosen = sorted(set(keep))[-_MAX_EXCERPT:]
    out: list[str] = []
    last = -1
    for i in chosen:
        if i != last + 1:
            out.append(f"  [... {i - last - 1} lines ...]")
        out.append(lines[i])
        last = i
    if last < len(lines) - 1:
        out.append(f"  [... {len(lines) - 1 - last} lines ...]")
    return "\n".join(out).strip(), len(lines) - len(chosen)


_locks: dict[str, asyncio.Lock] = {}


def uv_binary() -> str | None:
    """The ``uv`` executable: the one shipped with the ``uv`` package, else PATH."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except Exception:
        return shutil.which("uv")


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def environment_key(
    interpreter: str, requirements: Sequence[str], wheels: Sequence[Path], build_constraints: Sequence[str] = ()
) -> str:
    """The content hash naming an environment."""
    real = os.path.realpath(interpreter)
    st = os.stat(real)
    doc: dict[str, Any] = {
        "format": _FORMAT,
        "interpreter": [real, st.st_size, int(st.st_mtime)],
        "requirements": sorted(r.strip() for r in requirements),
        "wheels": sorted((w.name, file_digest(w)) for w in wheels),
    }
    if build_constraints:  # only then: existing environments keep their hash
        doc["build_constraints"] = sorted(c.strip() for c in build_constraints)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


class EnvironmentCache:
    """Builds and finds environments under ``root`` (``<cache_dir>/envs``)."""

    def __init__(self, root: Path, progress: Callable[[str], None] | None = None) -> None:
        self.root = root
        self._progress = progress
        self._running: dict[asyncio.subprocess.Process, str] = {}  # builds in progress: process -> cookie
        self._closed = False

    async def close(self) -> None:
        """End every build in progress (the hub is closing): their loads fail with
        ``environment_failed``, and no build backend outlives the hub."""
        self._closed = True
        running, self._running = dict(self._running), {}
        await asyncio.gather(*(_end(proc, cookie) for proc, cookie in running.items()), return_exceptions=True)

    def _say(self, line: str) -> None:
        if self._progress is not None:
            with contextlib.suppress(Exception):
                self._progress(line)

    async def ensure(
        self,
        interpreter: str,
        requirements: Sequence[str],
        wheels: Sequence[Path],
        *,
        label: str,
        build_constraints: Sequence[str] = (),
        build_timeout: float | None = None,
    ) -> Path:
        """The environment's folder, built now if it is not cached yet (within
        ``build_timeout`` seconds, default :data:`DEFAULT_BUILD_TIMEOUT`).
        ``build_constraints`` pin what uv may use to build an sdist (``uv pip install
        --build-constraints``): an old package's build needs ``setuptools<58``, ``cython<3``.

        Raises ``Failed``: ``dependency_unresolved`` with uv's own message when
        the requirements cannot be resolved, ``environment_failed`` otherwise.
        """
        # Off the loop: hashing a large wheel must not hold up the hub's other calls.
        key = await asyncio.to_thread(environment_key, interpreter, requirements, wheels, build_constraints)
        final = self.root / key[:32]
        if venv_python(final).exists():
            return final
        lock = _locks.setdefault(key, asyncio.Lock())
        async with lock:
            if venv_python(final).exists():
                return final
            return await self._build(
                key, final, interpreter, requirements, wheels, label, build_constraints, build_timeout
            )

    async def _build(
        self,
        key: str,
        final: Path,
        interpreter: str,
        requirements: Sequence[str],
        wheels: Sequence[Path],
        label: str,
        build_constraints: Sequence[str] = (),
        build_timeout: float | None = None,
    ) -> Path:
        uv = uv_binary()
        if uv is None:
            raise _fail(
                Code.ENVIRONMENT_FAILED,
                f"[{label}] uv is not installed: cannot build the component's environment (pip install uv)",
            )
        try:
            private_dir(self.root)
        except OSError as exc:
            raise _fail(Code.ENVIRONMENT_FAILED, f"[{label}] cannot create {self.root}: {exc}") from None
        tmp = self.root / f".build-{key[:12]}-{uuid.uuid4().hex[:8]}"
        what = ", ".join([*requirements, *(w.name for w in wheels)])
        self._say(f"[{label}] building environment {key[:12]} with uv: {what}")
        started = time.monotonic()
        limit = DEFAULT_BUILD_TIMEOUT if build_timeout is None else build_timeout
        deadline = started + limit
        try:
            await self._run(
                [uv, "venv", "--quiet", "--no-project", "--relocatable", "--python", interpreter, str(tmp)],
                label,
                Code.ENVIRONMENT_FAILED,
                deadline,
                limit,
            )
            if requirements or wheels:
                extra: list[str] = []
                if build_constraints:
                    pins = tmp / "cncf-build-constraints.txt"
                    pins.write_text("".join(c.strip() + "\n" for c in build_constraints), "utf-8")
                    extra = ["--build-constraints", str(pins)]
                await self._run(
                    [
                        uv,
                        "pip",
                        "install",
                        "--python",
                        str(venv_python(tmp)),
                        *extra,
                        *(str(w) for w in wheels),
                        *requirements,
                    ],
                    label,
                    None,
                    deadline,
                    limit,
                )
            try:
                os.rename(tmp, final)
            except OSError as exc:
                if not venv_python(final).exists():  # else someone else won the race: use theirs
                    raise _fail(
                        Code.ENVIRONMENT_FAILED, f"[{label}] cannot move the environment into place: {exc}"
                    ) from None
        except OSError as exc:
            raise _fail(Code.ENVIRONMENT_FAILED, f"[{label}] building the environment failed: {exc}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._say(f"[{label}] environment {key[:12]} ready in {time.monotonic() - started:.1f}s")
        return final

    async def _run(self, argv: list[str], label: str, code: Code | None, deadline: float, limit: float) -> None:
        env = build_environment()
        cookie = ownership.new_cookie()
        env[ownership.COOKIE_VAR] = cookie  # inherited by every build backend uv starts
        # The deadline travels with the build too (coreutils ``timeout``): if the hub dies
        # (kill -9) mid-build, nobody is left to enforce it, and the build must still end.
        bound = shutil.which("timeout")
        left = max(1, int(deadline - time.monotonic()) + 5)
        spawn, _wrapped = ownership.wrap([bound, "-s", "KILL", str(left), *argv] if bound else argv)
        try:
            proc = await asyncio.create_subprocess_exec(
                *spawn,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own group: ended as a whole
            )
        except OSError as exc:
            raise _fail(Code.ENVIRONMENT_FAILED, f"[{label}] cannot run uv: {exc}") from None
        self._running[proc] = cookie
        if self._closed:
            await _end(proc, cookie)
        lines: list[str] = []
        assert proc.stdout is not None
        stdout = proc.stdout
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                async for raw in stdout:
                    line = _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip()
                    if line:
                        lines.append(line)
                        if line.startswith(_STATUS):  # uv's own steps; errors come once, in the Observation
                            self._say(f"[{label}] {line.strip()}")
                status = await proc.wait()
        except TimeoutError:
            await _end(proc, cookie)
            excerpt, _dropped = explain(lines)
            raise _fail(
                Code.ENVIRONMENT_FAILED,
                f"[{label}] building the environment did not finish within {limit:g}s (build_timeout); "
                "uv and its build backends were ended",
                limit="build_timeout",
                build_timeout=limit,
                resolver_output=excerpt,
            ) from None
        except BaseException:
            await asyncio.shield(_end(proc, cookie))
            raise
        finally:
            self._running.pop(proc, None)
        await _end(proc, cookie)  # a build backend's leftover daemon ends with the build
        if self._closed:
            raise _fail(Code.ENVIRONMENT_FAILED, f"[{label}] the hub closed while the environment was being built")
        if status == 0:
            return
        text = "\n".join(lines).strip()
        if code is None:
            code = Code.DEPENDENCY_UNRESOLVED if any(s in text for s in _RESOLUTION) else Code.ENVIRONMENT_FAILED
        step = "resolving and installing the requirements" if argv[1] == "pip" else "creating the venv"
        excerpt, dropped = explain(lines)
        log = self._keep_log(label, text) if dropped else None
        where = f"; uv's whole output ({len(lines)} lines): {log}" if log else ""
        first = next((ln.strip() for ln in lines if ln.lstrip().startswith(_WHY)), lines[-1] if lines else "")
        # The excerpt travels once, as resolver_output (the CLI prints it below the message).
        raise _fail(
            code,
            f"[{label}] uv failed {step} (exit {status}): {first}{where}",
            resolver_output=excerpt,
            exit_code=status,
            dropped_lines=dropped,
            log=log,
        )

    def _keep_log(self, label: str, text: str) -> str | None:
        """uv's whole output in a file under the cache (the Observation keeps an excerpt)."""
        try:
            logs = self.root / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            path = logs / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', label)}-{uuid.uuid4().hex[:8]}.log"
            path.write_text(text + "\n", "utf-8")
            return str(path)
        except OSError:
            return None


async def _end(proc: asyncio.subprocess.Process, cookie: str) -> None:
    """End uv and everything it started: its group (the PID namespace with it),
    then whatever still carries the build's cookie."""
    if proc.returncode is None:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    await asyncio.to_thread(ownership.kill_owned, cookie)


def _fail(code: Code, message: str, **attributes: Any) -> Failed:
    return Failed(Observation.of(code, message, stage=Stage.LOAD, **attributes))
