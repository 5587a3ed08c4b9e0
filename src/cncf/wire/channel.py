"""The protocol channel to a worker, hub side: request ids, replies matched
to futures, a kind → handler table, the shared exchanges (LOAD, NEW,
INVOKE) every process form uses.

A Channel moves frames over three file descriptors — requests out, replies
in, control out — and knows nothing of the process behind them: a local
child over pipes (``cncf.wire.process``) and a worker on another node over
a socket (placement) use the same Channel, so the wire protocol and the
Boundary are identical wherever the worker lives (execnet's ``IO`` idea).

Design notes
------------
* Replies are read with ``loop.add_reader`` on a non-blocking descriptor and
  matched to futures by request id; there is no extra thread on the hot path,
  so a round trip costs the pipe floor plus one event-loop wake-up — less
  when the short spin of :meth:`Channel._spin` catches the reply first.
* Frames a worker may send are a small table (``_HANDLERS``): kind → method.
  An unknown kind or a broken frame is a named protocol error; the owner of
  the channel decides what that means for the process (it kills it).
* When the read side closes, the channel tells its owner (``on_eof``); the
  owner describes the death (exit status, output tail) and fails everything
  pending at once through :meth:`Channel.fail_all`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import signal
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cncf import limits
from cncf.failures import cause_of, from_record
from cncf.observation import Code, Failed, Observation, Stage
from cncf.wire.frames import FrameBuffer, Kind, ProtocolError, RefusedBody, encode

if TYPE_CHECKING:
    from cncf.boundaries.base import Scope
    from cncf.call import ActionCall

__all__ = ["Channel", "PendingRequest", "describe_exit", "invoke", "load", "new", "start_invoke"]

SPIN_SECONDS = 100e-6


def describe_exit(returncode: int | None) -> tuple[str, dict[str, Any]]:
    """How a worker ended, in words and as attributes (exit code or signal)."""
    if returncode is None:
        return "closed its channel", {}
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}", {"signal": -returncode, "signal_name": name}
    return f"exited with status {returncode}", {"exit_code": returncode}


def attach_output(exc: Failed, output: Callable[[], tuple[str, str]]) -> Failed:
    """Give a failure what the worker printed, unless it carries its own."""
    out, err = output()
    exc.stdout = exc.stdout or out
    exc.stderr = exc.stderr or err
    return exc


async def invoke(
    channel: Channel,
    instance_id: Any,
    call: ActionCall,
    operation: str,
    *,
    concurrent: bool,
    scope: Scope,
    force: Callable[[], None],
) -> dict[str, Any]:
    """The INVOKE exchange every process form shares: the request, its
    registration on the call's scope (a cooperative CANCEL for this request id,
    and the form's ``force``), and the reply body.  A request refused before it
    crossed (too large, a dead worker) is not registered: it never started."""
    pending = start_invoke(channel, instance_id, call, operation, concurrent=concurrent, scope=scope, force=force)
    if pending.done():
        return pending.result(Stage.EXECUTE)
    return await pending.reply(Stage.EXECUTE, scope, spin=False)


def start_invoke(
    channel: Channel,
    instance_id: Any,
    call: ActionCall,
    operation: str,
    *,
    concurrent: bool,
    scope: Scope,
    force: Callable[[], None],
) -> PendingRequest:
    """:func:`invoke` up to its reply: send, register on the scope, spin briefly
    for the reply (see :meth:`Channel._spin`).  When the returned request is
    ``done()`` its :meth:`~PendingRequest.result` is the reply body (no
    coroutine needed); otherwise await ``reply(Stage.EXECUTE, scope, spin=False)``."""
    fut = scope.operation_future()
    body = {
        "instance": instance_id,
        "call": call.id,
        "operation": operation,
        "args": call.args,
        "kwargs": call.kwargs,
        "concurrent": concurrent,
    }
    context = call.context
    if context.traceparent is not None:  # telemetry on: the call span's W3C context
        body["traceparent"] = context.traceparent
        if context.tracestate is not None:
            body["tracestate"] = context.tracestate
    pending = channel.start(Kind.INVOKE, body, fut)
    if not fut.done():
        scope.attach(fut, cooperative=pending.cancel, force=force)
        channel._spin(fut, scope.idle)
    return pending


async def load(
    channel: Channel,
    instance_id: Any,
    *,
    entry: str | None,
    artifact: str,
    paths: list[str],
    options: Mapping[str, Any],
    timeout: float,
    on_timeout: Callable[[], Failed],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The LOAD exchange (stage load) with its time limit; ``on_timeout``
    builds the form's own Observation for an artifact that never answers.
    ``extra`` adds keys to the body (the jar host's ``init``)."""
    try:
        async with asyncio.timeout(timeout):
            return await channel.request(
                Kind.LOAD,
                {
                    "instance": instance_id,
                    "entry": entry,
                    "artifact": artifact,
                    "paths": paths,
                    "options": dict(options),
                    **(extra or {}),
                },
                stage=Stage.LOAD,
            )
    except TimeoutError:
        raise on_timeout() from None


async def new(
    channel: Channel,
    instance_id: Any,
    *,
    entry: str | None,
    timeout: float,
    init: list[Any] | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The NEW exchange (stage instantiate): construct the instance, bounded;
    ``init`` (the manifest's constructor arguments) travels in the body when given."""
    body: dict[str, Any] = {"instance": instance_id}
    if init is not None:
        body["init"] = init
    try:
        async with asyncio.timeout(timeout):
            return await channel.request(Kind.NEW, body, stage=Stage.INSTANTIATE)
    except TimeoutError:
        raise Failed(
            Observation.of(
                Code.CONSTRUCTOR_FAILED,
                f"constructing {entry!r} did not finish within {timeout:g}s",
                stage=Stage.INSTANTIATE,
                limit="load_timeout",
            )
        ) from None


def _check_bounds(frame: bytes, body: dict[str, Any], bounds: limits.Limits) -> None:
    """Refuse an INVOKE whose arguments cross a bound (``arguments_too_large``)."""
    if len(frame) > bounds.frame_bytes:
        raise Failed(
            Observation.of(
                Code.ARGUMENTS_TOO_LARGE,
                f"the arguments encode to {len(frame)} bytes, over the {bounds.frame_bytes}-byte frame bound "
                "(CNCF_MAX_FRAME)",
                limit="frame_bytes",
                bound=bounds.frame_bytes,
                size=len(frame),
                before_crossing=True,
            )
        )
    depth = bounds.argument_depth
    # Brackets are counted at C speed first; only a frame that could be too deep is walked.
    if frame.count(b"[") + frame.count(b"{") > depth:
        args = [body.get("args"), body.get("kwargs")]
        if limits.json_depth(args, depth + 1) - 1 > depth:
            raise Failed(
                Observation.of(
                    Code.ARGUMENTS_TOO_LARGE,
                    f"the arguments nest deeper than {depth} levels (CNCF_MAX_ARG_DEPTH)",
                    limit="argument_depth",
                    bound=depth,
                    before_crossing=True,
                )
            )


class PendingRequest:
    """One request sent: ``future`` completes when its reply arrives (or the worker dies)."""

    __slots__ = ("id", "future", "_channel")

    def __init__(self, channel: Channel, rid: int, future: asyncio.Future[dict[str, Any]]) -> None:
        self.id = rid
        self.future = future
        self._channel = channel

    async def reply(self, stage: Stage, scope: Scope | None = None, *, spin: bool = True) -> dict[str, Any]:
        """The reply body; ``Failed`` for a failure record or a dead worker.

        With a ``scope`` the reply is awaited through it: the caller's own
        cancellation, or the scope's (``Interrupted``), leaves the request in
        flight, so its reply still ends the operation on the scope.  ``spin``:
        poll for the reply briefly first (False when the caller already did)."""
        fut = self.future
        if spin and not fut.done():
            self._channel._spin(fut, scope.idle if scope is not None else None)
        if not fut.done():  # (the common case is the reply caught while spinning)
            try:
                await (fut if scope is None else scope.wait(fut))
            except asyncio.CancelledError:
                if scope is None:
                    self._channel._pending.pop(self.id, None)
                raise
            except Failed:
                pass  # read below, at this request's stage
        return self.result(stage)

    def result(self, stage: Stage) -> dict[str, Any]:
        """The reply body of a request that is ``done()`` (see :meth:`reply`)."""
        try:
            body = self.future.result()
        except Failed as exc:  # a dead worker is reported at the stage of the request it broke
            obs = exc.observation
            if obs.stage is not stage and stage in obs.code.stages and not obs.attributes.get("before_crossing"):
                exc.observation = dataclasses.replace(obs, stage=stage)
            raise
        if body.get("ok", True) is False:
            failure = body.get("failure") or {}
            raise Failed(
                from_record(failure, stage),
                stdout=str(body.get("stdout") or ""),
                stderr=str(body.get("stderr") or ""),
            )
        return body

    def done(self) -> bool:
        return self.future.done()

    def cancel(self) -> None:
        """Ask the worker to stop this request (a cooperative CANCEL)."""
        self._channel.cancel(self.id, "cooperative")


class Channel:
    """Frames to and from one worker over three descriptors (see module doc).

    Args:
        label: the component (or host) name, for messages.
        requests: write end for requests; replies: read end for replies;
        control: write end for CANCEL (-1: none).
        on_eof: called once when the replies side closes.
        on_broken: called with a ``protocol_error`` Observation when the
            worker breaks the protocol (the owner should kill it).
    """

    def __init__(
        self,
        label: str,
        requests: int,
        replies: int,
        control: int,
        *,
        on_eof: Callable[[], None],
        on_broken: Callable[[Observation], None],
    ) -> None:
        self.label = label
        self.hello: dict[str, Any] = {}
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        self._req_w, self._rep_r, self._ctl_w = requests, replies, control
        self._on_eof, self._on_broken = on_eof, on_broken
        self._loop = asyncio.get_running_loop()
        self.limits = limits.current()  # the bounds in force when the worker started
        self._frames = FrameBuffer(self.limits.result_depth)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._hello: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._wbuf = bytearray()
        self.dead: Observation | None = None
        os.set_blocking(self._rep_r, False)
        os.set_blocking(self._req_w, False)
        self._loop.add_reader(self._rep_r, self._on_readable)

    async def handshake(self) -> dict[str, Any]:
        """The worker's HELLO (``Failed`` when it dies first)."""
        self.hello = await self._hello
        return self.hello

    # ------------------------------------------------------------- requests

    def start(
        self, kind: Kind, body: dict[str, Any], future: asyncio.Future[dict[str, Any]] | None = None
    ) -> PendingRequest:
        """Send a request; its reply is awaited through the returned handle
        (``future``: the one to complete with the reply, e.g. a call scope's)."""
        self._next_id += 1
        rid = body["id"] = self._next_id
        fut: asyncio.Future[dict[str, Any]] = self._loop.create_future() if future is None else future
        if self.dead is not None:
            fut.set_exception(Failed(self.dead))
            return PendingRequest(self, rid, fut)
        try:
            frame = encode(kind, body)
            if kind == Kind.INVOKE:
                bounds = self.limits
                if len(frame) > bounds.frame_bytes or frame.count(b"[") + frame.count(b"{") > bounds.argument_depth:
                    _check_bounds(frame, body, bounds)  # (cheap bounds first: most frames are small and flat)
        except Failed as exc:
            fut.set_exception(exc)
            return PendingRequest(self, rid, fut)
        except RecursionError as exc:
            fut.set_exception(
                Failed(
                    Observation.of(
                        Code.ARGUMENTS_TOO_LARGE,
                        f"the arguments nest too deeply to cross the boundary: {exc}",
                        cause=cause_of(exc),
                        limit="argument_depth",
                        before_crossing=True,
                    )
                )
            )
            return PendingRequest(self, rid, fut)
        except (TypeError, ValueError) as exc:
            fut.set_exception(
                Failed(
                    Observation.of(
                        Code.INVALID_ARGUMENTS,
                        f"the arguments cannot cross the boundary as JSON: {exc}",
                        cause=cause_of(exc),
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
        if self.dead is None:
            self._write(encode(kind, body))

    def cancel(self, request_id: int, tier: str = "cooperative") -> None:
        """Ask the worker, on the control descriptor, to cancel a request."""
        if self.dead is not None or self._ctl_w < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._ctl_w, encode(Kind.CANCEL, {"id": request_id, "tier": tier}))

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def _write(self, frame: bytes) -> None:
        if self._wbuf:
            self._wbuf += frame
            return
        try:
            n = os.write(self._req_w, frame)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.EBADF, errno.ECONNRESET):  # a socket's EPIPE
                return  # the exit path fails the pending requests
            raise
        if n < len(frame):
            self._wbuf += frame[n:]
            self._loop.add_writer(self._req_w, self._on_writable)

    def _on_writable(self) -> None:
        try:
            n = os.write(self._req_w, self._wbuf)
        except BlockingIOError:
            return
        except OSError:
            n = len(self._wbuf)
        del self._wbuf[:n]
        if not self._wbuf:
            self._loop.remove_writer(self._req_w)

    # -------------------------------------------------------------- reading

    def _on_readable(self) -> None:
        self._read_once()

    def _spin(self, fut: asyncio.Future[dict[str, Any]], idle: Callable[[], bool] | None = None) -> None:
        """Poll the replies pipe for a short while before yielding to the loop.

        A small call's reply arrives in tens of microseconds; catching it here
        saves the epoll wake-up, the reader callback and the task hand-off
        (what separates an event-loop round trip from a blocking pipe's).  Only
        when this is the sole request in flight: concurrent callers are not
        held up by one caller's spin.  ``idle``: work the hub deferred until
        after an earlier caller had its Outcome (a span to record), done a
        piece at a time while nothing has arrived yet, instead of spinning idle.
        """
        if len(self._pending) != 1 or self._rep_r < 0:
            return
        clock = time.perf_counter
        deadline = clock() + SPIN_SECONDS
        read_once = self._read_once
        while not fut.done() and self.dead is None:
            if idle is not None and not idle():  # (one piece: a reply takes tens of µs)
                idle = None
            if read_once():
                continue
            if clock() > deadline:
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
            self._eof()
            return False
        try:
            frames = self._frames.feed(data)
        except ProtocolError as exc:
            self._protocol_error(str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - nothing a worker sends may escape into the loop
            self._protocol_error(f"a frame could not be decoded: {exc!r}")
            return False
        handlers = _HANDLERS
        for kind, frame in frames:
            if type(frame) is RefusedBody:
                if not self._refused(kind, frame):
                    return False
                continue
            handler = handlers.get(kind)
            if handler is None:
                self._protocol_error(f"unexpected frame kind {Kind(kind).name} from the worker")
                return False
            handler(self, frame)
        return True

    def _refused(self, kind: int, frame: RefusedBody) -> bool:
        """A body the decoder consumed but would not take: the reply fails its own
        request, an event is dropped; anything else (a HELLO, a reply whose request
        id cannot be found in it) is a protocol error.  False when the channel broke."""
        if kind == Kind.EVENT:
            return True  # a log line or notice too deep to read; the calls go on
        if kind in (Kind.RESULT, Kind.LOADED) and "id" in frame:
            if kind == Kind.LOADED:
                frame["failure"]["code"] = Code.PROTOCOL_ERROR.value
            self._reply(frame)  # a reply to a request no longer pending is dropped, as any late reply
            return True
        self._protocol_error(f"a {Kind(kind).name} frame was refused: {frame.reason}")
        return False

    def drain(self) -> None:
        """Dispatch whatever is readable now (replies that raced an exit)."""
        while self.dead is None and self._rep_r >= 0 and self._read_once():
            pass

    def _reply(self, body: dict[str, Any]) -> None:
        fut = self._pending.pop(body.get("id"), None)  # type: ignore[arg-type]
        if fut is not None and not fut.done():
            fut.set_result(body)

    def _greet(self, body: dict[str, Any]) -> None:
        if not self._hello.done():
            self._hello.set_result(body)
        else:
            self._protocol_error("a second HELLO from the worker")

    def _event(self, body: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(body)

    def _protocol_error(self, detail: str) -> None:
        obs = Observation.of(
            Code.PROTOCOL_ERROR, f"worker for {self.label!r} broke the wire protocol: {detail}", stage=Stage.EXECUTE
        )
        self.fail_all(obs)
        self._on_broken(obs)

    def _eof(self) -> None:
        if self._rep_r >= 0:
            self._loop.remove_reader(self._rep_r)
        self._on_eof()

    def fail_all(self, obs: Observation) -> None:
        """The worker is gone: every pending request (and the HELLO) fails with ``obs``."""
        if self.dead is None:
            self.dead = obs
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(Failed(obs))
        if not self._hello.done():
            self._hello.set_exception(Failed(obs))
            self._hello.exception()  # retrieved: nobody may be awaiting it any more

    def close(self) -> None:
        """Close the descriptors (the process side is its owner's business)."""
        loop = self._loop
        for attr in ("_rep_r", "_req_w", "_ctl_w"):
            fd = getattr(self, attr)
            if fd < 0:
                continue
            if not loop.is_closed():
                if attr == "_rep_r":
                    loop.remove_reader(fd)
                elif attr == "_req_w":
                    loop.remove_writer(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
            setattr(self, attr, -1)


_HANDLERS: dict[int, Callable[[Channel, dict[str, Any]], None]] = {
    Kind.RESULT: Channel._reply,
    Kind.LOADED: Channel._reply,
    Kind.HELLO: Channel._greet,
    Kind.EVENT: Channel._event,
}
