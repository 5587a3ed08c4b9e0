"""The wire protocol's frames, hub side.

A frame is a fixed 5-byte header — body length (uint32, big-endian) and kind
(uint8) — followed by the body: one UTF-8 JSON object.  The kind table below
is the whole vocabulary; ``docs/wire-protocol.md`` is its prose twin and the
worker runtimes (``cncf/worker/runtime.py``, the JVM host) carry their own
copies of the same constants, because they may import nothing from the hub.

Decoding is strict: an unknown kind, a body that is not a JSON object, a
length over :data:`MAX_BODY` or a truncated frame is a :class:`ProtocolError`,
which the channel reports as ``protocol_error`` and treats as a dead worker.
"""

from __future__ import annotations

import enum
import json
import struct
from typing import Any

PROTOCOL_VERSION = 1
HEADER = struct.Struct(">IB")
MAX_BODY = 64 * 1024 * 1024


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


def _make_dumps() -> Any:
    """One C encoder built once (``JSONEncoder.encode`` rebuilds it per call: ~1 µs)."""
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # pragma: no cover - CPython always has _json
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    enc = c_make_encoder(None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    join = "".join

    def dumps(o: Any) -> str:
        return join(enc(o, 0))

    return dumps


_dumps = _make_dumps()


def encode(kind: Kind, body: dict[str, Any]) -> bytes:
    """Encode one frame; raises ``ValueError``/``TypeError`` (``RecursionError`` for a
    cyclic value) for unencodable bodies."""
    data = _dumps(body).encode("utf-8")
    if len(data) > MAX_BODY:
        raise ValueError(f"frame body of {len(data)} bytes exceeds the {MAX_BODY}-byte limit")
    packed: bytes = HEADER.pack(len(data), kind) + data
    return packed


def decode_header(header: bytes) -> tuple[int, int]:
    length, kind = HEADER.unpack(header)
    if kind not in _KINDS:
        raise ProtocolError(f"unknown frame kind {kind} (header {header.hex()})")
    if length > MAX_BODY:
        raise ProtocolError(f"frame length {length} exceeds the {MAX_BODY}-byte limit")
    return length, kind


_decode = json.JSONDecoder().decode


def decode_body(data: bytes | memoryview) -> dict[str, Any]:
    try:
        body = _decode(str(data, "utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"frame body is not UTF-8 JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"frame body must be a JSON object, got {type(body).__name__}")
    return body


class FrameBuffer:
    """Incremental decoder: feed bytes as they arrive, take whole frames out."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, dict[str, Any]]]:
        if not self._buf and len(data) >= 5:  # the usual case: exactly one whole frame
            length, kind = decode_header(data[:5])
            if len(data) == 5 + length:
                return [(kind, decode_body(memoryview(data)[5:]))]
        buf = self._buf
        buf += data
        out: list[tuple[int, dict[str, Any]]] = []
        pos = 0
        n = len(buf)
        while n - pos >= 5:
            length, kind = decode_header(bytes(buf[pos : pos + 5]))
            end = pos + 5 + length
            if end > n:
                break
            out.append((kind, decode_body(memoryview(buf)[pos + 5 : end])))
            pos = end
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame (non-zero at EOF means a truncated frame)."""
        return len(self._buf)
