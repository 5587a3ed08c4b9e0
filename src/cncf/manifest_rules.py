"""Value rules of the manifest that the OS and the engine depend on.

:mod:`cncf.manifest` reads keys and types; this module decides whether a
value is one the hub can honour.  A value that passes here never becomes an
``internal_error``, a wedged component or a call without an Outcome later:

* every number is finite and inside a range (``nan`` compares false with
  everything, so a NaN ``cancel_grace`` once meant "never escalate");
* every string is free of NUL bytes (the OS truncates or refuses them);
* ``env`` is a table of names without ``=`` or NUL;
* component names are ASCII letters, digits, ``_`` and ``-`` (at most
  :data:`MAX_NAME` characters, starting with a letter, digit or ``_``): they
  are the first part of a selector, a path segment of the HTTP routes, a
  line of logs and a file name in the hub's home — a ``.``, ``/``, newline or
  a letter that case-folds into ASCII (U+212A) has no place in any of them;
* ``requirements`` are PEP 508 requirements, parsed with ``packaging``; an
  option such as ``--target=/elsewhere`` is refused, never handed to uv.

Each function returns the reason a value is refused (what is expected), or
``None`` when it is fine; the manifest turns a reason into ``invalid_manifest``
naming the file and the key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_MEMORY",
    "MAX_NAME",
    "NUMBER_RANGES",
    "direct_reference",
    "env_problem",
    "name_problem",
    "number_problem",
    "requirement_problem",
    "text_problem",
]

#: The largest memory limit the kernel's rlimits take (``RLIM_INFINITY`` is 2**64-1; the
#: signed ``int64`` bound keeps every form's conversion exact).
MAX_MEMORY = 2**63 - 1
_DAY = 86_400.0
_FOREVER = 1e9  # seconds: about 31 years; finite, so every deadline is a real time

#: Upper bounds per key (the lower bound comes from the caller).
NUMBER_RANGES: dict[str, float] = {
    "wait_timeout": _FOREVER,
    "run_timeout": _FOREVER,
    "cancel_grace": _DAY,
    "restart_period": _FOREVER,
    "restart_backoff": _DAY,
    "build_timeout": _DAY,
    "max_concurrency": 1_000_000,
    "max_attempts": 1_000_000,
    "max_restarts": 1_000_000,
    "replicas": 256,  # each replica is a worker process (or a JVM)
    "min_replicas": 256,
    "max_replicas": 256,
    "target_in_flight": 1_000_000,
    "scale_up_delay": _DAY,
    "scale_down_delay": _DAY,
    "drain_timeout": _DAY,
}


def number_problem(key: str, value: Any) -> str | None:
    """Why a number read for ``key`` cannot be used (NaN, infinite, too large)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "a finite number"
    top = NUMBER_RANGES.get(key.rpartition(".")[2])
    if top is not None and value > top:
        return f"a number <= {top:g}"
    return None


def text_problem(value: str) -> str | None:
    return "a string without NUL bytes" if "\0" in value else None


MAX_NAME = 100
_NAME = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_-]{{0,{MAX_NAME - 1}}}")


def name_problem(name: str) -> str | None:
    """Component names: ASCII letters, digits, '_' and '-' (see the module doc)."""
    if not _NAME.fullmatch(name):
        return (
            f"a name of ASCII letters, digits, '_' and '-' (not starting with '-', at most {MAX_NAME} "
            "characters): it is the first part of a selector and a segment of the HTTP routes"
        )
    return None


def env_problem(env: Any) -> tuple[str, str] | None:
    """(key, expected) for the first bad entry of a manifest ``env`` table."""
    if not isinstance(env, Mapping):
        return "env", 'a table of string values, e.g. env = { LOG_LEVEL = "debug" }'
    for k, v in env.items():
        if not isinstance(k, str) or not k or "=" in k or "\0" in k:
            return f"env.{k}", "a variable name without '=' or NUL"
        if not isinstance(v, str) or "\0" in v:
            return f"env.{k}", "a string value without NUL bytes"
    return None


def requirement_problem(text: str) -> str | None:
    """Why ``text`` is not a PEP 508 requirement (options and paths are refused)."""
    if text.lstrip().startswith("-"):
        return "a PEP 508 requirement such as 'pkg==1.2'; options (like --target or --index-url) are not requirements"
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging is a dependency
        return None
    try:
        Requirement(text)
    except InvalidRequirement as exc:
        return f"a PEP 508 requirement such as 'pkg==1.2' ({str(exc).splitlines()[0]})"
    return None


def direct_reference(text: str) -> str | None:
    """The URL of a PEP 508 direct reference (``pkg @ https://…`` or ``pkg @ file:///…``),
    or ``None`` for a requirement resolved on the index."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging is a dependency
        return text if "@" in text or "://" in text else None
    try:
        url = Requirement(text).url
    except InvalidRequirement:
        return None  # refused by requirement_problem, or an index-only pin for build tools
    return url or None
