"""The wire protocol's frames, hub side.

A frame is a fixed 5-byte header — body length (uint32, big-endian) and kind
(uint8) — followed by the body: one UTF-8 JSON object.  The kind table below
is the whole vocabulary; ``docs/wire-protocol.md`` is its prose twin and the
worker runtimes (``cncf/worker/runtime.py``, the JVM host) carry their own
copies of the same constants, because they may import nothing from the hub.

Decoding is strict: an unknown kind, a body that is not a JSON object, a
length over :data:`MAX_BODY` or a truncated frame is a :class:`ProtocolError`,
which the channel reports as ``protocol_error`` and treats as a dead worker.

A well-framed body the hub will not take — nested deeper than the bound, or
carrying ``NaN``/``Infinity`` (not JSON, so never rendered as if it were) — is
not a protocol error: its bytes are consumed whole and it comes out as a
:class:`RefusedBody`, a failure record for the request whose ``id`` could be
found at the body's start or end, so the channel fails that call alone and
reads on.  Decoding never raises anything but :class:`ProtocolError` (a
``RecursionError`` from the C decoder is a refusal like any other).
"""

from __future__ import annotations

import enum
import json
import re
import struct
from collections.abc import Callable, Iterable
from typing import Any

PROTOCOL_VERSION = 1
HEADER = struct.Struct(">IB")
MAX_BODY = 64 * 1024 * 1024
MAX_DEPTH = 512  # default nesting bound of a body's values (cncf.limits.Limits.result_depth)


class Kind(enum.IntEnum):
    """Frame kinds.  Requests carry an ``id``; the reply to a request echoes it."""

    HELLO = 1  # worker → hub, once, unsolicited: the ready handshake
    LOAD = 2  # hub → worker: load an artifact as instance ``instance``; reply LOADED
    LOADED = 3  # worker → hub: the discovered operations, or a failure
    NEW = 4  # hub → worker: instantiate; reply RESULT
    INVOKE = 5  # hub → worker: run one operation; reply RESULT
    CANCEL = 6  # hub → worker, on the control channel: cancel request ``id``; no reply
    UNLOAD = 7  # hub → worker: drop an instance; reply RESULT
    RESULT = 8  # worker → hub: ok + value, or a failure record
    PING = 9  # hub → worker: health; reply RESULT with a stats object
    SHUTDOWN = 10  # hub → worker: exit cleanly; no reply
    EVENT = 11  # worker → hub, unsolicited: log lines, instance crash notices


class ProtocolError(Exception):
    """A frame violated the protocol (named kind, length, or JSON problem)."""


_KINDS = frozenset(int(k) for k in Kind)


def _not_json(o: object) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _make_encoder() -> Callable[[Any, int], Iterable[str]]:
    """One C encoder built once (``JSONEncoder.encode`` rebuilds it per call: ~1 µs);
    it yields the text in pieces (``"".join`` them)."""
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # pragma: no cover - CPython always has _json
        encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return lambda o, _level: (encoder.encode(o),)
    enc: Callable[[Any, int], Iterable[str]] = c_make_encoder(
        None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    return enc


_encode_json = _make_encoder()
_join = "".join


def encode(kind: Kind, body: dict[str, Any]) -> bytes:
    """Encode one frame; raises ``ValueError``/``TypeError`` (``RecursionError`` for a
    cyclic value) for unencodable bodies."""
    data = _join(_encode_json(body, 0)).encode("utf-8")
    if len(data) > MAX_BODY:
        raise ValueError(f"frame body of {len(data)} bytes exceeds the {MAX_BODY}-byte limit")
    packed: bytes = HEADER.pack(len(data), kind) + data
    return packed


_unpack_header = HEADER.unpack_from


def decode_header(header: bytes) -> tuple[int, int]:
    length, kind = HEADER.unpack(header)
    if kind not in _KINDS:
        raise ProtocolError(f"unknown frame kind {kind} (header {header.hex()})")
    if length > MAX_BODY:
        raise ProtocolError(f"frame length {length} exceeds the {MAX_BODY}-byte limit")
    return length, kind


class _NonFinite(Exception):
    """A ``NaN``/``Infinity`` constant met while decoding (not JSON: refused)."""


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(name)


# The common body is read by the C scanner directly (``JSONDecoder.decode`` adds
# two Python calls and two regex matches); a non-finite constant stops it.
_scan: Callable[[str, int], tuple[Any, int]] = vars(json.JSONDecoder(parse_constant=_refuse_constant))["scan_once"]


def _decode_fully(text: str) -> tuple[Any, list[str]]:
    """The decoded value and the non-finite constants met in it; raises as
    ``JSONDecoder.decode`` does (``ValueError``, ``RecursionError``).  For the rare
    bodies the scanner alone does not take: surrounding whitespace, NaN/Infinity, not JSON."""
    non_finite: list[str] = []
    return json.JSONDecoder(parse_constant=non_finite.append).decode(text), non_finite


_ID_FIRST = re.compile(r'\A\s*\{\s*"id"\s*:\s*(\d{1,18})\s*[,}]')
_ID_LAST = re.compile(r'[{,]\s*"id"\s*:\s*(\d{1,18})\s*\}\s*\Z')


class RefusedBody(dict[str, Any]):
    """A body consumed but not taken (see the module doc): shaped as a failure
    record ``{"id": …, "ok": false, "failure": {…}}``; ``id`` is absent when it
    could not be found."""

    __slots__ = ("reason",)

    def __init__(self, text: str, code: str, message: str, **attributes: Any) -> None:
        super().__init__(ok=False, failure={"code": code, "message": message, "attributes": attributes})
        self.reason = message
        m = _ID_FIRST.match(text) or _ID_LAST.search(text[-64:])
        if m:
            self["id"] = int(m.group(1))


def _depth(value: object, bound: int) -> int:
    """Nesting depth of a decoded value (iterative), ``bound + 1`` once over it."""
    from cncf.limits import json_depth

    return json_depth(value, bound)


def decode_body(data: bytes | memoryview, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """One body: a dict, a :class:`RefusedBody`, or :class:`ProtocolError` when it is
    not UTF-8 JSON or not an object."""
    try:
        text = str(data, "utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"frame body is not UTF-8 JSON: {exc}") from None
    del data  # no view of the caller's buffer outlives this call (it may be resized)
    non_finite: list[str] | None = None
    try:
        try:
            body, end = _scan(text, 0)
        except (StopIteration, _NonFinite):
            end = -1
        if end != len(text):
            body, non_finite = _decode_fully(text)
    except RecursionError:
        return RefusedBody(
            text,
            "result_not_serialisable",
            f"the worker's reply nests deeper than the hub decodes (bound {max_depth}, CNCF_MAX_RESULT_DEPTH)",
            limit="result_depth",
            bound=max_depth,
        )
    except ValueError as exc:
        raise ProtocolError(f"frame body is not UTF-8 JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"frame body must be a JSON object, got {type(body).__name__}")
    if non_finite:
        return RefusedBody(
            text,
            "result_not_serialisable",
            f"the worker's reply carries {non_finite[0]}, which is not JSON (a non-finite number cannot cross)",
            limit="finite_numbers",
        )
    # Too deep needs 2 * depth brackets: short bodies are not looked at; brackets are
    # counted at C speed next; only a body that could be too deep is walked.
    if (
        len(text) > 2 * max_depth
        and text.count("[") + text.count("{") > max_depth
        and _depth(body, max_depth + 1) - 1 > max_depth
    ):
        return RefusedBody(
            text,
            "result_not_serialisable",
            f"the worker's reply nests deeper than {max_depth} levels (CNCF_MAX_RESULT_DEPTH)",
            limit="result_depth",
            bound=max_depth,
        )
    return body


class FrameBuffer:
    """Incremental decoder: feed bytes as they arrive, take whole frames out."""

    __slots__ = ("_buf", "max_depth")

    def __init__(self, max_depth: int = MAX_DEPTH) -> None:
        self._buf = bytearray()
        self.max_depth = max_depth

    def feed(self, data: bytes) -> list[tuple[int, dict[str, Any]]]:
        """Whole frames out of ``data`` and what came before; a frame is consumed
        whole whether it is taken or refused, and a :class:`ProtocolError` leaves
        no bytes behind (the stream cannot be trusted past it)."""
        if not self._buf and len(data) >= 5:  # the usual case: exactly one whole frame
            length, kind = _unpack_header(data)
            if kind not in _KINDS or length > MAX_BODY:
                decode_header(data[:5])  # raises the ProtocolError that says which
            if len(data) == 5 + length:
                return [(kind, decode_body(memoryview(data)[5:], self.max_depth))]
        buf = self._buf
        buf += data
        out: list[tuple[int, dict[str, Any]]] = []
        pos = 0
        n = len(buf)
        try:
            while n - pos >= 5:
                length, kind = decode_header(bytes(buf[pos : pos + 5]))
                end = pos + 5 + length
                if end > n:
                    break
                view = memoryview(buf)[pos + 5 : end]
                try:
                    body = decode_body(view, self.max_depth)
                finally:
                    view.release()
                out.append((kind, body))
                pos = end
        except ProtocolError:
            buf.clear()
            raise
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame (non-zero at EOF means a truncated frame)."""
        return len(self._buf)
