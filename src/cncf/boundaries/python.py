"""The ``python`` form: one worker process per component, on its own interpreter.

The worker runs ``cncf/worker/runtime.py`` (standard library only) under the
component's interpreter, with the component's own ``sys.path``:

* a **source folder** or a **module file** goes first on ``sys.path``;
* a **zipapp** (``.pyz`` from :mod:`zipapp`, a shiv or a pex) is extracted
  once into ``<cache>/zipapps/<sha256>`` and its layout recognised: plain
  (the archive root), shiv (``site-packages/``, vendored dependencies
  included) or pex (the root plus every ``.deps/<wheel>/`` chroot).  We do
  not run the shiv/pex bootstraps: they would extract into the user's home,
  re-exec the interpreter and add their start-up cost to every worker; the
  archives' own layouts are stable and documented;
* **wheels** and/or **requirements** are installed with uv into a private
  virtual environment cached by content hash (``_environments``); the wheel
  names its component class in the entry-point group ``cncf.components``.

Which environment a component sees is decided here and nowhere else: a
component with no requirements runs with ``-I -S`` (the standard library and
its own paths only, never the hub's packages); one with an environment runs
that venv's interpreter with ``-I``; an ``interpreter`` given as the path of
an existing venv's python keeps that venv's ``site-packages``.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import json
import os
import re
import shutil
import sys
import time
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cncf import limits
from cncf._private import private_dir
from cncf.boundaries._environment_policy import worker_environment
from cncf.boundaries._environments import EnvironmentCache, file_digest, venv_python
from cncf.boundaries._worker import LaunchPlan, WorkerBoundary, failed, resolve_executable
from cncf.boundaries.base import BoundaryContext
from cncf.observation import Code

if TYPE_CHECKING:
    from cncf.manifest import ComponentSpec

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "worker"
#: Runs the worker runtime as an imported module, so its bytecode is cached
#: (compiling it on every start would cost a third of a bare start).
_BOOT = "import sys;sys.path.insert(0,{dir!r});import runtime;del sys.path[0];del sys.modules['runtime'];runtime.main()"
_ZIP_SUFFIXES = (".pyz", ".pex", ".zip", ".shiv", ".pyzw")
_NOT_ENTRIES = {"setup", "conftest", "__main__", "noxfile", "tasks", "manage"}
ENTRY_POINT_GROUP = "cncf.components"


def worker_argv(python: str, *, site: bool) -> list[str]:
    """The command line that starts the worker runtime under ``python``."""
    flags = ["-I", "-u"] if site else ["-I", "-S", "-u"]
    return [python, *flags, "-c", _BOOT.format(dir=str(RUNTIME_DIR))]


def resolve_interpreter(spec: ComponentSpec) -> tuple[str, bool]:
    """(interpreter path, keeps its own site-packages) or ``interpreter_not_found``."""
    name = spec.interpreter
    if not name:
        return sys.executable, False
    found = resolve_executable(name, spec.base_dir)
    if found is None:
        raise failed(
            Code.INTERPRETER_NOT_FOUND,
            f"interpreter {name!r} for component {spec.name!r} is neither on PATH nor an "
            f"executable file (looked from {spec.base_dir})",
            interpreter=name,
        )
    is_venv = (Path(found).parent.parent / "pyvenv.cfg").is_file() and (os.sep in name)
    return found, is_venv


# ---------------------------------------------------------------------------
# Artifacts
# ---------------------------------------------------------------------------


def check_members(zf: zipfile.ZipFile, archive: Path, label: str) -> None:
    """Refuse, before anything is written, an archive that would escape its folder
    (``invalid_archive``) or exceed the extraction bounds (``archive_too_large``:
    declared sizes are what ``zipfile`` writes at most — it stops at the declared
    size and checks the CRC)."""
    bounds = limits.current()
    infos = zf.infolist()
    if len(infos) > bounds.archive_files:
        raise failed(
            Code.ARCHIVE_TOO_LARGE,
            f"[{label}] {archive.name} has {len(infos)} members, over the bound of "
            f"{bounds.archive_files} (CNCF_MAX_ARCHIVE_FILES)",
            path=str(archive),
            limit="archive_files",
            bound=bounds.archive_files,
            members=len(infos),
        )
    total = 0
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":") or "\0" in name:
            raise failed(
                Code.INVALID_ARCHIVE,
                f"[{label}] {archive.name} has a member that escapes its folder: {name!r} (a zip-slip archive)",
                path=str(archive),
                member=name,
                reason="member_escapes",
            )
        total += info.file_size
    if total > bounds.archive_bytes:
        raise failed(
            Code.ARCHIVE_TOO_LARGE,
            f"[{label}] {archive.name} declares {total} bytes when extracted, over the bound of "
            f"{bounds.archive_bytes} (CNCF_MAX_ARCHIVE_BYTES); a zip bomb?",
            path=str(archive),
            limit="archive_bytes",
            bound=bounds.archive_bytes,
            size=total,
        )


def _sweep_stale(cache: Path) -> None:
    """Half-extracted folders of a hub killed mid-extraction (older than an hour)."""
    now = time.time()
    with contextlib.suppress(OSError):
        for p in cache.glob(".extract-*"):
            with contextlib.suppress(OSError):
                if now - p.stat().st_mtime > 3600:
                    shutil.rmtree(p, ignore_errors=True)


def _extract(archive: Path, cache: Path, label: str) -> Path:
    """Extract a zipapp once per content hash; returns the extracted root."""
    try:
        digest = file_digest(archive)
    except OSError as exc:
        raise failed(Code.ARTIFACT_NOT_FOUND, f"cannot read {archive}: {exc}", path=str(archive)) from None
    final = cache / digest[:32]
    if final.is_dir():
        return final
    tmp = cache / f".extract-{digest[:12]}-{uuid.uuid4().hex[:8]}"
    try:
        private_dir(cache)
        _sweep_stale(cache)
        with zipfile.ZipFile(archive) as zf:
            check_members(zf, archive, label)
            bad = zf.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"member {bad!r} is corrupt (CRC mismatch)")
            zf.extractall(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError) as exc:
        raise failed(
            Code.INVALID_ARCHIVE,
            f"[{label}] {archive.name} is not a readable zipapp: {exc}",
            path=str(archive),
        ) from None
    except OSError as exc:  # the archive is fine, the cache is not (disk full, permissions)
        raise failed(
            Code.ENVIRONMENT_FAILED,
            f"[{label}] cannot extract {archive.name} into {cache}: {exc}",
            path=str(archive),
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _entry_point_module(info: Path) -> str | None:
    """The module of a shiv's or pex's own console entry point, as a hint."""
    try:
        doc = json.loads(info.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    ep = doc.get("entry_point") if isinstance(doc, dict) else None
    if isinstance(ep, str) and ep:
        module = ep.split(":", 1)[0].strip().removesuffix(".__main__")  # `python -m pkg`'s package
        return module if all(p.isidentifier() for p in module.split(".")) else None
    return None


def _zip_layout(root: Path) -> tuple[str, list[Path], str | None]:
    """Recognise a zipapp's layout: (kind, sys.path entries, entry module hint)."""
    if (root / "PEX-INFO").is_file():
        deps = root / ".deps"
        chroots = sorted(p for p in deps.iterdir() if p.is_dir()) if deps.is_dir() else []
        return "pex", [root, *chroots], _entry_point_module(root / "PEX-INFO")
    if (root / "environment.json").is_file() and (root / "site-packages").is_dir():
        return "shiv", [root / "site-packages"], _entry_point_module(root / "environment.json")
    return "zipapp", [root], None


def _requested(layout: str, root: Path, paths: list[Path]) -> list[str] | None:
    """The top-level modules of the distributions a pex or shiv was built from
    (PEX-INFO's ``requirements``; the dist-infos pip marked ``REQUESTED``), so
    that both infer the same entry from the same requirement; None elsewhere."""
    if layout == "pex":
        try:
            doc = json.loads((root / "PEX-INFO").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        wanted = {
            _canonical(re.split(r"[\s\[<>=!~;@]", str(r), maxsplit=1)[0])
            for r in (doc.get("requirements") or [])
            if isinstance(r, str)
        }
        infos = [i for p in paths for i in p.glob("*.dist-info")]
        chosen = [i for i in infos if _canonical(_dist_name(i)) in wanted]
    elif layout == "shiv":
        chosen = [i for p in paths for i in p.glob("*.dist-info") if (i / "REQUESTED").is_file()]
    else:
        return None
    out: set[str] = set()
    for info in chosen:
        try:
            names = (info / "top_level.txt").read_text("utf-8").split()
        except OSError:
            names = [_dist_name(info).replace("-", "_")]
        out.update(n for n in names if n.isidentifier() and not n.startswith("_") and n not in _NOT_ENTRIES)
    return sorted(out) or None


def _dist_name(info: Path) -> str:
    """``cowsay-6.1.dist-info`` -> ``cowsay``."""
    return info.name.removesuffix(".dist-info").rsplit("-", 1)[0]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _candidates(root: Path) -> list[str]:
    """Importable top-level modules and packages of a source root."""
    out: list[str] = []
    if not root.is_dir():
        return out
    for p in sorted(root.iterdir()):
        name = p.stem if p.suffix == ".py" else p.name
        if not name.isidentifier() or name in _NOT_ENTRIES or name.startswith(("test", "_")):
            continue
        if (p.suffix == ".py" and p.is_file()) or (p.is_dir() and (p / "__init__.py").is_file()):
            out.append(name)
    return out


def _top_level(names: list[str]) -> list[str]:
    """Importable top-level modules and packages listed in a wheel."""
    out = set()
    for n in names:
        head, sep, _ = n.partition("/")
        name = head[:-3] if not sep and head.endswith(".py") else head if sep else ""
        if name.isidentifier() and not name.startswith("_") and name not in _NOT_ENTRIES:
            out.add(name)
    return sorted(out)


def _wheel_entry(wheels: tuple[Path, ...], spec: ComponentSpec) -> tuple[str | None, list[str]]:
    """The entry named by the wheels' ``cncf.components`` entry points, and the
    top-level modules of the first wheel (the candidates when none is named)."""
    found: dict[str, str] = {}
    top: list[str] | None = None
    for wheel in wheels:
        try:
            with zipfile.ZipFile(wheel) as zf:
                names = zf.namelist()
                if not any(n.split("/", 1)[0].endswith(".dist-info") for n in names):
                    raise zipfile.BadZipFile("it has no .dist-info folder")
                if top is None:
                    top = _top_level(names)
                check_members(zf, wheel, spec.name)
                bad = zf.testzip()
                if bad is not None:
                    raise zipfile.BadZipFile(f"member {bad!r} is corrupt (CRC mismatch)")
                for n in names:
                    if n.endswith(".dist-info/entry_points.txt") and n.count("/") == 1:
                        parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
                        parser.optionxform = str  # type: ignore[assignment,method-assign]
                        parser.read_string(zf.read(n).decode("utf-8"))
                        if parser.has_section(ENTRY_POINT_GROUP):
                            for key, value in parser.items(ENTRY_POINT_GROUP):
                                found[key.strip()] = value.split("[", 1)[0].strip()
        except FileNotFoundError:
            raise failed(Code.ARTIFACT_NOT_FOUND, f"wheel {wheel} does not exist", path=str(wheel)) from None
        except (zipfile.BadZipFile, zlib.error, OSError, configparser.Error, UnicodeDecodeError) as exc:
            raise failed(
                Code.INVALID_ARCHIVE, f"{wheel.name} is not a readable wheel: {exc}", path=str(wheel)
            ) from None
    if spec.entry:
        return spec.entry, top or []
    if len(found) == 1:
        return next(iter(found.values())), top or []
    if spec.name in found:
        return found[spec.name], top or []
    if len(found) > 1:
        raise failed(
            Code.ENTRY_AMBIGUOUS,
            f"the wheels name several components in [{ENTRY_POINT_GROUP}]: {sorted(found)}; "
            "choose one with entry = 'module:Class' or name = one of them",
            candidates=sorted(found),
        )
    return None, top or []


class PythonBoundary(WorkerBoundary):
    """Python components in worker processes (folders, modules, zipapps, wheels)."""

    form = "python"

    def __init__(self, context: BoundaryContext) -> None:
        super().__init__(context)
        self.environments = EnvironmentCache(context.cache_dir / "envs", context.progress)
        self._zip_cache = context.cache_dir / "zipapps"

    async def close(self) -> None:
        await self.environments.close()  # a build in progress ends with the hub
        await super().close()

    async def plan(self, spec: ComponentSpec) -> LaunchPlan:
        interpreter, keeps_site = resolve_interpreter(spec)
        artifact = spec.artifact
        if not artifact.exists():
            raise failed(Code.ARTIFACT_NOT_FOUND, f"artifact {str(artifact)!r} does not exist", path=str(artifact))
        details: dict[str, Any] = {"interpreter": interpreter}
        paths: list[Path] = []
        layout = "folder"
        wheels = tuple(spec.wheels)
        for w in wheels:
            if not w.exists():
                raise failed(Code.ARTIFACT_NOT_FOUND, f"wheel {str(w)!r} does not exist", path=str(w))
        entry = spec.entry
        candidates: list[str] | None = None  # None: look in the first path
        hint: str | None = None
        top: list[str] = []
        if wheels:
            entry, top = _wheel_entry(wheels, spec)
        suffix = artifact.suffix.lower()
        if artifact.is_dir():
            layout, paths, hint = (
                _zip_layout(artifact) if (artifact / "PEX-INFO").is_file() else ("folder", [artifact], None)
            )
        elif suffix == ".whl":
            layout, candidates = "wheel", top
        elif suffix == ".py":
            layout, paths = "module", [artifact.parent]
            entry = entry or artifact.stem
        elif suffix in _ZIP_SUFFIXES or zipfile.is_zipfile(artifact):
            root = await asyncio.to_thread(_extract, artifact, self._zip_cache, spec.name)
            layout, paths, hint = _zip_layout(root)
        else:
            raise failed(
                Code.INVALID_ARCHIVE,
                f"{artifact.name} is neither a folder, a .py module, a wheel nor a zipapp",
                path=str(artifact),
            )
        details["layout"] = layout
        options: dict[str, Any] = {}
        if spec.init is not None:  # a Collaborator created early (to list its operations) needs it too
            options["init"] = spec.init
        if not entry:
            if not hint and candidates is None and layout in ("pex", "shiv"):
                candidates = _requested(layout, paths[0].parent if layout == "shiv" else paths[0], paths)
            entry = hint or self._default_entry(spec, layout, paths, candidates)
            options["infer_entry"] = True
        python = interpreter
        environment = None
        if (spec.requirements or wheels) and spec.placement != "local":
            # Built on the node, by the same hash, when the worker is placed there.
            environment = (
                interpreter,
                tuple(spec.requirements),
                tuple(str(w) for w in wheels),
                spec.name,
                tuple(spec.build_constraints),
            )
            keeps_site = True
            details["environment"] = "built on the node"
        elif spec.requirements or wheels:
            venv = await self.environments.ensure(
                interpreter,
                spec.requirements,
                wheels,
                label=spec.name,
                build_constraints=spec.build_constraints,
                build_timeout=spec.build_timeout,
            )
            python, keeps_site = str(venv_python(venv)), True
            details["environment"] = str(venv)
        sitedirs = [str(p) for p in paths if any(p.glob("*.pth"))] if layout != "folder" else []
        if sitedirs:
            options["sitedirs"] = sitedirs
        return LaunchPlan(
            argv=worker_argv(python, site=keeps_site),
            entry=entry,
            artifact=str(artifact),
            paths=[str(p) for p in paths],
            options=options,
            env=worker_environment(
                spec.env,
                inherit=spec.inherit_env,
                allow_loader=self.context.allow_loader_env,
                source=spec.manifest_path or "",
            ),
            cwd=str(spec.base_dir),
            memory_limit=spec.memory_limit,
            details=details,
            environment=environment,
            runtime_dir=str(RUNTIME_DIR),
        )

    def _default_entry(self, spec: ComponentSpec, layout: str, paths: list[Path], candidates: list[str] | None) -> str:
        found = candidates if candidates is not None else _candidates(paths[0]) if paths else []
        if len(found) == 1:
            return found[0]
        if spec.name.replace("-", "_") in found:
            return spec.name.replace("-", "_")
        code = Code.ENTRY_AMBIGUOUS if found else Code.ENTRY_NOT_FOUND
        raise failed(
            code,
            f"component {spec.name!r} ({layout}) names no entry and "
            + (f"several modules could be it: {found}" if found else "no module was found")
            + "; give entry = 'module:Class' or 'module' in cncf.toml or as an override",
            candidates=found,
        )
