"""A worker process and the protocol channel to it, hub side.

Shared by every out-of-process form (python, command, jar): spawning with the
protocol pipes, the ready handshake, request/reply matching, output capture,
crash detection and reaping live here once.

Design notes
------------
* Frames travel on dedicated pipes (fds named in the environment), never on
  fd 0/1/2, so a component's prints cannot corrupt them (execnet uses the same
  trick with its popen IO).  The process's stdout/stderr go to two capture
  files the hub reads after each reply: no reader thread, no lost output, and
  attribution to the call that was running.
* Replies are read with ``loop.add_reader`` on a non-blocking pipe and matched
  to futures by request id; there is no extra thread on the hot path, so a
  round trip costs the pipe floor plus one event-loop wake-up.
* Process exit is observed through a pidfd, so a worker that dies while the
  hub is idle is reaped promptly and every request in flight fails at once
  with ``worker_crashed`` (exit code or signal, and the output tail).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cncf.observation import Cause, Code, Failed, Observation, Stage
from cncf.wire.frames import PROTOCOL_VERSION, FrameBuffer, Kind, ProtocolError, encode

if TYPE_CHECKING:
    from cncf.call import ActionCall

__all__ = ["PendingRequest", "WorkerProcess", "failure_observation", "invoke"]

_TAIL = 4000
SPIN_SECONDS = 100e-6
_CAPTURE_CAP = 64 * 1024 * 1024


def failure_observation(failure: Mapping[str, Any], stage: Stage) -> Observation:
    """The one converter from a worker's failure record to an Observation."""
    raw = str(failure.get("code") or "")
    attributes = dict(failure.get("attributes") or {})
    try:
        code = Code(raw)
    except ValueError:
        code = Code.OPERATION_FAILED
        attributes.setdefault("component_code", raw)
    cause = failure.get("cause")
    return Observation.of(
        code,
        str(failure.get("message") or raw or "the worker reported a failure"),
        stage=stage,
        cause=Cause.from_dict(cause) if isinstance(cause, Mapping) else None,
        **attributes,
    )


def describe_exit(returncode: int | None) -> tuple[str, dict[str, Any]]:
    if returncode is None:
        return "closed its channel", {}
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}", {"signal": -returncode, "signal_name": name}
    return f"exited with status {returncode}", {"exit_code": returncode}


async def invoke(
    worker: WorkerProcess,
    instance_id: Any,
    call: ActionCall,
    operation: str,
    *,
    concurrent: bool,
    in_flight: dict[str, int],
) -> dict[str, Any]:
    """The INVOKE exchange every process form shares: the request, the record
    ``call id -> request id`` that a later CANCEL needs, and the reply body."""
    pending = worker.start(
        Kind.INVOKE,
        {
            "instance": instance_id,
            "call": call.id,
            "operation": operation,
            "args": call.args,
            "kwargs": call.kwargs,
            "concurrent": concurrent,
        },
    )
    in_flight[call.id] = pending.id
    try:
        return await pending.reply(Stage.EXECUTE)
    finally:
        in_flight.pop(call.id, None)


class PendingRequest:
    __slots__ = ("id", "_future", "_worker")

    def __init__(self, worker: WorkerProcess, rid: int, future: asyncio.Future[dict[str, Any]]) -> None:
        self.id = rid
        self._future = future
        self._worker = worker

    async def reply(self, stage: Stage) -> dict[str, Any]:
        """The reply body; ``Failed`` for a failure record or a dead worker."""
        if not self._future.done():
            self._worker._spin(self._future)
        try:
            body = await self._future
        except asyncio.CancelledError:
            self._worker._pending.pop(self.id, None)
            raise
        except Failed as exc:  # a dead worker is reported at the stage of the request it broke
            obs = exc.observation
            if obs.stage is not stage and stage in obs.code.stages:
                exc.observation = dataclasses.replace(obs, stage=stage)
            raise
        if body.get("ok", True) is False:
            failure = body.get("failure") or {}
            raise Failed(
                failure_observation(failure, stage),
                stdout=str(body.get("stdout") or ""),
                stderr=str(body.get("stderr") or ""),
            )
        return body

    def done(self) -> bool:
        return self._future.done()


class WorkerProcess:
    """One child process speaking the wire protocol."""

    def __init__(self) -> None:  # use spawn()
        self.label = ""
        self.hello: dict[str, Any] = {}
        self.pid = 0
        self.returncode: int | None = None
        self.kill_reason: str | None = None
        self.memory_limit: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._req_w = self._rep_r = self._ctl_w = self._pidfd = -1
        self._out_fd = self._err_fd = -1
        self._out_pos = self._err_pos = 0
        self._capture_dir = ""
        self._frames = FrameBuffer()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._hello: asyncio.Future[dict[str, Any]] | None = None
        self._exited: asyncio.Future[None] | None = None
        self._wbuf = bytearray()
        self._dead: Observation | None = None
        self._on_exit: Callable[[WorkerProcess], None] | None = None
        self.on_event: Callable[[dict[str, Any]], None] | None = None

    # ------------------------------------------------------------------ spawn

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
        self._capture_dir = tempfile.mkdtemp(prefix="cncf-worker-")
        req_r, self._req_w = os.pipe()
        self._rep_r, rep_w = os.pipe()
        ctl_r, self._ctl_w = os.pipe()
        out_path = os.path.join(self._capture_dir, "stdout")
        err_path = os.path.join(self._capture_dir, "stderr")
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        out_w, err_w = os.open(out_path, flags, 0o600), os.open(err_path, flags, 0o600)
        self._out_fd, self._err_fd = os.open(out_path, os.O_RDONLY), os.open(err_path, os.O_RDONLY)
        child_env = dict(os.environ if env is None else env)
        child_env.update(
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
        except OSError as exc:
            self._close_fds()
            for fd in (req_r, rep_w, ctl_r, out_w, err_w):
                os.close(fd)
            shutil.rmtree(self._capture_dir, ignore_errors=True)
            raise Failed(
                Observation.of(
                    Code.WORKER_START_FAILED,
                    f"cannot start worker for {label!r} ({argv[0]!r}): {exc.strerror or exc}",
                    stage=Stage.LOAD,
                    cause=exc,
                    argv=list(argv),
                )
            ) from None
        for fd in (req_r, rep_w, ctl_r, out_w, err_w):
            os.close(fd)
        self.pid = self._proc.pid
        if memory_limit:
            with contextlib.suppress(OSError, ValueError):
                resource.prlimit(self.pid, resource.RLIMIT_AS, (memory_limit, memory_limit))
        os.set_blocking(self._rep_r, False)
        os.set_blocking(self._req_w, False)
        self._hello = loop.create_future()
        self._exited = loop.create_future()
        loop.add_reader(self._rep_r, self._on_readable)
        try:
            self._pidfd = os.pidfd_open(self.pid)
            loop.add_reader(self._pidfd, self._on_exit_ready)
        except OSError:  # pragma: no cover - kernels without pidfd: EOF still tells
            self._pidfd = -1
        try:
            async with asyncio.timeout(start_timeout):
                self.hello = await self._hello
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

    # ------------------------------------------------------------- requests

    @property
    def alive(self) -> bool:
        return self._dead is None and self.returncode is None

    def start(self, kind: Kind, body: dict[str, Any]) -> PendingRequest:
        """Send a request; its reply is awaited through the returned handle."""
        assert self._loop is not None
        self._next_id += 1
        rid = body["id"] = self._next_id
        fut: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        if self._dead is not None:
            fut.set_exception(Failed(self._dead))
            return PendingRequest(self, rid, fut)
        try:
            frame = encode(kind, body)
        except (TypeError, ValueError, RecursionError) as exc:
            fut.set_exception(
                Failed(
                    Observation.of(
                        Code.INVALID_ARGUMENTS,
                        f"the arguments cannot cross the boundary as JSON: {exc}",
                        cause=exc,
                    )
                )
            )
            return PendingRequest(self, rid, fut)
        self._pending[rid] = fut
        self._write(frame)
        return PendingRequest(self, rid, fut)

    async def request(self, kind: Kind, body: dict[str, Any], *, stage: Stage) -> dict[str, Any]:
        return await self.start(kind, body).reply(stage)

    def send(self, kind: Kind, body: dict[str, Any]) -> None:
        """Send a frame that has no reply (SHUTDOWN)."""
        if self._dead is None:
            self._write(encode(kind, body))

    def cancel(self, request_id: int, tier: str = "cooperative") -> None:
        """Ask the worker, on the control pipe, to cancel a request."""
        if self._dead is not None or self._ctl_w < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._ctl_w, encode(Kind.CANCEL, {"id": request_id, "tier": tier}))

    def _write(self, frame: bytes) -> None:
        if self._wbuf:
            self._wbuf += frame
            return
        try:
            n = os.write(self._req_w, frame)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.EBADF):
                return  # the exit path fails the pending requests
            raise
        if n < len(frame):
            self._wbuf += frame[n:]
            assert self._loop is not None
            self._loop.add_writer(self._req_w, self._on_writable)

    def _on_writable(self) -> None:
        try:
            n = os.write(self._req_w, self._wbuf)
        except BlockingIOError:
            return
        except OSError:
            n = len(self._wbuf)
        del self._wbuf[:n]
        if not self._wbuf and self._loop is not None:
            self._loop.remove_writer(self._req_w)

    # -------------------------------------------------------------- reading

    def _on_readable(self) -> None:
        self._read_once()

    def _spin(self, fut: asyncio.Future[dict[str, Any]]) -> None:
        """Poll the replies pipe for a short while before yielding to the loop.

        A small call's reply arrives in tens of microseconds; catching it here
        saves the epoll wake-up, the reader callback and the task hand-off
        (what separates an event-loop round trip from a blocking pipe's).  Only
        when this is the sole request in flight: concurrent callers are not
        held up by one caller's spin.
        """
        if len(self._pending) != 1 or self._rep_r < 0:
            return
        clock = time.perf_counter
        deadline = clock() + SPIN_SECONDS
        read_once = self._read_once
        while not fut.done() and self._dead is None:
            if not read_once() and clock() > deadline:
                return

    def _read_once(self) -> bool:
        """Read and dispatch what is available; False when nothing more will come."""
        try:
            data = os.read(self._rep_r, 1 << 16)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._on_eof()
            return False
        try:
            frames = self._frames.feed(data)
        except ProtocolError as exc:
            self._protocol_error(str(exc))
            return False
        pending = self._pending
        for kind, body in frames:
            if kind == Kind.RESULT or kind == Kind.LOADED:
                fut = pending.pop(body.get("id"), None)  # type: ignore[arg-type]
                if fut is not None and not fut.done():
                    fut.set_result(body)
            elif kind == Kind.HELLO and self._hello is not None and not self._hello.done():
                self._hello.set_result(body)
            elif kind == Kind.EVENT:
                if self.on_event is not None:
                    self.on_event(body)
            else:
                self._protocol_error(f"unexpected frame kind {Kind(kind).name} from the worker")
                return False
        return True

    def _protocol_error(self, detail: str) -> None:
        self.kill_reason = "protocol error"
        obs = Observation.of(
            Code.PROTOCOL_ERROR,
            f"worker for {self.label!r} broke the wire protocol: {detail}",
            stage=Stage.EXECUTE,
            pid=self.pid,
        )
        self._fail_all(obs)
        self.kill()

    def _on_eof(self) -> None:
        assert self._loop is not None
        self._loop.remove_reader(self._rep_r)
        if self._dead is not None:
            return
        # Let the pidfd tell us the exit status before we describe the death.
        if self.returncode is None and self._proc is not None:
            self.returncode = self._proc.poll()
            if self.returncode is None:
                self._loop.call_later(0.005, self._on_eof_settled, 0)
                return
        self._declare_dead()

    def _on_eof_settled(self, tries: int) -> None:
        if self._dead is not None:
            return
        if self._proc is not None and self.returncode is None:
            self.returncode = self._proc.poll()
            if self.returncode is None and tries < 40:
                assert self._loop is not None
                self._loop.call_later(0.005, self._on_eof_settled, tries + 1)
                return
        self._declare_dead()

    def _on_exit_ready(self) -> None:
        assert self._loop is not None
        self._loop.remove_reader(self._pidfd)
        if self._proc is not None:
            self.returncode = self._proc.poll()
        # Dispatch anything written just before the exit (results that raced it).
        if self._rep_r >= 0:
            while self._dead is None and self._read_once():
                pass
        if self._dead is None:
            self._declare_dead()
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(None)

    def _declare_dead(self) -> None:
        if self._dead is not None:
            return
        what, attrs = describe_exit(self.returncode)
        tail = self.output_tail()
        code = Code.WORKER_CRASHED
        if self._looks_out_of_memory(tail):
            code = Code.OUT_OF_MEMORY
        reason = f" ({self.kill_reason})" if self.kill_reason else ""
        obs = Observation.of(
            code,
            f"worker for {self.label!r} {what}{reason}"
            + (f"; its output ends with:\n{tail}" if tail else ""),
            stage=Stage.EXECUTE,
            cause=Cause("WorkerExit", what, tail),
            pid=self.pid,
            **attrs,
        )
        self._fail_all(obs)
        if self._on_exit is not None:
            cb, self._on_exit = self._on_exit, None
            cb(self)

    def _looks_out_of_memory(self, tail: str) -> bool:
        if not self.memory_limit or self.kill_reason:
            return False
        return any(s in tail for s in ("MemoryError", "Cannot allocate memory", "OutOfMemoryError",
                                       "out of memory", "std::bad_alloc"))

    def _fail_all(self, obs: Observation) -> None:
        if self._dead is None:
            self._dead = obs
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(Failed(obs))
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(Failed(obs))

    # --------------------------------------------------------------- output

    def _take(self, fd: int, pos: int) -> tuple[str, int]:
        if fd < 0:
            return "", pos
        size = os.fstat(fd).st_size
        if size <= pos:
            return "", size if size < pos else pos
        data = os.pread(fd, size - pos, pos)
        return data.decode("utf-8", "replace"), pos + len(data)

    def take_output(self) -> tuple[str, str]:
        """(stdout, stderr) the process wrote since the last take."""
        out, self._out_pos = self._take(self._out_fd, self._out_pos)
        err, self._err_pos = self._take(self._err_fd, self._err_pos)
        if self._out_pos > _CAPTURE_CAP or self._err_pos > _CAPTURE_CAP:
            self._truncate_captures()
        return out, err

    def _truncate_captures(self) -> None:
        for name in ("stdout", "stderr"):
            with contextlib.suppress(OSError):
                os.truncate(os.path.join(self._capture_dir, name), 0)
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
            with open(f"/proc/{self.pid}/statm") as f:
                return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (OSError, ValueError, IndexError):
            return None

    # ------------------------------------------------------------ shutdown

    def kill(self) -> None:
        """SIGKILL the worker now (its death is then reported as usual)."""
        if self._proc is not None and self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    async def close(self, grace: float = 2.0) -> None:
        """Ask the worker to exit, kill it after ``grace``, reap it, remove its files."""
        proc = self._proc
        if proc is not None and self.returncode is None:
            self.kill_reason = self.kill_reason or "closed by the hub"
            if grace > 0 and self._dead is None:
                with contextlib.suppress(OSError):
                    self.send(Kind.SHUTDOWN, {})
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
            self.returncode = proc.returncode
        if self._dead is None:
            self._fail_all(
                Observation.of(Code.HUB_CLOSED, f"worker for {self.label!r} was closed", stage=Stage.EXECUTE)
            )
        self._close_fds()
        if self._capture_dir:
            shutil.rmtree(self._capture_dir, ignore_errors=True)
            self._capture_dir = ""

    def _close_fds(self) -> None:
        loop = self._loop
        for attr in ("_rep_r", "_pidfd", "_req_w"):
            fd = getattr(self, attr)
            if fd >= 0:
                if loop is not None and not loop.is_closed():
                    loop.remove_reader(fd)
                    if attr == "_req_w":
                        loop.remove_writer(fd)
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, attr, -1)
        for attr in ("_ctl_w", "_out_fd", "_err_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, attr, -1)
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(None)
