"""Process ownership: every process a component starts is the component's.

Unloading a component, a forced cancellation, the hub's exit and the hub's
death (``kill -9``) must end the worker *and everything it started*,
grandchildren that called ``setsid`` or double-forked included (brief
section 13).  What Linux offers, strongest first, and what we use:

1. **A PID namespace per worker** (``unshare --pid --fork --kill-child``;
   unprivileged through a user namespace, ``--user --map-current-user``).
   Its first process is a tiny ``sh`` that runs the worker and waits; when
   that init ends, the kernel kills every process left in the namespace, so
   no descendant can outlive the worker however it detaches.  The init also
   dies with ``unshare`` (``--kill-child`` is a parent-death signal), and
   ``unshare`` is the hub's child, killed by the hub.  On the hub's death the
   worker sees EOF on its pipes and exits, which ends the namespace.  Inside
   the namespace the hub's pid does not exist, so a component cannot signal
   the hub (``os.kill(os.getppid(), SIGKILL)`` reaches only the init, which
   ignores it).  ``sh`` is the init rather than the worker because the kernel
   shields a namespace's init from its own namespace's signals (a component's
   ``os.kill(os.getpid(), SIGKILL)`` must still kill it).  The price: a
   component sees small pids (``os.getpid()`` is 2).  The hub reports the
   worker's pid as its own machine sees it (:func:`worker_pid`, below
   ``unshare`` and the init), never the wrapper's.
2. **A process group and session per worker** (always): a forced stop kills
   the group, so plain ``fork`` / ``Popen`` children go with the worker.
3. **An ownership cookie** (always): ``CNCF_OWNER`` in every worker's
   environment, inherited by its descendants; when a worker is closed the hub
   kills every process whose environment carries its cookie (the technique of
   Jenkins' ProcessTreeKiller).  Without namespaces this is what ends
   ``setsid`` and double-fork escapees; after a ``kill -9`` of the hub the
   next hub to start (:func:`reap_orphans`) ends those whose hub is gone.

:func:`namespace_available` says which guarantee holds here; ``docs/security.md``
has the table.  ``CNCF_PID_NAMESPACE=0`` turns the namespace off (e.g. where a
component must see its real pid).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Sequence

__all__ = [
    "COOKIE_VAR",
    "decode_status",
    "kill_owned",
    "namespace_available",
    "new_cookie",
    "reap_orphans",
    "worker_pid",
    "wrap",
]

COOKIE_VAR = "CNCF_OWNER"
_HUB = f"{os.getpid()}"
# Runs the worker as pid 2 and reports how it ended as an exit status (128+signal).
_INIT = '"$@"; exit $?'


@functools.cache
def _unshare_prefix() -> tuple[str, ...] | None:
    if os.environ.get("CNCF_PID_NAMESPACE", "1") == "0":
        return None
    unshare, sh = shutil.which("unshare"), shutil.which("sh")
    if unshare is None or sh is None:
        return None
    variants: list[tuple[str, ...]] = [(unshare, "--pid", "--fork", "--kill-child")] if os.geteuid() == 0 else []
    variants.append((unshare, "--user", "--map-current-user", "--pid", "--fork", "--kill-child"))
    for prefix in variants:
        try:
            ok = (
                subprocess.run(
                    [*prefix, sh, "-c", "exit 0"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=10,
                    check=False,
                ).returncode
                == 0
            )
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return (*prefix, sh, "-c", _INIT, "cncf-init")
    return None


def namespace_available() -> bool:
    """Whether workers run in a PID namespace of their own here."""
    return _unshare_prefix() is not None


def wrap(argv: Sequence[str]) -> tuple[list[str], bool]:
    """(argv to spawn, wrapped in a PID namespace)."""
    prefix = _unshare_prefix()
    if prefix is None:
        return list(argv), False
    return [*prefix, *argv], True


def decode_status(returncode: int | None, wrapped: bool) -> int | None:
    """The worker's own status: the namespace init reports a signal as 128+N."""
    if wrapped and returncode is not None and 128 < returncode < 128 + 65:
        return -(returncode - 128)
    return returncode


def worker_pid(pid: int, wrapped: bool) -> int:
    """The worker's pid as the hub sees it (below ``unshare`` and its init)."""
    if not wrapped:
        return pid
    current = pid
    for _ in range(2):
        try:
            with open(f"/proc/{current}/task/{current}/children") as f:
                kids = f.read().split()
        except OSError:
            return pid
        if not kids:
            return pid
        current = int(kids[0])
    return current


def new_cookie() -> str:
    return f"{_HUB}:{uuid.uuid4().hex[:16]}"


def _cookies() -> dict[int, str]:
    """pid → ownership cookie of every readable process that carries one."""
    found: dict[int, str] = {}
    needle = COOKIE_VAR.encode() + b"="
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                data = f.read()
        except OSError:
            continue
        for item in data.split(b"\0"):
            if item.startswith(needle):
                found[int(name)] = item[len(needle) :].decode("ascii", "replace")
                break
    return found


def kill_owned(cookie: str, pgid: int | None = None) -> int:
    """Kill the worker's process group and every process carrying ``cookie``; how many."""
    killed = 0
    if pgid:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
            killed += 1
    if not os.path.isdir("/proc"):  # pragma: no cover - not Linux
        return killed
    for _ in range(3):  # a process may fork while we look; look again
        victims = [pid for pid, c in _cookies().items() if c == cookie]
        if not victims:
            break
        for pid in victims:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


def reap_orphans() -> int:
    """End processes left by hubs that died (``kill -9``) without a PID namespace."""
    if namespace_available() or not os.path.isdir("/proc"):
        return 0
    killed = 0
    for pid, cookie in _cookies().items():
        hub = cookie.partition(":")[0]
        if hub.isdigit() and int(hub) != os.getpid() and not os.path.exists(f"/proc/{hub}"):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed
