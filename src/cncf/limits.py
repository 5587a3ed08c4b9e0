"""Bounds on everything a component or a caller produces (brief section 13).

Each bound is configurable, and crossing one is an Observation for that call
(or that load), never a failure of the hub or of a neighbour:

======================  ==========================  ==========================================
bound                   environment variable        crossing it
======================  ==========================  ==========================================
captured output         ``CNCF_MAX_OUTPUT``         head and tail kept, the middle dropped and
(per call and stream)                               counted in a marker line (not a failure)
argument nesting        ``CNCF_MAX_ARG_DEPTH``      ``arguments_too_large`` at dispatch
frame size              ``CNCF_MAX_FRAME``          ``arguments_too_large`` at dispatch
result nesting          ``CNCF_MAX_RESULT_DEPTH``   ``result_not_serialisable`` for that call
                                                    (a deep event frame is dropped)
manifest size           ``CNCF_MAX_MANIFEST``       ``invalid_manifest`` at load
extracted archive size  ``CNCF_MAX_ARCHIVE_BYTES``  ``archive_too_large`` at load
archive member count    ``CNCF_MAX_ARCHIVE_FILES``  ``archive_too_large`` at load
======================  ==========================  ==========================================

Values are byte counts (a suffix ``K``/``M``/``G`` is accepted) or counts.
A worker takes the bounds in force when it starts (a program sets them
before it loads a component); archives are checked with those in force at
load.  A malformed value falls back to the default rather than disabling a
bound.
"""

from __future__ import annotations

import dataclasses
import os
import re

__all__ = ["Limits", "current", "json_depth"]

_SIZE = re.compile(r"\s*(\d+)\s*([kKmMgG]?)[iI]?[bB]?\s*")
_MULT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """The bounds in force (see the module docstring)."""

    output_bytes: int = 1024 * 1024  # per call and per stream: half head, half tail
    argument_depth: int = 200  # the JVM host refuses more than 512; Python's decoder ~1000
    frame_bytes: int = 64 * 1024 * 1024
    result_depth: int = 512  # what the hub decodes from a worker; the C decoder stops near 900
    manifest_bytes: int = 1024 * 1024  # one cncf.toml, read only once it is known to be smaller
    archive_bytes: int = 1024**3  # extracted size of one zipapp or wheel
    archive_files: int = 100_000


_ENV = {
    "output_bytes": "CNCF_MAX_OUTPUT",
    "argument_depth": "CNCF_MAX_ARG_DEPTH",
    "frame_bytes": "CNCF_MAX_FRAME",
    "result_depth": "CNCF_MAX_RESULT_DEPTH",
    "manifest_bytes": "CNCF_MAX_MANIFEST",
    "archive_bytes": "CNCF_MAX_ARCHIVE_BYTES",
    "archive_files": "CNCF_MAX_ARCHIVE_FILES",
}
_DEFAULT = Limits()
_cache: tuple[tuple[str | None, ...], Limits] | None = None


def _parse(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    m = _SIZE.fullmatch(raw)
    if not m:
        return default
    value = int(m.group(1)) * _MULT[m.group(2).lower()]
    return value if value > 0 else default


def current() -> Limits:
    """The bounds from the environment (cached until the variables change)."""
    global _cache
    raw = tuple(os.environ.get(v) for v in _ENV.values())
    if _cache is not None and _cache[0] == raw:
        return _cache[1]
    limits = Limits(**{f: _parse(r, getattr(_DEFAULT, f)) for f, r in zip(_ENV, raw, strict=True)})
    _cache = (raw, limits)
    return limits


def json_depth(value: object, limit: int) -> int:
    """The nesting depth of a JSON-shaped value, or ``limit + 1`` as soon as it
    is exceeded (iterative: a hostile value cannot overflow the hub's stack)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            items: object = v.values()
        elif isinstance(v, list | tuple):
            items = v
        else:
            continue
        if d > deepest:
            deepest = d
            if d > limit:
                return limit + 1
        for x in items:  # type: ignore[attr-defined]
            if isinstance(x, dict | list | tuple):
                stack.append((x, d + 1))
    return deepest
