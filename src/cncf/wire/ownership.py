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
import shlex
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "COOKIE_VAR",
    "View",
    "decode_status",
    "kill_owned",
    "namespace_available",
    "hide_from_workers",
    "new_cookie",
    "reap_orphans",
    "view_available",
    "worker_pid",
    "wrap",
    "wrap_in_view",
]

COOKIE_VAR = "CNCF_OWNER"
_HUB = f"{os.getpid()}"
# Runs the worker as pid 2 and reports how it ended as an exit status (128+signal).
_INIT = '"$@"; exit $?'


def _succeeds(argv: list[str]) -> bool:
    """Whether a probe command runs and exits 0 (within 10 s, silently)."""
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


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
        if _succeeds([*prefix, sh, "-c", "exit 0"]):
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


# --------------------------------------------------------------------- the view
#
# What a local worker sees of the file system.  In the same ``unshare`` as its
# PID namespace the worker gets a mount namespace of its own (propagation
# private: nothing leaks back), a /proc of its own (the hub's pid has no entry
# there, so neither ``/proc/HUBPID/root`` nor ``/proc/HUBPID/fd`` leads to the
# hub's files), and, before the worker starts, the namespace's init runs one
# ``mount -a`` over a table the hub wrote:
#
# * every hidden folder (the hub's home) is covered by an empty tmpfs (0700);
# * what the worker needs is bound back through a descriptor the init opened
#   on the folder *before* covering it (``/proc/self/fd/N/<relative path>``):
#   its own temporary folder (read-write), the shared cache (read-only: the
#   environments, zipapps and the JVM host are code every component runs),
#   its working folder and artifacts (read-only);
# * a cache outside the home is made read-only in place;
# * every hidden file (the serving hub's token file outside the home) is
#   covered by ``/dev/null``, last, so that no bound-back folder shows it.
#
# Then the init returns to the working folder by name (a covered folder must
# not stay reachable as the current directory) and runs the worker through a
# step that drops what could undo the view: as root, ``setpriv`` removes
# CAP_SYS_ADMIN (mount, umount, setns), CAP_DAC_READ_SEARCH
# (``open_by_handle_at`` reaches files under any mount), CAP_SYS_MODULE and
# CAP_SYS_RAWIO from the bounding set; unprivileged, the namespace is a user
# namespace where the init is root, and the worker runs in a nested user
# namespace as the hub's own uid, without capabilities.  Either way a new
# user namespace the worker makes cannot unmount the covers: the kernel locks
# mounts a less privileged namespace inherits.

_HIDDEN: set[str] = set()
_DROPPED_CAPS = "-sys_admin,-dac_read_search,-sys_module,-sys_rawio"


def hide_from_workers(path: str | os.PathLike[str]) -> None:
    """Cover ``path`` (a file or a folder) in the view of every worker started from now on."""
    _HIDDEN.add(os.path.abspath(os.fspath(path)))


@dataclass(frozen=True)
class View:
    """What a worker must not see, and what it must see again.

    ``hide``: folders covered by an empty tmpfs, files by ``/dev/null``.
    ``keep``: ``(path, writable)`` shown again where a hidden folder covers
    them (a path that would show a hidden one whole is left covered); a
    read-only one outside every hidden folder is made read-only in place when
    ``protect`` says so (the shared cache).
    """

    hide: tuple[str, ...]
    keep: tuple[tuple[str, bool], ...] = ()
    protect: tuple[str, ...] = ()

    @classmethod
    def for_worker(
        cls,
        home: str | os.PathLike[str] | None,
        *,
        tmpdir: str,
        cache: str | os.PathLike[str] | None,
        cwd: str | None = None,
        paths: Iterable[str] = (),
    ) -> View:
        """The hub's home hidden (and every path :func:`hide_from_workers` named);
        the worker's own ``tmpdir`` (read-write), the ``cache``, ``cwd`` and
        ``paths`` (read-only) shown."""
        hide = [os.path.abspath(os.fspath(home))] if home is not None else []
        hide += sorted(_HIDDEN)
        keep: list[tuple[str, bool]] = [(tmpdir, True)]
        protect: list[str] = []
        if cache is not None:
            keep.append((os.fspath(cache), False))
            protect.append(os.path.abspath(os.fspath(cache)))
        for p in (cwd, *paths):
            if p:
                keep.append((p, False))
        return cls(tuple(hide), tuple((os.path.abspath(p), w) for p, w in keep), tuple(protect))


def _fstab(field: str) -> str:
    """A path as an fstab field (libmount's octal escapes)."""
    for ch, esc in (("\\", "\\134"), (" ", "\\040"), ("\t", "\\011"), ("\n", "\\012")):
        field = field.replace(ch, esc)
    return field


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _plan(view: View, busy_fds: Iterable[int]) -> tuple[list[str], dict[int, str]] | None:
    """(fstab lines, descriptor → hidden folder it must be opened on); None: nothing to do."""
    folders: list[str] = []
    files: list[str] = []
    for p in view.hide:
        try:
            if os.path.isdir(p):
                if not any(_under(p, f) for f in folders):
                    folders.append(p)
            elif os.path.exists(p):
                files.append(p)
        except (OSError, ValueError):
            continue
    files = [f for f in files if not any(_under(f, d) for d in folders)]  # covered with its folder
    if not folders and not files:
        return None
    # A path showing one of these whole would undo the cover.
    sensitive = [*folders, *files, *(os.path.join(f, n) for f in folders for n in _HOME_SECRETS)]
    free = [fd for fd in range(3, 10) if fd not in set(busy_fds)]
    opened: dict[str, int] = {}
    lines = [
        f"cncf-hidden {_fstab(f)} tmpfs nosuid,nodev,noexec,mode=0700,size=256k,nr_inodes=4096 0 0" for f in folders
    ]
    for path, writable in sorted(set(view.keep), key=lambda k: (k[0].count("/"), k[0])):
        if any(_under(s, path) for s in sensitive) or not os.path.isdir(path):
            continue  # folders only: a file keeps its folder's fate
        root = next((f for f in folders if _under(path, f)), None)
        opts = "bind" if writable else "bind,ro"
        if root is not None:
            if root not in opened:
                if not free:
                    continue
                opened[root] = free.pop(0)
            rel = os.path.relpath(path, root)
            lines.append(
                f"/proc/self/fd/{opened[root]}/{_fstab(rel)} {_fstab(path)} none {opts},X-mount.mkdir=0700 0 0"
            )
        elif path in view.protect and not writable:
            lines.append(f"{_fstab(path)} {_fstab(path)} none bind,ro 0 0")
    lines += [f"/dev/null {_fstab(f)} none bind,ro 0 0" for f in files]
    return lines, {fd: root for root, fd in opened.items()}


# Files and folders of a home no bound-back path may show whole (``jobs.sqlite3``
# with its journal, ``serve.token``, the other workers' folders).
_HOME_SECRETS = ("run", "serve.token", "jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm", "jobs.owners")


def _view_variants() -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(namespace prefix, capability drop before the worker), strongest first."""
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if unshare is None or shutil.which("mount") is None:
        return []
    base = ("--pid", "--fork", "--kill-child", "--mount-proc", "--propagation", "private")
    variants: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    if os.geteuid() == 0 and setpriv is not None:
        variants.append(((unshare, *base), (setpriv, "--bounding-set", _DROPPED_CAPS, "--")))
    user = (unshare, "--user", f"--map-user={os.getuid()}", f"--map-group={os.getgid()}", "--")
    variants.append(((unshare, "--user", "--map-root-user", *base), user))
    return variants


@functools.cache
def _view_support() -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The variant that hides a folder here (tried once per process), or None."""
    if _unshare_prefix() is None or os.environ.get("CNCF_MOUNT_NAMESPACE", "1") == "0":
        return None
    sh = shutil.which("sh")
    if sh is None:
        return None
    with tempfile.TemporaryDirectory(prefix="cncf-view-probe-") as probe:
        hidden = os.path.join(probe, "home")
        kept = os.path.join(hidden, "run", "w")
        os.makedirs(kept)
        with open(os.path.join(hidden, "secret"), "w") as f:
            f.write("x")
        view = View((hidden,), ((kept, True),))
        for prefix, drop in _view_variants():
            argv, table = _view_argv(prefix, drop, sh, view, (), probe, os.path.join(probe, "fstab"))
            check = f"test ! -e {shlex.quote(os.path.join(hidden, 'secret'))} && test -d {shlex.quote(kept)}"
            if _succeeds([*argv, sh, "-c", check]):
                return prefix, drop
    return None


def view_available() -> bool:
    """Whether workers get a mount namespace hiding the hub's home here."""
    return _view_support() is not None


def _view_argv(
    prefix: Sequence[str],
    drop: Sequence[str],
    sh: str,
    view: View,
    busy_fds: Iterable[int],
    cwd: str,
    table_path: str,
) -> tuple[list[str], bool]:
    """The argv before the worker's own, writing the mount table to ``table_path``; (argv, a view was set)."""
    plan = _plan(view, busy_fds)
    if plan is None:
        return [*prefix, sh, "-c", _INIT, "cncf-init", *drop], False
    lines, fds = plan
    fd = os.open(table_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    steps = [f"exec {n}<{shlex.quote(root)}" for n, root in fds.items()]
    steps.append(f"mount -a -c --fstab {shlex.quote(table_path)}")
    steps += [f"exec {n}<&-" for n in fds]
    script = " && ".join(steps)
    script = f"{{ {script}; }} || exit 125; cd -P -- {shlex.quote(cwd)} 2>/dev/null || cd /; {_INIT}"
    return [*prefix, sh, "-c", script, "cncf-init", *drop], True


def wrap_in_view(
    argv: Sequence[str], view: View, *, cwd: str | None, busy_fds: Iterable[int], table_path: str
) -> tuple[list[str], bool, bool]:
    """(argv to spawn, wrapped in a PID namespace, the view applied).

    Where the kernel lets it (:func:`view_available`), the worker also gets a
    mount namespace and /proc of its own in which ``view.hide`` is covered (see
    the notes above); ``table_path`` receives the mount table (the caller
    removes it once the worker has started).  Otherwise as :func:`wrap`.
    """
    support = _view_support()
    sh = shutil.which("sh")
    if support is None or sh is None:
        wrapped_argv, wrapped = wrap(argv)
        return wrapped_argv, wrapped, False
    prefix, drop = support
    head, viewed = _view_argv(prefix, drop, sh, view, busy_fds, cwd or os.getcwd(), table_path)
    return [*head, *argv], True, viewed
