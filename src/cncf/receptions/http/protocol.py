"""The serving protocol: uvicorn's httptools protocol with explicit limits.

uvicorn bounds a request's body (the reception does, as it arrives) and an
idle kept-alive connection (``timeout_keep_alive``), but not the time or the
bytes a client may take to send its headers: with httptools a header may
grow without end (eight endless headers took a hub to 712 MB), 20,000
headers were answered, and half-open connections held every descriptor
(slowloris).  This subclass adds, per connection:

- a header read timeout (``header_timeout``): from the connection's opening,
  or a request's first byte, to the end of its headers; a connection past it
  is closed (408 when it sent something); between requests uvicorn's
  keep-alive timeout applies.  One timer per server sweeps the connections
  in a header phase, oldest first: nothing is scheduled per request, and
  only ``data_received`` and ``on_headers_complete`` are overridden (each
  Python frame on this path costs the hot path);
- a bound on the bytes before the end of the headers (``max_header_bytes``,
  request line included) and on their count (``max_headers``): 431 and close,
  checked as the bytes arrive, so memory never holds more;
- a bound on open connections (``max_connections``, by default below the
  process's descriptor limit): past it, the connection that has been
  sending its headers longest (else an idle one) is closed to admit the new
  one, so a flood of half-open connections cannot lock a well-behaved
  client out, and ``accept`` never runs out of descriptors;
- the peer's user, on a loopback or Unix socket (:mod:`.peers`): a request
  from another local user is marked so that the reception asks it for the
  token.

Every other behaviour is uvicorn's.  Refusals here happen before there is a
request to route, so their body is the Observation the reception would send.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import resource
from typing import Any, cast

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cncf.observation import Code, Observation, Stage

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_HEADERS = 100
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_BODY = 8 * 1024 * 1024
DEFAULT_KEEP_ALIVE = 5.0
_FD_RESERVE = 128  # descriptors kept for the hub itself: workers' pipes, the job store, files


def default_max_connections() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(16, min(4096, soft - _FD_RESERVE))


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """The ``[serve]`` limits (docs/http.md, *Limits*)."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_headers: int = DEFAULT_MAX_HEADERS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_body: int = DEFAULT_MAX_BODY
    keep_alive: float = DEFAULT_KEEP_ALIVE
    max_connections: int = 0  # 0: below the descriptor limit (default_max_connections)

    def connections(self) -> int:
        return self.max_connections or default_max_connections()


class _Overflow(Exception):
    """Too many headers (raised in a parser callback: the parser stops there)."""


def _refusal(status: int, reason: bytes, obs: Observation) -> bytes:
    body = json.dumps({"ok": False, "observation": obs.to_dict()}, default=str).encode()
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"x-cncf-observation-code: %s\r\nconnection: close\r\n\r\n"
        % (status, reason, len(body), obs.code.value.encode())
    ) + body


def _headers_too_large(limits: Limits, what: str) -> bytes:
    obs = Observation.of(
        Code.BODY_TOO_LARGE,
        f"the request's headers are over this hub's limit ({what})",
        stage=Stage.RECEPTION,
        max_headers=limits.max_headers,
        max_header_bytes=limits.max_header_bytes,
        reason="headers",
    )
    return _refusal(431, b"Request Header Fields Too Large", obs)


def _header_timeout(limits: Limits) -> bytes:
    obs = Observation.of(
        Code.BODY_TOO_LARGE,
        f"the request's headers did not arrive within {limits.header_timeout:g}s",
        stage=Stage.RECEPTION,
        header_timeout=limits.header_timeout,
        reason="header_timeout",
    )
    return _refusal(408, b"Request Timeout", obs)


class _Shared:
    """What the connections of one server share: those waiting for a request
    (idle, or still sending its headers), oldest first, and the one timer
    that closes those past the header timeout (no timer per request)."""

    def __init__(self) -> None:
        self.waiting: dict[GuardedProtocol, None] = {}
        self.evicted = 0  # closed to admit another, not yet gone
        self.sweeping: asyncio.TimerHandle | None = None

    def sweep(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        """Close the connections past the header timeout; forget those whose
        headers have come (a request leaves the header phase by a flag alone,
        so the hot path does no dictionary work for it)."""
        self.sweeping = None
        deadline = loop.time() - timeout
        waiting = self.waiting
        for conn in list(waiting):
            if not conn._awaiting:
                del waiting[conn]
            elif conn._since <= deadline:
                conn._timed_out()
        if waiting:
            self.sweeping = loop.call_later(min(1.0, timeout / 4), self.sweep, loop, timeout)

    def oldest(self, but: GuardedProtocol) -> GuardedProtocol | None:
        """The connection that has been sending its headers longest (``but`` aside)."""
        found: GuardedProtocol | None = None
        for conn in self.waiting:
            if (
                conn is not but
                and conn._awaiting
                and not conn._evicted
                and (found is None or conn._since < found._since)
            ):
                found = conn
        return found


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above (see :func:`protocol_class`)."""

    limits: Limits = Limits()
    max_connections: int = 0
    max_headers: int = DEFAULT_MAX_HEADERS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    shared: _Shared = _Shared()
    foreign_key: str = "cncf.foreign_peer"
    peer_check: Any = None  # callable(transport) -> bool (another local user), or None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting = True  # in a request's header phase: its bytes are counted
        self._got = 0  # bytes received in this header phase
        self._since = 0.0  # waiting for a request since (loop time)
        self._foreign = False
        self._evicted = False

    # -- connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(cast(asyncio.Transport, transport))
        check = self.peer_check
        if check is not None and check(transport):
            # Another local user: every request's scope says so.  The parser takes its
            # callbacks when it is made, so it is made again with this connection's
            # own on_message_begin (the hot path of everybody else stays as it is).
            self._foreign = True
            self.on_message_begin = self._foreign_message_begin  # type: ignore[method-assign]
            self.parser = httptools.HttpRequestParser(self)
            with contextlib.suppress(AttributeError):  # as uvicorn sets its own (httptools >= 0.6.3)
                self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._wait()
        shared = self.shared
        if len(self.connections) - shared.evicted > self.max_connections:
            self._evict()

    def _evict(self) -> None:
        """Close the connection that has waited longest for a request: one still
        sending its headers, else an idle one, else this new one."""
        shared = self.shared
        victim: GuardedProtocol = shared.oldest(self) or self
        if victim is self:
            for other in self.connections:
                if isinstance(other, GuardedProtocol) and other is not self and not other._evicted and other._idle():
                    victim = other
                    break
        shared.waiting.pop(victim, None)
        victim._evicted = True
        shared.evicted += 1
        victim.transport.close()

    def _idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def connection_lost(self, exc: Exception | None) -> None:
        self.shared.waiting.pop(self, None)
        if self._evicted:
            self._evicted = False
            self.shared.evicted -= 1
        super().connection_lost(exc)

    def _wait(self) -> None:
        """A request's header phase begins: timed, bytes counted, first to go under pressure."""
        self._awaiting = True
        self._got = 0
        self._since = self.loop.time()
        shared = self.shared
        shared.waiting[self] = None
        if shared.sweeping is None:
            timeout = self.limits.header_timeout
            shared.sweeping = self.loop.call_later(min(1.0, timeout / 4), shared.sweep, self.loop, timeout)

    def _timed_out(self) -> None:
        self.shared.waiting.pop(self, None)
        if not self.transport.is_closing():
            if self._awaiting and self._got:
                self.transport.write(_header_timeout(self.limits))
            self.transport.close()

    def _refuse(self, what: str) -> None:
        self.shared.waiting.pop(self, None)
        if not self.transport.is_closing():
            self.transport.write(_headers_too_large(self.limits, what))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._awaiting:
            self._got += len(data)
        else:
            cycle = self.cycle
            if cycle is None or not cycle.more_body:  # not the body of a request: the next request's headers
                self._awaiting = True  # (as _wait, inline: once per request)
                self._got = len(data)
                self._since = self.loop.time()
                shared = self.shared
                shared.waiting[self] = None  # (kept there while idle: the sweep forgets it)
                if shared.sweeping is None:
                    timeout = self.limits.header_timeout
                    shared.sweeping = self.loop.call_later(min(1.0, timeout / 4), shared.sweep, self.loop, timeout)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._awaiting and len(self.headers or ()) > self.max_headers:
                self._refuse(f"more than {self.max_headers} headers")
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        if self._awaiting and self._got > self.max_header_bytes:
            self._refuse(f"more than {self.max_header_bytes} bytes before the end of the headers")

    # -- parser callbacks

    def on_headers_complete(self) -> None:
        if len(self.headers) > self.max_headers:
            raise _Overflow  # (memory is bounded by the bytes; the count is checked once, here)
        self._awaiting = False  # out of the header phase (the sweep drops it from ``waiting``)
        HttpToolsProtocol.on_headers_complete(self)

    def _foreign_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        cast(dict[str, Any], self.scope)[self.foreign_key] = True


def protocol_class(limits: Limits, peer_check: Any = None, foreign_key: str = "cncf.foreign_peer") -> type[Any]:
    """A protocol class bound to one server's limits (uvicorn's ``http=``)."""
    return type(
        "CncfHttpProtocol",
        (GuardedProtocol,),
        {
            "limits": limits,
            "max_connections": limits.connections(),
            "max_headers": limits.max_headers,
            "max_header_bytes": limits.max_header_bytes,
            "shared": _Shared(),
            "peer_check": staticmethod(peer_check) if peer_check is not None else None,
            "foreign_key": foreign_key,
        },
    )


__all__ = ["GuardedProtocol", "Limits", "default_max_connections", "protocol_class"]
