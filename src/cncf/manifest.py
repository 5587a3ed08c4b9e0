"""The component manifest (``cncf.toml``) and target discovery.

A target is whatever the user points at: a folder, a ``cncf.toml``, a jar, a
zipapp, a wheel, a ``.py`` file.  :func:`locate` finds the manifest that
belongs to it (in the folder, beside the artifact as ``<file>.cncf.toml`` or a
``cncf.toml`` naming it, at the root of a zipapp, or as
``META-INF/cncf/component.toml`` inside a jar), applies overrides (CLI options
or ``hub.load(**overrides)``), validates every key and returns a
:class:`ComponentSpec`.

Validation is strict: an unknown key, a wrong type or a bad value raises
``Failed`` with ``invalid_manifest`` whose message names the file, the key,
the value and what was expected; attributes carry the same as fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cncf import limits
from cncf import manifest_rules as rules
from cncf._files import NotRegular, check_regular, read_bounded
from cncf._start import build_constraints_of, classpath_of, init_of
from cncf.failures import cause_of
from cncf.observation import Code, Failed, Observation
from cncf.policy import Mode, PolicySpec, Restart

FORMS = ("python", "jar", "inline", "command")
RESTARTS = tuple(r.value for r in Restart)
ISOLATIONS = ("shared", "process")
PLACEMENTS = ("local", "ray")
PLACEMENT_KEYS = ("placement", "ray_address", "placement_resources")
#: Keys only a caller may give (a load override, a hub file's entry or its ``[hub]``
#: table), never a component's own manifest: they widen what the hub trusts.
CALLER_KEYS = ("allow_direct_references",)
#: Keys of a hub file's ``[hub]`` table: defaults for every component of the file.
HUB_KEYS = (*PLACEMENT_KEYS, *CALLER_KEYS, "build_timeout")
JAR_MANIFEST = "META-INF/cncf/component.toml"
#: Replicas and generations (brief section 14; docs/replicas.md, docs/upgrades.md).
REPLICA_KEYS = (
    "replicas",
    "stateless",
    "route_by",
    "drain_timeout",
    "readiness",
    "min_replicas",
    "max_replicas",
    "target_in_flight",
    "scale_up_delay",
    "scale_down_delay",
)


@dataclasses.dataclass(frozen=True)
class ServiceSpec:
    operations: tuple[str, ...]
    policy: PolicySpec = PolicySpec()


@dataclasses.dataclass(frozen=True)
class ComponentSpec:
    """Everything the hub knows about a component before loading it."""

    name: str
    form: str
    artifact: Path
    base_dir: Path
    manifest_path: str | None = None  # where the manifest came from (may be "x.jar!/META-INF/...")
    entry: str | None = None
    requirements: tuple[str, ...] = ()
    wheels: tuple[Path, ...] = ()
    interpreter: str | None = None
    command: tuple[str, ...] = ()
    policy: PolicySpec = PolicySpec()
    services: Mapping[str, ServiceSpec] = dataclasses.field(default_factory=dict)
    operations: Mapping[str, PolicySpec] = dataclasses.field(default_factory=dict)
    restart: Restart = Restart.ON_FAILURE
    max_restarts: int = 5
    restart_period: float = 60.0
    restart_backoff: float = 0.05
    memory_limit: int | None = None  # bytes
    isolation: str = "shared"  # jar: shared host, or a JVM of its own
    jvm_options: tuple[str, ...] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    classpath: tuple[Path, ...] = ()  # jar: more jars for the component's own loader
    build_constraints: tuple[str, ...] = ()  # python: pins for building sdists (uv --build-constraints)
    init: list[Any] | dict[str, Any] | None = None  # constructor arguments: positional or named
    placement: str = "local"  # where the boundary lives: this machine, or a node of a Ray cluster
    ray_address: str | None = None  # None: RAY_ADDRESS, else "auto" (resolved when placing)
    placement_resources: Mapping[str, float] = dataclasses.field(default_factory=dict)
    inherit_env: bool = False  # pass the hub's whole environment, not the allow-list
    build_timeout: float | None = None  # python: seconds for uv to build the environment (None: the default)
    replicas: int = 1  # workers serving the component (several: stateless or route_by)
    stateless: bool = False  # any replica may serve any call
    route_by: str | None = None  # the argument whose value picks the replica (a sharded component)
    drain_timeout: float = 30.0  # seconds an old generation may finish its calls after an upgrade
    readiness: str | None = None  # an operation a new generation must answer before the switch
    # Autoscaling (a stateless component): between min and max replicas, aiming at
    # target_in_flight calls per replica, after the condition held for the delay.
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_in_flight: float = 1.0
    scale_up_delay: float = 2.0
    scale_down_delay: float = 30.0

    @property
    def autoscaled(self) -> bool:
        return self.max_replicas is not None

    @property
    def suffix(self) -> str:
        return self.artifact.suffix.lower()


# ---------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------


class _Checker:
    """Reads typed values out of a TOML table, naming file and key on failure."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, value: Any, expected: str) -> Failed:
        return Failed(
            Observation.of(
                Code.INVALID_MANIFEST,
                f"{self.source}: key '{key}' is {value!r}; expected {expected}",
                file=self.source,
                key=key,
                value=repr(value),
                expected=expected,
            )
        )

    def unknown(self, table: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                expected = f"one of: {', '.join(allowed)}" + (f" (did you mean '{hint[0]}'?)" if hint else "")
                raise self.fail(f"{prefix}{key}", table[key], expected)

    def string(self, table: Mapping[str, Any], key: str, prefix: str) -> str | None:
        v = table.get(key)
        if v is None:
            return None
        if not isinstance(v, str) or not v.strip():
            raise self.fail(prefix + key, v, "a non-empty string")
        if (why := rules.text_problem(v)) is not None:
            raise self.fail(prefix + key, v, why)
        return v

    def choice(self, table: Mapping[str, Any], key: str, prefix: str, choices: tuple[str, ...]) -> str | None:
        v = table.get(key)
        if v is None:
            return None
        if v not in choices:
            raise self.fail(prefix + key, v, "one of " + ", ".join(f"'{c}'" for c in choices))
        return str(v)

    def number(
        self, table: Mapping[str, Any], key: str, prefix: str, *, integer: bool = False, minimum: float = 0.0
    ) -> Any:
        v = table.get(key)
        if v is None:
            return None
        ok = isinstance(v, int) if integer else isinstance(v, int | float)
        if isinstance(v, bool) or not ok or v < minimum or (minimum > 0 and v == 0 and integer):
            kind = "an integer" if integer else "a number"
            raise self.fail(prefix + key, v, f"{kind} >= {minimum:g}")
        if (why := rules.number_problem(key, v)) is not None:
            raise self.fail(prefix + key, v, why)
        return v

    def strings(self, table: Mapping[str, Any], key: str, prefix: str) -> tuple[str, ...] | None:
        v = table.get(key)
        if v is None:
            return None
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list | tuple) or not all(isinstance(x, str) and x for x in v):
            raise self.fail(prefix + key, v, "a list of non-empty strings")
        for x in v:
            if (why := rules.text_problem(x)) is not None:
                raise self.fail(prefix + key, x, why)
        return tuple(v)

    def policy(self, table: Mapping[str, Any], prefix: str) -> PolicySpec:
        mode = self.choice(table, "policy", prefix, tuple(m.value for m in Mode))
        # max_concurrency may stand at any level, whatever that level's policy: it
        # is the limit that a more specific ``concurrent`` declaration runs under.
        conc = self.number(table, "max_concurrency", prefix, integer=True, minimum=1)
        return PolicySpec(
            policy=Mode(mode) if mode else None,
            max_concurrency=conc,
            wait_timeout=self.number(table, "wait_timeout", prefix),
            run_timeout=self.number(table, "run_timeout", prefix),
            cancel_grace=self.number(table, "cancel_grace", prefix),
            max_attempts=self.number(table, "max_attempts", prefix, integer=True, minimum=1),
            http_get=_flag(self, table, "http_get", prefix) if "http_get" in table else None,
            idempotent=_flag(self, table, "idempotent", prefix) if "idempotent" in table else None,
        )


_POLICY_KEYS = (
    "policy",
    "max_concurrency",
    "wait_timeout",
    "run_timeout",
    "cancel_grace",
    "max_attempts",
    "http_get",
    "idempotent",
)
COMPONENT_KEYS = (
    "name",
    "form",
    "entry",
    "artifact",
    "requirements",
    "wheels",
    "interpreter",
    "command",
    "restart",
    "max_restarts",
    "restart_period",
    "restart_backoff",
    "memory_limit",
    "isolation",
    "jvm_options",
    "env",
    "classpath",
    "init",
    "build_constraints",
    "inherit_env",
    "build_timeout",
    *REPLICA_KEYS,
    *PLACEMENT_KEYS,
    *_POLICY_KEYS,
)
_TOP_KEYS = ("component", "services", "operations")
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
}


def _memory(check: _Checker, table: Mapping[str, Any]) -> int | None:
    v = table.get("memory_limit")
    if v is None:
        return None
    size: int | None = None
    if isinstance(v, int) and not isinstance(v, bool):
        size = v * 1024**2  # a bare number is MiB
    elif isinstance(v, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", v)
        if m and m.group(2).lower() in _UNITS:
            size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size is not None and 0 < size <= rules.MAX_MEMORY:
        return size
    raise check.fail("component.memory_limit", v, "a size such as 256 (MiB), '512MB' or '1GiB'")


def placement_resources(check: _Checker, table: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """``placement_resources``: a table of Ray resource name -> positive, finite amount."""
    v = table.get("placement_resources")
    if v is None:
        return {}
    expected = "a table of resource name -> positive number, e.g. { beta = 1 }"
    if not isinstance(v, Mapping):
        raise check.fail(prefix + "placement_resources", v, expected)
    out: dict[str, float] = {}
    for name, amount in v.items():
        if (
            not isinstance(name, str)
            or not name.strip()
            or "\0" in name
            or isinstance(amount, bool)
            or not isinstance(amount, int | float)
            or not math.isfinite(amount)
            or amount <= 0
        ):
            raise check.fail(f"{prefix}placement_resources.{name}", amount, expected)
        out[name] = float(amount)
    return out


def placement_keys(check: _Checker, table: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The three placement keys of a manifest or a hub file's ``[hub]`` table, validated."""
    address = check.string(table, "ray_address", prefix)
    if address is not None and "\0" in address:
        raise check.fail(prefix + "ray_address", address, "an address without NUL bytes")
    return {
        "placement": check.choice(table, "placement", prefix, PLACEMENTS) or "local",
        "ray_address": address,
        "placement_resources": placement_resources(check, table, prefix),
    }


# ---------------------------------------------------------------------------
# Reading manifests
# ---------------------------------------------------------------------------


def _parse_toml(data: str | bytes, source: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise Failed(
            Observation.of(
                Code.INVALID_MANIFEST,
                f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start}); TOML files must be UTF-8",
                file=source,
            )
        ) from None
    except RecursionError:
        raise Failed(
            Observation.of(Code.INVALID_MANIFEST, f"{source}: nested too deeply to read", file=source)
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise Failed(
            Observation.of(Code.INVALID_MANIFEST, f"{source}: not valid TOML: {exc}", file=source, cause=cause_of(exc))
        ) from None


def _manifest_bytes(p: Path, folder: Path) -> bytes | None:
    """A manifest's bytes: a regular file within the size bound, reached through no
    symlink leaving ``folder``; None when there is none (``invalid_manifest`` when
    something else stands in its place)."""
    if not os.path.lexists(p):
        return None
    bound = limits.current().manifest_bytes
    try:
        return read_bounded(p, bound, folder)
    except FileNotFoundError:
        return None  # a dangling symlink: no manifest
    except NotRegular as exc:
        raise Failed(
            Observation.of(
                Code.INVALID_MANIFEST,
                f"{p}: {exc.detail}" + (" (CNCF_MAX_MANIFEST)" if exc.reason == "too_large" else ""),
                file=str(p),
                **exc.attributes,
            )
        ) from None
    except OSError as exc:
        raise Failed(
            Observation.of(Code.INVALID_MANIFEST, f"{p}: cannot be read: {exc.strerror}", file=str(p))
        ) from None


def _member_bytes(zf: zipfile.ZipFile, member: str, source: str) -> bytes:
    """A manifest inside an archive, bounded before it is inflated."""
    bound = limits.current().manifest_bytes
    info = zf.getinfo(member)
    if info.file_size > bound:
        raise Failed(
            Observation.of(
                Code.INVALID_MANIFEST,
                f"{source}: {info.file_size} bytes, over the {bound}-byte bound (CNCF_MAX_MANIFEST)",
                file=source,
                reason="too_large",
                size=info.file_size,
                bound=bound,
            )
        )
    with zf.open(info) as f:
        data = f.read(bound + 1)
    if len(data) > bound:
        raise Failed(
            Observation.of(Code.INVALID_MANIFEST, f"{source}: over the {bound}-byte bound", file=source, bound=bound)
        )
    return data


def _read_manifest(target: Path) -> tuple[dict[str, Any], str, Path] | None:
    """Find the manifest belonging to ``target``: (document, source name, base dir)."""
    if target.is_dir():
        p = target / "cncf.toml"
        data = _manifest_bytes(p, target)
        return (_parse_toml(data, str(p)), str(p), target) if data is not None else None
    if target.name == "cncf.toml" or target.suffix == ".toml":
        data = _manifest_bytes(target, target.parent)
        if data is None:
            return None
        return _parse_toml(data, str(target)), str(target), target.parent
    _artifact_file(target, None)  # a FIFO or a device is refused before anything reads it
    sidecar = target.with_name(target.name + ".cncf.toml")
    data = _manifest_bytes(sidecar, target.parent)
    if data is not None:
        return _parse_toml(data, str(sidecar)), str(sidecar), target.parent
    beside = target.parent / "cncf.toml"
    data = _manifest_bytes(beside, target.parent)
    if data is not None:
        doc = _parse_toml(data, str(beside))
        art = (doc.get("component") or {}).get("artifact")
        if isinstance(art, str) and (target.parent / art).resolve() == target.resolve():
            return doc, str(beside), target.parent
    inner = {".jar": JAR_MANIFEST, ".pyz": "cncf.toml", ".pex": "cncf.toml", ".zip": "cncf.toml"}
    member = inner.get(target.suffix.lower())
    if member and zipfile.is_zipfile(target):
        try:
            with zipfile.ZipFile(target) as zf:
                if member in zf.namelist():
                    source = f"{target}!/{member}"
                    return _parse_toml(_member_bytes(zf, member, source), source), source, target.parent
        except (zipfile.BadZipFile, OSError, UnicodeDecodeError, EOFError):
            return None  # the boundary reports the corrupt archive with its own code
    return None


def _artifact_file(artifact: Path, folder: Path | None) -> None:
    """Refuse an artifact that is not a regular file or a folder (a FIFO, a device,
    a symlink leaving the component's folder) with ``invalid_archive``."""
    try:
        check_regular(artifact, folder, directory=True)
    except NotRegular as exc:
        raise Failed(
            Observation.of(
                Code.INVALID_ARCHIVE,
                f"artifact {str(artifact)!r} is {exc.detail}",
                path=str(artifact),
                **exc.attributes,
            )
        ) from None
    except FileNotFoundError:
        raise Failed(
            Observation.of(Code.ARTIFACT_NOT_FOUND, f"artifact {str(artifact)!r} does not exist", path=str(artifact))
        ) from None
    except OSError:
        return  # unreadable (permissions): the form reports it in its own words


def _infer_form(artifact: Path, table: Mapping[str, Any]) -> str | None:
    if table.get("command"):
        return "command"
    suffix = artifact.suffix.lower()
    if suffix == ".jar":
        return "jar"
    if suffix in (".pyz", ".pex", ".shiv", ".pyzw", ".whl", ".py") or artifact.is_dir():
        return "python"
    if artifact.is_file() and zipfile.is_zipfile(artifact):  # a zipapp by any name: it has a __main__.py
        try:
            with zipfile.ZipFile(artifact) as zf:
                if "__main__.py" in zf.namelist():
                    return "python"
        except (zipfile.BadZipFile, OSError):
            return None
    return None


def _default_name(artifact: Path) -> str:
    stem = artifact.name if artifact.is_dir() else artifact.stem
    if artifact.suffix.lower() == ".whl":
        stem = artifact.name.split("-")[0]
    elif artifact.suffix.lower() == ".jar":
        stem = re.sub(r"[-_]\d[\w.]*$", "", stem)  # guava-31.1-jre -> guava
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-") or "component"


def locate(target: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> ComponentSpec:
    """Resolve a target and overrides into a validated :class:`ComponentSpec`.

    Raises ``Failed`` (load stage) for a missing target or an invalid manifest.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None and v != () and v != []}
    raw = str(target)
    path = Path(raw).expanduser()
    form_override = overrides.get("form")
    if not path.exists():
        if form_override == "inline" or (form_override is None and _looks_importable(raw)):
            path = Path.cwd()
            overrides.setdefault("form", "inline")
            overrides.setdefault("entry", raw)
        else:
            raise Failed(
                Observation.of(
                    Code.ARTIFACT_NOT_FOUND,
                    f"target {raw!r} does not exist (expected a folder, cncf.toml, .jar, .pyz, .whl or .py)",
                    path=raw,
                )
            )
    path = path.resolve()
    found = _read_manifest(path)
    doc, source, base = found if found else ({}, "<no manifest>", path if path.is_dir() else path.parent)
    check = _Checker(source)
    check.unknown(doc, _TOP_KEYS, "")
    comp = doc.get("component", {})
    if not isinstance(comp, dict):
        raise check.fail("component", comp, "a table [component]")
    check.unknown(comp, COMPONENT_KEYS, "component.")
    allow_direct = overrides.pop("allow_direct_references", False)
    if not isinstance(allow_direct, bool):
        raise _Checker("<overrides>").fail("allow_direct_references", allow_direct, "true or false")
    from_manifest = {k for k in ("requirements", "build_constraints") if k not in overrides}
    if overrides:
        ocheck = _Checker("<overrides>")
        ocheck.unknown(overrides, COMPONENT_KEYS, "")
        comp = {**comp, **overrides}
        check = _Checker(f"{source} + overrides" if found else "<overrides>")
    p = "component."

    # The artifact: the manifest's `artifact`, else the target itself.
    art_value = check.string(comp, "artifact", p)
    if art_value and not (found and source.endswith("!/" + JAR_MANIFEST)):
        if os.path.lexists(base / art_value):
            _artifact_file(base / art_value, base)  # before resolving: a symlink leaving the folder is seen
        artifact = (base / art_value).resolve()
    elif path.name.endswith(".toml") and not path.is_dir():
        artifact = base
    else:
        artifact = path
    form = check.choice(comp, "form", p, FORMS) or _infer_form(artifact, comp)
    if form is None:
        raise Failed(
            Observation.of(
                Code.UNSUPPORTED_FORM,
                f"cannot infer the form of {str(artifact)!r}: give form = python | jar | inline | command",
                path=str(artifact),
            )
        )
    if form != "inline" and form != "command" and not artifact.exists():
        raise Failed(
            Observation.of(
                Code.ARTIFACT_NOT_FOUND,
                f"{source}: artifact {str(artifact)!r} does not exist",
                path=str(artifact),
                file=source,
            )
        )
    services: dict[str, ServiceSpec] = {}
    stable = doc.get("services", {})
    if not isinstance(stable, dict):
        raise check.fail("services", stable, "tables [services.NAME]")
    for sname, sdef in stable.items():
        sp = f"services.{sname}."
        if not isinstance(sdef, dict):
            raise check.fail(f"services.{sname}", sdef, "a table")
        check.unknown(sdef, ("operations", *_POLICY_KEYS), sp)
        ops = check.strings(sdef, "operations", sp)
        if not ops:
            raise check.fail(sp + "operations", sdef.get("operations"), "a non-empty list of operation names")
        services[sname] = ServiceSpec(ops, check.policy(sdef, sp))
    operations: dict[str, PolicySpec] = {}
    otable = doc.get("operations", {})
    if not isinstance(otable, dict):
        raise check.fail("operations", otable, "tables [operations.NAME]")
    for oname, odef in otable.items():
        op = f"operations.{oname}."
        if not isinstance(odef, dict):
            raise check.fail(f"operations.{oname}", odef, "a table")
        check.unknown(odef, _POLICY_KEYS, op)
        operations[oname] = check.policy(odef, op)
    env = comp.get("env", {})
    if (bad := rules.env_problem(env)) is not None:
        raise check.fail(p + bad[0], env.get(bad[0][4:]) if isinstance(env, dict) else env, bad[1])
    wheel_names = check.strings(comp, "wheels", p) or ()
    for w in wheel_names:
        if os.path.lexists(base / w):
            _artifact_file(base / w, base)  # hashed and installed by the hub: regular files only
    wheels = tuple((base / w).resolve() for w in wheel_names)
    if artifact.suffix.lower() == ".whl":
        wheels = (artifact, *wheels)
    command = check.strings(comp, "command", p) or ()
    if form == "command" and not command:
        raise check.fail(p + "command", None, "the worker's argv, e.g. ['node', 'component.js']")
    entry = check.string(comp, "entry", p)
    if form == "inline" and not entry:
        raise check.fail(p + "entry", None, "'module:Class' or 'module' importable in the hub")
    name = check.string(comp, "name", p)
    if name is not None and (why := rules.name_problem(name)) is not None:
        raise check.fail(p + "name", name, why)
    requirements = check.strings(comp, "requirements", p) or ()
    for req in requirements:
        if (why := rules.requirement_problem(req)) is not None:
            raise check.fail(p + "requirements", req, why)
    if not allow_direct:
        _refuse_direct(check, source, requirements if "requirements" in from_manifest else (), "requirements")
        if "build_constraints" in from_manifest:
            _refuse_direct(check, source, check.strings(comp, "build_constraints", p) or (), "build_constraints")
    build_timeout = check.number(comp, "build_timeout", p)
    if build_timeout is not None and not build_timeout > 0:
        raise check.fail(p + "build_timeout", build_timeout, "a positive number of seconds")
    return ComponentSpec(
        classpath=classpath_of(check, comp, form, base),
        build_constraints=build_constraints_of(check, comp, form),
        init=init_of(check, comp, form),
        name=name or (_entry_name(entry) if form == "inline" and not found else _default_name(artifact)),
        form=form,
        artifact=artifact,
        base_dir=base,
        manifest_path=source if found else None,
        entry=entry,
        requirements=requirements,
        wheels=wheels,
        interpreter=check.string(comp, "interpreter", p),
        command=command,
        policy=check.policy(comp, p),
        services=services,
        operations=operations,
        restart=Restart(check.choice(comp, "restart", p, RESTARTS) or Restart.ON_FAILURE),
        max_restarts=_or(check.number(comp, "max_restarts", p, integer=True), 5),
        restart_period=_or(check.number(comp, "restart_period", p), 60.0),
        restart_backoff=_or(check.number(comp, "restart_backoff", p), 0.05),
        memory_limit=_memory(check, comp),
        isolation=check.choice(comp, "isolation", p, ISOLATIONS) or "shared",
        jvm_options=check.strings(comp, "jvm_options", p) or (),
        env=dict(env),
        **placement_keys(check, comp, p),
        inherit_env=_flag(check, comp, "inherit_env", p),
        build_timeout=build_timeout,
        **replica_keys(check, comp, p, source),
    )


def replica_keys(check: _Checker, comp: Mapping[str, Any], p: str, source: str) -> dict[str, Any]:
    """``replicas``, ``stateless``, ``route_by``, ``drain_timeout``, ``readiness``, validated.

    A component is stateful unless it says otherwise: more than one replica
    needs ``stateless = true`` or ``route_by`` (calls with the same key value
    reach the same replica), else ``invalid_manifest`` naming both ways out."""
    replicas = _or(check.number(comp, "replicas", p, integer=True, minimum=1), 1)
    stateless = _flag(check, comp, "stateless", p)
    low = check.number(comp, "min_replicas", p, integer=True, minimum=1)
    high = check.number(comp, "max_replicas", p, integer=True, minimum=1)
    scaling: dict[str, Any] = {}
    if low is not None or high is not None:
        low = _or(low, 1)
        high = _or(high, max(low, replicas))
        if high < low:
            raise check.fail(p + "max_replicas", high, f"an integer >= min_replicas ({low})")
        if "replicas" in comp and not low <= replicas <= high:
            raise check.fail(
                p + "replicas", replicas, f"a count between min_replicas ({low}) and max_replicas ({high})"
            )
        if not stateless:
            raise check.fail(
                p + "max_replicas",
                high,
                "stateless = true with autoscaling (a keyed or stateful component keeps a fixed number of replicas)",
            )
        target = _or(check.number(comp, "target_in_flight", p), 1.0)
        if not target > 0:
            raise check.fail(p + "target_in_flight", target, "a positive number of calls in flight per replica")
        scaling = {
            "min_replicas": low,
            "max_replicas": high,
            "target_in_flight": target,
            "scale_up_delay": _or(check.number(comp, "scale_up_delay", p), 2.0),
            "scale_down_delay": _or(check.number(comp, "scale_down_delay", p), 30.0),
        }
        replicas = replicas if "replicas" in comp else low
    route_by = check.string(comp, "route_by", p)
    if stateless and route_by is not None:
        raise check.fail(p + "route_by", route_by, "no route_by on a stateless component (any replica serves any call)")
    if replicas > 1 and not stateless and route_by is None:
        raise Failed(
            Observation.of(
                Code.INVALID_MANIFEST,
                f"{source}: replicas = {replicas} on a stateful component: each replica would hold its own "
                "state. Say stateless = true (any replica may serve any call), or name a routing key with "
                'route_by = "ARGUMENT" (calls with the same value of that argument always reach the same '
                "replica); or keep replicas = 1",
                file=source,
                key=p + "replicas",
                value=repr(replicas),
                expected="stateless = true or route_by = ARGUMENT with replicas > 1",
                reason="stateful_replicas",
            )
        )
    drain = _or(check.number(comp, "drain_timeout", p), 30.0)
    return {
        "replicas": replicas,
        "stateless": stateless,
        "route_by": route_by,
        "drain_timeout": drain,
        "readiness": check.string(comp, "readiness", p),
        **scaling,
    }


def _refuse_direct(check: _Checker, source: str, requirements: tuple[str, ...] | list[str], key: str) -> None:
    """A manifest's direct references (``pkg @ https://…``, ``pkg @ file:///…``) make
    the hub fetch any address or read any path: only a caller may allow them."""
    for req in requirements:
        url = rules.direct_reference(req)
        if url is not None:
            raise Failed(
                Observation.of(
                    Code.INVALID_MANIFEST,
                    f"{source}: requirement {req!r} is a direct reference ({url}); the hub installs only "
                    "packages named on the index unless its caller allows direct references "
                    "(allow_direct_references = true in the hub file's entry or [hub] table, or "
                    "hub.load(..., allow_direct_references=True))",
                    file=source,
                    key=f"component.{key}",
                    reason="direct_reference",
                    url=url,
                )
            )


def _flag(check: _Checker, table: Mapping[str, Any], key: str, prefix: str) -> bool:
    v = table.get(key, False)
    if not isinstance(v, bool):
        raise check.fail(prefix + key, v, "true or false")
    return v


def _entry_name(entry: str | None) -> str:
    module = (entry or "component").split(":", 1)[0]
    return module.rsplit(".", 1)[-1]


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _looks_importable(raw: str) -> bool:
    mod = raw.split(":", 1)[0]
    return bool(re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", mod)) and (":" in raw or "." in raw)
