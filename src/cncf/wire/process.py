"""A local worker process: spawn, output capture, liveness, kill.

Shared by every out-of-process form (python, command, jar).  The protocol
itself travels on a :class:`~cncf.wire.channel.Channel` over three pipes;
this module owns what is specific to a child process on this machine.

Design notes
------------
* Frames travel on dedicated pipes (fds named in the environment), never on
  fd 0/1/2, so a component's prints cannot corrupt them (execnet uses the same
  trick with its popen IO).  The process's stdout/stderr go to two capture
  files the hub reads after each reply: no reader thread, no lost output, and
  attribution to the call that was running.
* Process exit is observed through a pidfd, so a worker that dies while the
  hub is idle is reaped promptly and every request in flight fails at once
  with ``worker_crashed`` (exit code or signal, and the output tail).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cncf import limits
from cncf.observation import Cause, Code, Failed, Observation, Stage
from cncf.wire import ownership
from cncf.wire.channel import Channel, describe_exit
from cncf.wire.frames import PROTOCOL_VERSION, Kind

__all__ = ["WorkerProcess"]

_TAIL = 4000
_CAPTURE_CAP = 64 * 1024 * 1024


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


class WorkerProcess:
    """One child process speaking the wire protocol on ``self.channel``."""

    channel: Channel

    def __init__(self) -> None:  # use spawn()
        self.label = ""
        self.hello: dict[str, Any] = {}
        self.pid = 0
        self.returncode: int | None = None
        self.kill_reason: str | None = None
        self.memory_limit: int | None = None
        self.worker_pid = 0  # the worker itself (below the PID namespace's init, when wrapped)
        self.cookie = ownership.new_cookie()
        self.limits = limits.current()  # the bounds in force when the worker started
        self._wrapped = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._pidfd = -1
        self._out_fd = self._err_fd = -1
        self._out_pos = self._err_pos = 0
        self._exited: asyncio.Future[None] | None = None
        self._on_exit: Callable[[WorkerProcess], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.channel = None  # type: ignore[assignment]  # set by spawn()

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        label: str,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        memory_limit: int | None = None,
        start_timeout: float = 60.0,
        on_exit: Callable[[WorkerProcess], None] | None = None,
    ) -> WorkerProcess:
        """Start ``argv`` with the protocol pipes and wait for its HELLO.

        Raises ``Failed`` (``worker_start_failed``) when the process cannot be
        started, exits, or stays silent past ``start_timeout``.
        """
        self = cls()
        self.label = label
        self.memory_limit = memory_limit
        self._on_exit = on_exit
        loop = self._loop = asyncio.get_running_loop()
        # Capture files have no name: unlinked as soon as both ends are open, so no
        # folder is left behind whatever happens to the hub (SIGTERM, kill -9).
        capture_dir = tempfile.mkdtemp(prefix="cncf-worker-")
        try:
            out_path = os.path.join(capture_dir, "stdout")
            err_path = os.path.join(capture_dir, "stderr")
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
            out_w, err_w = os.open(out_path, flags, 0o600), os.open(err_path, flags, 0o600)
            self._out_fd, self._err_fd = os.open(out_path, os.O_RDWR), os.open(err_path, os.O_RDWR)
        finally:
            shutil.rmtree(capture_dir, ignore_errors=True)
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        ctl_r, ctl_w = os.pipe()
        child_env = dict(os.environ if env is None else env)
        argv, self._wrapped = ownership.wrap(argv)
        child_env.update(
            CNCF_OWNER=self.cookie,
            CNCF_PROTOCOL=str(PROTOCOL_VERSION),
            CNCF_FD_REQUESTS=str(req_r),
            CNCF_FD_REPLIES=str(rep_w),
            CNCF_FD_CONTROL=str(ctl_r),
            CNCF_WORKER_LABEL=label,
        )
        try:
            self._proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                pass_fds=(req_r, rep_w, ctl_r),
                env=child_env,
                cwd=cwd,
                start_new_session=True,  # a Ctrl-C to the hub is the hub's to handle
            )
        except (OSError, ValueError, TypeError) as exc:  # ValueError: a NUL byte in argv or env
            self._close_fds()
            for fd in (req_r, rep_w, ctl_r, out_w, err_w, req_w, rep_r, ctl_w):
                os.close(fd)
            raise Failed(
                Observation.of(
                    Code.WORKER_START_FAILED,
                    f"cannot start worker for {label!r} ({argv[0]!r}): {getattr(exc, 'strerror', None) or exc}",
                    stage=Stage.LOAD,
                    cause=exc,
                    argv=list(argv),
                )
            ) from None
        for fd in (req_r, rep_w, ctl_r, out_w, err_w):
            os.close(fd)
        self.pid = self.worker_pid = self._proc.pid
        if memory_limit and not self._wrapped:
            self._limit_memory()
        self.channel = Channel(label, req_w, rep_r, ctl_w, on_eof=self._on_eof, on_broken=self._on_broken)
        self._exited = loop.create_future()
        try:
            self._pidfd = os.pidfd_open(self.pid)
            loop.add_reader(self._pidfd, self._on_exit_ready)
        except OSError:  # pragma: no cover - kernels without pidfd: EOF still tells
            self._pidfd = -1
        try:
            async with asyncio.timeout(start_timeout):
                self.hello = await self.channel.handshake()
        except (TimeoutError, Failed) as exc:
            if isinstance(exc, TimeoutError):
                self.kill_reason = "start timeout"
                self.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._exited), 5)
            what, attrs = describe_exit(self.returncode)
            tail = self.output_tail()
            await self.close(grace=0)
            msg = (
                f"worker for {label!r} sent no HELLO within {start_timeout:g}s"
                if isinstance(exc, TimeoutError)
                else f"worker for {label!r} {what} before its ready handshake"
            )
            raise Failed(
                Observation.of(
                    Code.WORKER_START_FAILED,
                    msg + (f"; its output ends with:\n{tail}" if tail else ""),
                    stage=Stage.LOAD,
                    cause=Cause("WorkerExit", what, tail),
                    argv=list(argv),
                    **attrs,
                )
            ) from None
        if self._wrapped:
            self.worker_pid = ownership.worker_pid(self.pid, True)
            if memory_limit:
                self._limit_memory()
        if self.hello.get("protocol") != PROTOCOL_VERSION:
            await self.close(grace=0)
            raise Failed(
                Observation.of(
                    Code.WORKER_START_FAILED,
                    f"worker for {label!r} speaks protocol {self.hello.get('protocol')!r}, "
                    f"the hub speaks {PROTOCOL_VERSION}",
                    stage=Stage.LOAD,
                )
            )
        return self

    @property
    def alive(self) -> bool:
        return self.channel.dead is None and self.returncode is None

    @property
    def on_event(self) -> Callable[[dict[str, Any]], None] | None:
        return self.channel.on_event

    @on_event.setter
    def on_event(self, fn: Callable[[dict[str, Any]], None] | None) -> None:
        self.channel.on_event = fn

    def _limit_memory(self) -> None:
        limit = self.memory_limit
        if limit:
            with contextlib.suppress(OSError, ValueError, OverflowError):
                resource.prlimit(self.worker_pid, resource.RLIMIT_AS, (limit, limit))

    def _poll(self) -> int | None:
        """The worker's exit status (a signal as a negative number, namespace or not)."""
        assert self._proc is not None
        return ownership.decode_status(self._proc.poll(), self._wrapped)

    # ------------------------------------------------------------- liveness

    def _on_broken(self, obs: Observation) -> None:
        self.kill_reason = "protocol error"
        self.kill()

    def _on_eof(self) -> None:
        if self.channel.dead is not None:
            return
        # Let the pidfd tell us the exit status before we describe the death.
        if self.returncode is None and self._proc is not None:
            self.returncode = self._poll()
            if self.returncode is None:
                asyncio.get_running_loop().call_later(0.005, self._on_eof_settled, 0)
                return
        self._declare_dead()

    def _on_eof_settled(self, tries: int) -> None:
        if self.channel.dead is not None:
            return
        if self._proc is not None and self.returncode is None:
            self.returncode = self._poll()
            if self.returncode is None and tries < 40:
                asyncio.get_running_loop().call_later(0.005, self._on_eof_settled, tries + 1)
                return
        self._declare_dead()

    def _on_exit_ready(self) -> None:
        assert self._loop is not None
        self._loop.remove_reader(self._pidfd)
        if self._proc is not None:
            self.returncode = self._poll()
        self._exit_observed()

    def _exit_observed(self) -> None:
        """The process is gone: dispatch what it wrote just before (results that
        raced the exit), then fail the rest and wake whoever awaits the exit."""
        self.channel.drain()
        if self.channel.dead is None:
            self._declare_dead()
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(None)

    def _declare_dead(self) -> None:
        if self.channel.dead is not None:
            return
        what, attrs = describe_exit(self.returncode)
        tail = self.output_tail()
        code = Code.WORKER_CRASHED
        if self._looks_out_of_memory(tail):
            code = Code.OUT_OF_MEMORY
        reason = f" ({self.kill_reason})" if self.kill_reason else ""
        obs = Observation.of(
            code,
            f"worker for {self.label!r} {what}{reason}" + (f"; its output ends with:\n{tail}" if tail else ""),
            stage=Stage.EXECUTE,
            cause=Cause("WorkerExit", what, tail),
            pid=self.pid,
            **attrs,
        )
        self.channel.fail_all(obs)
        if self._on_exit is not None:
            cb, self._on_exit = self._on_exit, None
            cb(self)

    def _looks_out_of_memory(self, tail: str) -> bool:
        if not self.memory_limit or self.kill_reason:
            return False
        return any(
            s in tail
            for s in ("MemoryError", "Cannot allocate memory", "OutOfMemoryError", "out of memory", "std::bad_alloc")
        )

    # --------------------------------------------------------------- output

    def _take(self, fd: int, pos: int) -> tuple[str, int]:
        if fd < 0:
            return "", pos
        size = os.fstat(fd).st_size
        if size <= pos:
            return "", size if size < pos else pos
        return _bounded(fd, pos, size, self.limits.output_bytes), size

    def take_output(self) -> tuple[str, str]:
        """(stdout, stderr) the process wrote since the last take."""
        out, self._out_pos = self._take(self._out_fd, self._out_pos)
        err, self._err_pos = self._take(self._err_fd, self._err_pos)
        if self._out_pos > _CAPTURE_CAP or self._err_pos > _CAPTURE_CAP:
            self._truncate_captures()
        return out, err

    def _truncate_captures(self) -> None:
        for fd in (self._out_fd, self._err_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
        self._out_pos = self._err_pos = 0

    def output_tail(self, limit: int = _TAIL) -> str:
        """The last ``limit`` characters of stderr (then stdout) for crash reports."""
        parts = []
        for fd in (self._err_fd, self._out_fd):
            if fd < 0:
                continue
            with contextlib.suppress(OSError):
                size = os.fstat(fd).st_size
                start = max(0, size - limit)
                parts.append(os.pread(fd, size - start, start).decode("utf-8", "replace"))
        return "\n".join(p.strip() for p in parts if p.strip())[-limit:]

    def rss_kb(self) -> int | None:
        try:
            with open(f"/proc/{self.worker_pid or self.pid}/statm") as f:
                return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (OSError, ValueError, IndexError):
            return None

    # ------------------------------------------------------------ shutdown

    def kill(self) -> None:
        """SIGKILL the worker now (its death is then reported as usual)."""
        if self._proc is not None and self.returncode is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)  # the worker's own group: its children too
            except OSError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)

    async def close(self, grace: float = 2.0) -> None:
        """Ask the worker to exit, kill it after ``grace``, reap it, remove its files."""
        proc = self._proc
        if proc is not None and self.returncode is None:
            self.kill_reason = self.kill_reason or "closed by the hub"
            if grace > 0 and self.channel.dead is None:
                with contextlib.suppress(OSError):
                    self.channel.send(Kind.SHUTDOWN, {})
                if self._exited is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self._exited), grace)
            if proc.poll() is None:
                self.kill()
        if proc is not None:
            for _ in range(200):
                if proc.poll() is not None:
                    break
                await asyncio.sleep(0.005)
            else:  # pragma: no cover - a process that survives SIGKILL for a second
                proc.wait()
            self.returncode = ownership.decode_status(proc.returncode, self._wrapped)
            if not self._wrapped:  # a namespace ends with its init; otherwise look for escapees
                ownership.kill_owned(self.cookie, self.pid)
        if self.channel.dead is None:
            self.channel.fail_all(
                Observation.of(Code.HUB_CLOSED, f"worker for {self.label!r} was closed", stage=Stage.EXECUTE)
            )
        self._close_fds()

    def _close_fds(self) -> None:
        if self.channel is not None:
            self.channel.close()
        loop = self._loop
        if self._pidfd >= 0:
            if loop is not None and not loop.is_closed():
                loop.remove_reader(self._pidfd)
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd = -1
        for attr in ("_out_fd", "_err_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, attr, -1)
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(None)
