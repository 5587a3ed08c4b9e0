"""A local worker process: spawn, output capture, liveness, kill.

Shared by every out-of-process form (python, command, jar).  The protocol
itself travels on a :class:`~cncf.wire.channel.Channel` over three pipes;
this module is the local half of the worker link (:mod:`cncf.wire.link`):
what is specific to a child process on this machine.

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
* Each worker gets a private temporary folder (``TMPDIR``; for the JVM also
  ``-Djava.io.tmpdir``, see :func:`WorkerProcess.spawn`'s ``tmpdir_option``),
  removed when the worker ends.
* ``pid`` is the worker's own pid, also when it runs in a PID namespace below
  ``unshare`` and its init (``_group`` is the process the hub started: its
  process group is what a kill ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import select
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cncf.failures import cause_of
from cncf.observation import Code, Failed, Observation, Stage
from cncf.paths import cache_dir
from cncf.wire import ownership
from cncf.wire.channel import Channel
from cncf.wire.frames import PROTOCOL_VERSION, Kind
from cncf.wire.link import LOCAL_PLACEMENT, LinkCore, WorkerLink, make_tmpdir, remove_tree

__all__ = ["WorkerProcess"]


class WorkerProcess(LinkCore):
    """One child process speaking the wire protocol on ``self.channel`` (a :class:`WorkerLink`)."""

    def __init__(self) -> None:  # use spawn()
        super().__init__()
        self._wrapped = False
        self._group = 0  # the process the hub started (``unshare`` when wrapped): its group is the worker's
        self._proc: subprocess.Popen[bytes] | None = None
        self._pidfd = -1
        self._worker_fd = -1  # a pidfd on the worker itself when it runs below unshare
        self._worker_poll: select.poll | None = None
        self.viewed = False  # runs in a mount namespace hiding the hub's home

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
        on_exit: Callable[[WorkerLink], None] | None = None,
        home: Path | None = None,
        tmpdir_option: str | None = None,
        cache: Path | None = None,
        visible: Sequence[str] = (),
    ) -> WorkerProcess:
        """Start ``argv`` with the protocol pipes and wait for its HELLO.

        The worker gets a private temporary folder under ``home``'s run folder
        (``TMPDIR``; ``tmpdir_option``, e.g. ``"-Djava.io.tmpdir="``, is also
        passed after ``argv[0]`` with the folder appended), removed when it ends.
        Where the kernel lets it, the worker runs in a mount namespace where
        ``home`` is hidden (:class:`~cncf.wire.ownership.View`): its temporary
        folder, the ``cache`` (default ``cache_dir(home)``, read-only), ``cwd``
        and the ``visible`` paths (its artifacts, read-only) are shown again.

        Raises ``Failed`` (``worker_start_failed``) when the process cannot be
        started, exits, or stays silent past ``start_timeout``.
        """
        self = cls()
        self.label = label
        self.memory_limit = memory_limit
        self._on_exit = on_exit
        loop = self._loop = asyncio.get_running_loop()
        try:
            self.tmpdir = make_tmpdir(home)
        except OSError as exc:
            raise Failed(
                Observation.of(
                    Code.WORKER_START_FAILED,
                    f"cannot create the temporary folder of the worker for {label!r}: {exc.strerror or exc}",
                    stage=Stage.LOAD,
                    cause=cause_of(exc),
                )
            ) from None
        if tmpdir_option:
            argv = [argv[0], tmpdir_option + self.tmpdir, *argv[1:]]
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
        table = ""  # the view's mount table, removed once the worker has started
        if home is not None:
            table = self.tmpdir + ".view"
            view = ownership.View.for_worker(
                home, tmpdir=self.tmpdir, cache=cache if cache is not None else cache_dir(home), cwd=cwd, paths=visible
            )
            try:
                argv, self._wrapped, self.viewed = ownership.wrap_in_view(
                    argv, view, cwd=cwd, busy_fds=(req_r, rep_w, ctl_r), table_path=table
                )
            except OSError:  # the table cannot be written: no view rather than no worker
                argv, self._wrapped = ownership.wrap(argv)
        else:
            argv, self._wrapped = ownership.wrap(argv)
        self._argv = list(argv)
        child_env.update(
            CNCF_OWNER=self.cookie,
            CNCF_PROTOCOL=str(PROTOCOL_VERSION),
            CNCF_FD_REQUESTS=str(req_r),
            CNCF_FD_REPLIES=str(rep_w),
            CNCF_FD_CONTROL=str(ctl_r),
            CNCF_WORKER_LABEL=label,
            TMPDIR=self.tmpdir,
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
            _unlink(table)
            self._close_captures()
            remove_tree(self.tmpdir)
            self.tmpdir = ""
            for fd in (req_r, rep_w, ctl_r, out_w, err_w, req_w, rep_r, ctl_w):
                os.close(fd)
            raise Failed(
                Observation.of(
                    Code.WORKER_START_FAILED,
                    f"cannot start worker for {label!r} ({argv[0]!r}): {getattr(exc, 'strerror', None) or exc}",
                    stage=Stage.LOAD,
                    cause=cause_of(exc),
                    argv=list(argv),
                )
            ) from None
        for fd in (req_r, rep_w, ctl_r, out_w, err_w):
            os.close(fd)
        self.pid = self._group = self._proc.pid
        if memory_limit and not self._wrapped:
            self._limit_memory()
        self.channel = Channel(label, req_w, rep_r, ctl_w, on_eof=self._on_eof, on_broken=self._on_broken)
        self._exited = loop.create_future()
        self._started = loop.create_future()
        self._started.set_result(self.pid)
        try:
            self._pidfd = os.pidfd_open(self._group)
            loop.add_reader(self._pidfd, self._on_exit_ready)
        except OSError:  # pragma: no cover - kernels without pidfd: EOF still tells
            self._pidfd = -1
        try:
            await self.greet(start_timeout)
        finally:
            _unlink(table)
        if self._wrapped:
            self.pid = ownership.worker_pid(self._group, True)
            if memory_limit:
                self._limit_memory()
            if self.pid != self._group:
                with contextlib.suppress(OSError):
                    self._worker_fd = os.pidfd_open(self.pid)
        if self._pidfd >= 0:  # one poll(2) tells an exit on every call's health check
            exits = select.poll()
            exits.register(self._pidfd, select.POLLIN)
            if self._worker_fd >= 0:
                exits.register(self._worker_fd, select.POLLIN)
            self._worker_poll = exits
        return self

    @property
    def placement(self) -> dict[str, Any]:
        return dict(LOCAL_PLACEMENT)

    def _pull_output(self) -> None:
        """Nothing to bring: the child writes its capture files itself."""

    @property
    def worker_pid(self) -> int:
        """The worker's own pid (kept for callers of the old name: ``pid`` is the same)."""
        return self.pid

    def _limit_memory(self) -> None:
        limit = self.memory_limit
        if limit:
            with contextlib.suppress(OSError, ValueError, OverflowError):
                resource.prlimit(self.pid, resource.RLIMIT_AS, (limit, limit))

    def _poll(self) -> int | None:
        """The worker's exit status (a signal as a negative number, namespace or not)."""
        assert self._proc is not None
        return ownership.decode_status(self._proc.poll(), self._wrapped)

    def exited_unnoticed(self) -> bool:
        """Whether the child has exited, without reaping it (the pidfd reader reaps)."""
        if self._proc is None or self.returncode is not None:
            return self.returncode is not None
        if self._worker_poll is not None:
            # A pidfd is readable once its process exited (a zombie counts): the
            # group's, and wrapped, the worker's own, which dies a moment before
            # its namespace's init and ``unshare``.
            return bool(self._worker_poll.poll(0))
        try:
            if os.waitid(os.P_PID, self._group, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        except OSError:
            return False
        return False

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
        self.declare_dead()

    def _on_eof_settled(self, tries: int) -> None:
        if self.channel.dead is not None:
            return
        if self._proc is not None and self.returncode is None:
            self.returncode = self._poll()
            if self.returncode is None and tries < 40:
                asyncio.get_running_loop().call_later(0.005, self._on_eof_settled, tries + 1)
                return
        self.declare_dead()

    def _on_exit_ready(self) -> None:
        assert self._loop is not None
        self._loop.remove_reader(self._pidfd)
        if self._proc is not None:
            self.returncode = self._poll()
        self.exit_observed()

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
            try:
                os.killpg(self._group, signal.SIGKILL)  # the worker's own group: its children too
            except OSError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._group, signal.SIGKILL)

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
                ownership.kill_owned(self.cookie, self._group)
        self._closed_by_hub()
        self._release()
        await self._remove_tmpdir()

    def _release(self) -> None:
        if self.channel is not None:  # None when spawning failed before the channel existed
            self.channel.close()
        loop = self._loop
        if self._pidfd >= 0:
            if loop is not None and not loop.is_closed():
                loop.remove_reader(self._pidfd)
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd = -1
        self._worker_poll = None
        if self._worker_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._worker_fd)
            self._worker_fd = -1
        self._close_captures()
        self._wake_exit()


def _unlink(path: str) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.unlink(path)
