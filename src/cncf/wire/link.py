"""The worker link: what the hub holds for one worker process, wherever it runs.

A boundary talks to its worker through a :class:`~cncf.wire.channel.Channel`
(frames, request ids, replies) and watches it through a *link*: is it alive,
what did it print, how did it end, end it.  Two links exist, as execnet's
``IO`` has a popen and a socket flavour behind one interface
(``execnet/gateway_base.py``):

* :class:`~cncf.wire.process.WorkerProcess`: a child process of the hub over
  pipes (pidfd for its exit, capture files for its output, a process group,
  a PID namespace and an ownership cookie to end it);
* :class:`~cncf.placement.remote.RemoteWorker`: a process on a Ray node over
  TCP (the node's heartbeat and exit status, output copied from sockets, the
  node actor to end it).

:class:`WorkerLink` is the contract the boundaries use; :class:`LinkCore` is
what both links share and write once: the ready handshake
(:meth:`LinkCore.greet`), the rule that turns a death into an Observation
(:meth:`LinkCore.declare_dead`: ``worker_crashed``, ``out_of_memory``, or
``node_lost`` when the machine hosting it was lost), the capture files a
call's output is attributed from, and the worker's private temporary folder
(:func:`make_tmpdir`), removed when the worker ends.

What a link adds is its transport, the methods :class:`LinkCore` declares
abstract: how to kill the worker, how to close it, its memory figure, whether
it exited unnoticed, and where it lives.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from cncf import limits
from cncf.observation import Cause, Code, Failed, Observation, Stage
from cncf.wire import ownership
from cncf.wire.channel import Channel, describe_exit
from cncf.wire.frames import PROTOCOL_VERSION

__all__ = [
    "LOCAL_PLACEMENT",
    "LinkCore",
    "WorkerLink",
    "make_tmpdir",
    "remove_tree",
    "run_dir",
    "sweep_run_dir",
]

#: ``inspect``'s ``placement`` of a worker on this machine.
LOCAL_PLACEMENT: dict[str, Any] = {"engine": "local", "node_id": None, "address": None}
#: After a start timeout's kill, how long to wait for the exit status (for the report).
_KILL_SETTLE = 5.0
_TAIL = 4000
_CAPTURE_CAP = 64 * 1024 * 1024
_OOM_SIGNS = ("MemoryError", "Cannot allocate memory", "OutOfMemoryError", "out of memory", "std::bad_alloc")


class WorkerLink(Protocol):
    """What a boundary may use of its worker, local or placed (the one contract)."""

    label: str
    channel: Channel
    hello: dict[str, Any]
    pid: int  # the worker's own pid as the hub sees it (not a PID namespace's wrapper)
    returncode: int | None  # how it ended (a signal as a negative number); None while it lives
    kill_reason: str | None  # why the hub ended it, when it did (shown in the crash Observation)
    tmpdir: str  # its private temporary folder ("" when the node provides one)

    @property
    def alive(self) -> bool: ...

    @property
    def placement(self) -> dict[str, Any]: ...

    @property
    def on_event(self) -> Callable[[dict[str, Any]], None] | None: ...

    @on_event.setter
    def on_event(self, fn: Callable[[dict[str, Any]], None] | None) -> None: ...

    def exited_unnoticed(self) -> bool:
        """Whether it has exited although the event loop has not heard yet (an idle sync hub)."""
        ...

    def take_output(self) -> tuple[str, str]:
        """(stdout, stderr) it wrote since the last take, bounded."""
        ...

    def output_tail(self, limit: int = _TAIL) -> str: ...

    def rss_kb(self) -> int | None: ...

    def kill(self) -> None:
        """End it now (SIGKILL to its process group); its death is reported as usual."""
        ...

    async def close(self, grace: float = 2.0) -> None:
        """SHUTDOWN, kill after ``grace``, reap, remove its files and temporary folder."""
        ...


# ---------------------------------------------------------------------------
# Private temporary folders
# ---------------------------------------------------------------------------


def run_dir(home: Path) -> Path:
    """The hub's run folder, ``HOME/run`` (0700): the workers' temporary folders live there."""
    from cncf._private import private_dir

    return private_dir(home / "run")


def make_tmpdir(home: Path | None) -> str:
    """A new private (0700) temporary folder for one worker, under the hub's run
    folder (``HOME/run/w<hub pid>-<random>``), or the system's temporary folder
    when no home is given.  The link that receives it removes it when the worker ends."""
    parent = run_dir(home) if home is not None else None
    return tempfile.mkdtemp(prefix=f"w{os.getpid()}-", dir=parent)


def sweep_run_dir(home: Path) -> int:
    """Remove the temporary folders that hubs which died (``kill -9``) left in
    ``HOME/run``; how many.  A folder whose hub process still lives is kept."""
    root = home / "run"
    removed = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        pid = name[1:].partition("-")[0]
        if not (name.startswith("w") and pid.isdigit()) or int(pid) == os.getpid():
            continue
        if os.path.exists(f"/proc/{pid}"):
            continue
        remove_tree(entry.path)
        removed += 1
    return removed


def remove_tree(path: str) -> None:
    """Remove a worker's folder whatever it left there: read-only folders are
    made writable first; symlinks are removed, never followed."""

    def retry(fn: Callable[..., Any], p: str, _exc: object) -> None:
        parent = os.path.dirname(p)
        with contextlib.suppress(OSError):
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IRWXU)
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)

    if path and os.path.lexists(path):
        shutil.rmtree(path, onerror=retry)
        if os.path.lexists(path):  # a folder made unreadable (0o000): open it up and try again
            with contextlib.suppress(OSError):
                for here, dirs, _files in os.walk(path):
                    for d in dirs:
                        with contextlib.suppress(OSError):
                            os.chmod(os.path.join(here, d), stat.S_IRWXU)
            shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------
# What both links share
# ---------------------------------------------------------------------------


class LinkCore(abc.ABC):
    """The link machinery written once (see the module docstring).

    A link fills ``channel`` and the capture descriptors when it starts, resolves
    ``_started`` with the worker's pid once the process exists, calls
    :meth:`greet`, and reports what it observes: :meth:`exit_observed` when the
    process is gone, ``lost`` + :meth:`declare_dead` when the machine is.
    """

    channel: Channel

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.hello: dict[str, Any] = {}
        self.pid = 0
        self.returncode: int | None = None
        self.kill_reason: str | None = None
        self.memory_limit: int | None = None
        self.lost: str | None = None  # why the machine hosting the worker is considered lost
        self.tmpdir = ""
        self.limits = limits.current()  # the bounds in force when the worker started
        self.cookie = ownership.new_cookie()
        self._argv: list[str] | None = None  # named in start failures (local links)
        self._out_fd = self._err_fd = -1
        self._out_pos = self._err_pos = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started: asyncio.Future[int] | None = None
        self._exited: asyncio.Future[None] | None = None
        self._on_exit: Callable[[Any], None] | None = None
        self._tmp_removal: asyncio.Future[None] | None = None
        self.channel = None  # type: ignore[assignment]  # set when the link starts

    # ------------------------------------------------------------ transport

    @abc.abstractmethod
    def kill(self) -> None: ...

    @abc.abstractmethod
    async def close(self, grace: float = 2.0) -> None: ...

    @abc.abstractmethod
    def rss_kb(self) -> int | None: ...

    @abc.abstractmethod
    def exited_unnoticed(self) -> bool: ...

    @property
    @abc.abstractmethod
    def placement(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _pull_output(self) -> None:
        """Bring what the worker printed into the capture files (a placed worker's
        output arrives on sockets; a local child writes them itself)."""

    # ---------------------------------------------------------------- state

    @property
    def alive(self) -> bool:
        return self.channel.dead is None and self.returncode is None

    @property
    def on_event(self) -> Callable[[dict[str, Any]], None] | None:
        return self.channel.on_event

    @on_event.setter
    def on_event(self, fn: Callable[[dict[str, Any]], None] | None) -> None:
        self.channel.on_event = fn

    def _where(self) -> dict[str, Any]:
        """Where a placed worker runs, for its Observations (nothing for a local one)."""
        d = self.placement
        if d.get("engine", "local") == "local":
            return {}
        return {"node_id": d.get("node_id"), "node_address": d.get("address")}

    # ------------------------------------------------------------- handshake

    async def greet(self, start_timeout: float) -> None:
        """Wait for the process to exist, then for its HELLO; check the protocol.

        Raises ``Failed`` (``worker_start_failed``; or the link's own
        ``node_lost`` / ``worker_start_failed``) after closing the link.
        """
        assert self._started is not None
        try:
            async with asyncio.timeout(start_timeout):
                await self._started
                self.hello = await self.channel.handshake()
        except (TimeoutError, Failed) as exc:
            if isinstance(exc, Failed) and exc.observation.code in (Code.NODE_LOST, Code.WORKER_START_FAILED):
                await self.close(grace=0)
                raise
            if isinstance(exc, TimeoutError):
                self.kill_reason = "start timeout"
                self.kill()
                if self._exited is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self._exited), _KILL_SETTLE)
            what, attrs = describe_exit(self.returncode)
            tail = self.output_tail()
            await self.close(grace=0)
            extra: dict[str, Any] = {**self._where(), **attrs}
            if self._argv is not None:
                extra["argv"] = self._argv
            msg = (
                f"worker for {self.label!r} sent no HELLO within {start_timeout:g}s"
                if isinstance(exc, TimeoutError)
                else f"worker for {self.label!r} {what} before its ready handshake"
            )
            raise Failed(
                Observation.of(
                    Code.WORKER_START_FAILED,
                    msg + (f"; its output ends with:\n{tail}" if tail else ""),
                    stage=Stage.LOAD,
                    cause=Cause("WorkerExit", what, tail),
                    **extra,
                )
            ) from None
        if self.hello.get("protocol") != PROTOCOL_VERSION:
            await self.close(grace=0)
            raise Failed(
                Observation.of(
                    Code.WORKER_START_FAILED,
                    f"worker for {self.label!r} speaks protocol {self.hello.get('protocol')!r}, "
                    f"the hub speaks {PROTOCOL_VERSION}",
                    stage=Stage.LOAD,
                    **self._where(),
                )
            )

    # ----------------------------------------------------------------- death

    def exit_observed(self) -> None:
        """The process is gone: dispatch what it wrote just before (results that
        raced the exit), then fail the rest and wake whoever awaits the exit."""
        self.channel.drain()
        if self.channel.dead is None:
            self.declare_dead()
        self._wake_exit()

    def declare_dead(self) -> None:
        """The one death rule: every request in flight (and a start still awaited)
        fails with the Observation that says how the worker ended; the owner's
        ``on_exit`` runs once; the temporary folder goes."""
        if self.channel.dead is not None:
            return
        self.fail_all(self.death_observation())
        self._forget_tmpdir()
        if self._on_exit is not None:
            cb, self._on_exit = self._on_exit, None
            cb(self)

    def death_observation(self) -> Observation:
        """``node_lost`` (retryable, naming the node) when the machine was lost;
        otherwise ``worker_crashed`` — ``out_of_memory`` when a memory-limited worker's
        last words say so — with the exit code or signal and the output tail."""
        where = self._where()
        if self.lost is not None:
            return Observation.of(
                Code.NODE_LOST,
                f"the node {where.get('node_address')} ({str(where.get('node_id'))[:12]}) hosting {self.label!r} "
                f"was lost: {self.lost}",
                stage=Stage.EXECUTE,
                cause=Cause("NodeLost", self.lost, ""),
                pid=self.pid,
                **where,
            )
        what, attrs = describe_exit(self.returncode)
        tail = self.output_tail()
        oom = bool(self.memory_limit) and not self.kill_reason and any(s in tail for s in _OOM_SIGNS)
        reason = f" ({self.kill_reason})" if self.kill_reason else ""
        return Observation.of(
            Code.OUT_OF_MEMORY if oom else Code.WORKER_CRASHED,
            f"worker for {self.label!r} {what}{reason}" + (f"; its output ends with:\n{tail}" if tail else ""),
            stage=Stage.EXECUTE,
            cause=Cause("WorkerExit", what, tail),
            pid=self.pid,
            **where,
            **attrs,
        )

    def fail_all(self, obs: Observation) -> None:
        """Fail every request in flight with ``obs``, and a start still awaited."""
        self.channel.fail_all(obs)
        started = self._started
        if started is not None and not started.done():
            started.set_exception(Failed(obs))
            started.exception()  # retrieved: nobody may be awaiting it any more

    def _wake_exit(self) -> None:
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(None)

    def _closed_by_hub(self) -> None:
        if self.channel.dead is None:
            self.fail_all(Observation.of(Code.HUB_CLOSED, f"worker for {self.label!r} was closed", stage=Stage.EXECUTE))

    # ------------------------------------------------------ temporary folder

    def _forget_tmpdir(self) -> None:
        """Start removing the temporary folder off the event loop (the worker is gone)."""
        path, self.tmpdir = self.tmpdir, ""
        if not path:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            remove_tree(path)
            return
        self._tmp_removal = loop.run_in_executor(None, remove_tree, path)

    async def _remove_tmpdir(self) -> None:
        """Remove the temporary folder and wait until it is gone."""
        path, self.tmpdir = self.tmpdir, ""
        if path:
            await asyncio.to_thread(remove_tree, path)
        pending = self._tmp_removal  # kept: every close awaits it (a host's close may run twice at once)
        if pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)

    # ---------------------------------------------------------------- output

    def _take(self, fd: int, pos: int) -> tuple[str, int]:
        if fd < 0:
            return "", pos
        size = os.fstat(fd).st_size
        if size <= pos:
            return "", size if size < pos else pos
        return _bounded(fd, pos, size, self.limits.output_bytes), size

    def take_output(self) -> tuple[str, str]:
        """(stdout, stderr) the process wrote since the last take."""
        self._pull_output()
        out_fd, err_fd = self._out_fd, self._err_fd
        if (
            out_fd >= 0
            and err_fd >= 0
            and os.fstat(out_fd).st_size == self._out_pos
            and os.fstat(err_fd).st_size == self._err_pos
        ):
            return "", ""  # the common case: nothing printed
        out, self._out_pos = self._take(self._out_fd, self._out_pos)
        err, self._err_pos = self._take(self._err_fd, self._err_pos)
        if self._out_pos > _CAPTURE_CAP or self._err_pos > _CAPTURE_CAP:
            for fd in (self._out_fd, self._err_fd):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, 0)
            self._out_pos = self._err_pos = 0
        return out, err

    def output_tail(self, limit: int = _TAIL) -> str:
        """The last ``limit`` characters of stderr (then stdout) for crash reports."""
        self._pull_output()
        parts = []
        for fd in (self._err_fd, self._out_fd):
            if fd < 0:
                continue
            with contextlib.suppress(OSError):
                size = os.fstat(fd).st_size
                start = max(0, size - limit)
                parts.append(os.pread(fd, size - start, start).decode("utf-8", "replace"))
        return "\n".join(p.strip() for p in parts if p.strip())[-limit:]

    def _close_captures(self) -> None:
        for attr in ("_out_fd", "_err_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, attr, -1)


def _bounded(fd: int, start: int, end: int, limit: int) -> str:
    """Captured bytes ``[start, end)`` of one call: whole when they fit in
    ``limit``, else the head and the tail with a line saying how much was dropped
    (a component printing gigabytes costs the hub ``limit`` bytes, not gigabytes)."""
    size = end - start
    if size <= limit:
        return os.pread(fd, size, start).decode("utf-8", "replace")
    half = max(limit // 2, 1)
    head = os.pread(fd, half, start).decode("utf-8", "replace")
    tail = os.pread(fd, half, end - half).decode("utf-8", "replace")
    dropped = size - 2 * half
    return (
        f"{head}\n[cncf: {dropped} bytes of output dropped here; the first and last {half} "
        f"bytes are kept (CNCF_MAX_OUTPUT={limit})]\n{tail}"
    )
