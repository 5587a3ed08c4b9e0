"""What a component needs to start: the manifest's ``classpath``, ``init`` and
``build_constraints``.

``classpath`` (jar form) lists more jars for the component's own class loader:
paths or globs, relative to the manifest's folder (a CLI ``--classpath`` is
made absolute against the working directory before it gets here).  ``init``
gives the arguments of the component's constructor, for the python, inline and
jar forms: ``[component.init]`` (a table) is named, ``init = [...]``
positional.  Both are validated like every key: a mistake is
``invalid_manifest`` naming the key, a jar that is not there
``artifact_not_found``.
"""

from __future__ import annotations

import datetime
import glob
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cncf import limits
from cncf.observation import Code, Failed, Observation

if TYPE_CHECKING:
    from cncf.manifest import _Checker

_INIT_FORMS = ("python", "inline", "jar")
_GLOB = set("*?[")


def classpath_of(check: _Checker, comp: Mapping[str, Any], form: str, base: Path) -> tuple[Path, ...]:
    """The jars of ``classpath``, globs expanded (sorted), each an existing file."""
    entries = check.strings(comp, "classpath", "component.")
    if not entries:
        return ()
    if form != "jar":
        raise check.fail("component.classpath", list(entries), "no classpath unless form = 'jar'")
    out: list[Path] = []
    for entry in entries:
        pattern = Path(entry).expanduser()
        if not pattern.is_absolute():
            pattern = base / pattern
        if _GLOB & set(entry):
            matches = sorted(Path(m) for m in glob.glob(str(pattern), recursive=True) if Path(m).is_file())
            if not matches:
                raise check.fail(
                    "component.classpath",
                    entry,
                    f"a path or glob matching at least one jar (none match {str(pattern)!r})",
                )
            out.extend(m.resolve() for m in matches)
        elif pattern.is_file():
            out.append(pattern.resolve())
        else:
            raise Failed(
                Observation.of(
                    Code.ARTIFACT_NOT_FOUND,
                    f"{check.source}: classpath entry {str(pattern)!r} does not exist",
                    path=str(pattern),
                    file=check.source,
                    key="component.classpath",
                )
            )
    return tuple(dict.fromkeys(out))


def init_of(check: _Checker, comp: Mapping[str, Any], form: str) -> list[Any] | dict[str, Any] | None:
    """The constructor arguments: a list (positional) or a table (named), JSON values only."""
    v = comp.get("init")
    if v is None:
        return None
    if not isinstance(v, list | dict):
        raise check.fail("component.init", v, "a table [component.init] (named) or a list (positional)")
    if form not in _INIT_FORMS:
        raise check.fail("component.init", v, f"no init unless form is one of {', '.join(_INIT_FORMS)}")
    if isinstance(v, dict) and not all(isinstance(k, str) and k for k in v):
        raise check.fail("component.init", v, "a table whose keys are parameter names")
    bound = limits.current().argument_depth
    if limits.json_depth(v, bound + 1) - 1 > bound:  # iterative: a hostile init cannot overflow the stack
        raise check.fail(
            "component.init", f"<nested deeper than {bound} levels>", f"at most {bound} levels (CNCF_MAX_ARG_DEPTH)"
        )
    try:
        json.dumps(v, allow_nan=False, default=_no_json)
    except (TypeError, ValueError, RecursionError) as exc:
        raise check.fail("component.init", v, f"JSON values only ({exc})") from None
    return v


def _no_json(value: object) -> object:
    if isinstance(value, datetime.date | datetime.time):
        raise TypeError(f"a TOML {type(value).__name__} is not JSON: quote it as an ISO-8601 string")
    raise TypeError(f"{type(value).__name__} is not JSON")


def build_constraints_of(check: _Checker, comp: Mapping[str, Any], form: str) -> tuple[str, ...]:
    """Pins for the tools that build an sdist (``setuptools<58``): requirement
    strings, passed to ``uv pip install --build-constraints``; python form only."""
    pins = check.strings(comp, "build_constraints", "component.")
    if not pins:
        return ()
    if form != "python":
        raise check.fail("component.build_constraints", list(pins), "no build_constraints unless form = 'python'")
    for pin in pins:
        if pin.lstrip().startswith("-"):
            raise check.fail("component.build_constraints", pin, "requirement strings such as 'cython<3', not options")
    return pins
